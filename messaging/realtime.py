"""The one way events reach WebSocket clients.

Services call `publish()` inside their transaction; the frame is handed to the
channel layer only after the transaction commits, so a client never sees data
that was rolled back. The layer delivers at most once: clients recover anything
it drops from the database (see docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections, transaction

from refundchat.event_loops import per_loop
from refundchat.metrics import observe_broadcast

logger = logging.getLogger(__name__)

# Every connection of a staff member who may use the console joins this group.
QUEUE_GROUP = "queue"
# The consumer method (`relay_frame`) that forwards a published frame.
RELAY_EVENT_TYPE = "relay.frame"

Frame = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")

# Set while a WebSocket consumer runs a service (`call_service`): committed frames are
# collected here and sent by the consumer's coroutine, instead of blocking the process'
# one database thread on a hop to the event loop for every group_send.
_collected: contextvars.ContextVar[list[tuple[str, Frame]] | None] = contextvars.ContextVar(
    "realtime_collected", default=None
)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def activity_group(user_id: int) -> str:
    """The sockets of a user whose page lists their tickets (`lists.subscribe`): they take `ticket.activity`.

    Not the user group: a chat tab would relay a frame per message it has no use for (docs/benchmarks.md)."""
    return f"activity.{user_id}"


def ticket_staff_group(ticket_id: int) -> str:
    """The staff sockets that have a ticket open (who else is viewing it, staff typing); never the buyer's."""
    return f"ticket-staff.{ticket_id}"


def publish(*, group: str, frame: Frame) -> None:
    """Send `frame` to every socket in `group` once the current transaction commits."""
    transaction.on_commit(partial(_send_to_group, group, frame))


async def publish_ephemeral(*, group: str, frame: Frame) -> None:
    """Send a frame that nothing stores (typing) from async code, at once; losing it is harmless."""
    try:
        await _group_send(group, frame)
    except Exception:
        logger.exception("channel layer send to %s failed", group)


# channels-redis draws every group_send from a pool that refuses (redis-py's MaxConnectionsError) rather than
# waits once 100 connections are busy. Under load many consumers send at once: past this many in flight per
# event loop, a send waits for a slot instead of being dropped.
MAX_SENDS_IN_FLIGHT = 32
_send_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def _group_send(group: str, frame: Frame) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": RELAY_EVENT_TYPE, "frame": frame}
    if getattr(layer, "pipelines_sends", False):
        await layer.group_send(group, event)  # one connection, no pool to run dry
    else:
        async with per_loop(_send_slots, partial(asyncio.Semaphore, MAX_SENDS_IN_FLIGHT)):
            await layer.group_send(group, event)
    # Every frame reaches the layer here: chat messages are counted, with their store → broadcast time.
    observe_broadcast(frame)


@cache
def _chat_write_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.REFUNDCHAT_CHAT_WRITE_THREADS, thread_name_prefix="chat-write")


def close_chat_write_connections() -> None:
    """Close the database connections the chat-write threads keep (a test run drops its database after)."""
    if _chat_write_threads.cache_info().currsize == 0:
        return
    pool = _chat_write_threads()
    count = settings.REFUNDCHAT_CHAT_WRITE_THREADS
    # Every thread must take one task: each waits for all the others before closing its own connections.
    everyone = threading.Barrier(count)

    def close_in_this_thread() -> None:
        everyone.wait(timeout=10)
        connections.close_all()

    for future in [pool.submit(close_in_this_thread) for _ in range(count)]:
        future.result()


async def call_service(service: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a service on the process' database thread, then send what it published once it committed.

    The sends are shielded: a socket closing meanwhile must not keep a stored message from
    the other party. The frames reach the layer in the order they were published.
    """
    return await _call(database_sync_to_async(service), *args, **kwargs)


async def call_chat_write(service: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`call_service` for the chat's hot writes (storing a message, moving a read position), on a small
    pool of threads with a database connection each: with only the one database thread of
    `database_sync_to_async`, a Daphne process waits for PostgreSQL one round trip at a time. The
    services it runs must be safe to run side by side (row locks and constraints, no shared state).
    """
    run = database_sync_to_async(service, thread_sensitive=False, executor=_chat_write_threads())
    return await _call(run, *args, **kwargs)


async def _call(run: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
    frames: list[tuple[str, Frame]] = []
    token = _collected.set(frames)
    try:
        result = await run(*args, **kwargs)
    finally:
        _collected.reset(token)
        if frames:
            await asyncio.shield(_send_collected(frames))
    return result


async def _send_collected(frames: list[tuple[str, Frame]]) -> None:
    # All handed to the layer at once, in commit order: the layer pipelines them and keeps that order
    # (refundchat/channel_layer.py), where waiting for each frame's round trip before the next frame of the same
    # group made a batch of N messages N round trips to Redis for the queue group alone.
    layer = get_channel_layer()
    send_many = getattr(layer, "group_send_many", None) if getattr(layer, "pipelines_sends", False) else None
    if send_many is not None:
        try:
            await send_many([(group, {"type": RELAY_EVENT_TYPE, "frame": frame}) for group, frame in frames])
        except Exception:
            logger.exception("channel layer send of %d frames failed", len(frames))
            return
        for _group, frame in frames:
            observe_broadcast(frame)
        return
    await asyncio.gather(*(publish_ephemeral(group=group, frame=frame) for group, frame in frames))


def _send_to_group(group: str, frame: Frame) -> None:
    collected = _collected.get()
    if collected is not None:
        collected.append((group, frame))
        return
    try:
        if _event_loop_runs_here():
            # Sync code on a thread that runs an event loop cannot block on it (Playwright's sync API, which the
            # browser tests drive services beside, does this); the send takes a thread of its own.
            _side_thread().submit(async_to_sync(_group_send), group, frame).result()
        else:
            async_to_sync(_group_send)(group, frame)
    except Exception:
        # The database already holds the data; clients catch up on reconnect.
        logger.exception("channel layer send to %s failed", group)


def _event_loop_runs_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@cache
def _side_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-send")
