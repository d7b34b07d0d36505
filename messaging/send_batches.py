"""Group commit for the chat's text messages: the sockets of one server process store together what they are sent
at the same time.

A `message.send` that arrives while the process is storing an earlier batch waits for it and goes in the next
one, with everything else that arrived meanwhile: one statement and one commit for the lot
(`services.post_messages`), instead of a thread hop, a health check, a statement and a commit per message. A send
that finds nothing in flight goes at once, so a quiet server adds no wait. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref

from messaging import realtime, services
from messaging.services import PostedMessage, TextSend

logger = logging.getLogger(__name__)

# At most this many messages in one statement; a backlog larger than that goes in several batches.
MAX_BATCH = 200
# Batches in flight at once per process (each on its own chat-write thread and database connection): while one
# waits for PostgreSQL, the next is already being collected and sent.
BATCHES_IN_FLIGHT = 2


class SendBatcher:
    """One per event loop (`batcher()`): queues sends and stores them in batches."""

    def __init__(self) -> None:
        self._waiting: list[tuple[TextSend, asyncio.Future[PostedMessage]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def post(self, send: TextSend) -> PostedMessage:
        """Store `send` with whatever else is waiting; its result as `services.post_message` would give it (a
        refusal is raised). A caller that is cancelled meanwhile does not take its message back: it is stored."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[PostedMessage] = loop.create_future()
        self._waiting.append((send, result))
        if self._in_flight < BATCHES_IN_FLIGHT:
            self._in_flight += 1
            # A clean context: the batch belongs to no one socket (its language, its log context).
            task = loop.create_task(self._store_batches(), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await result

    async def _store_batches(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._store(batch)
        finally:
            self._in_flight -= 1

    async def _store(self, batch: list[tuple[TextSend, asyncio.Future[PostedMessage]]]) -> None:
        outcomes: list[PostedMessage | BaseException]
        try:
            outcomes = list(await realtime.call_chat_write(services.post_messages, sends=[send for send, _ in batch]))
        except Exception as error:
            # The database failed the batch as a whole (no connection, say): every sender gets the error, and the
            # clients resend with the same client_id, so nothing is stored twice.
            logger.exception("storing a batch of %d messages failed", len(batch))
            outcomes = [error] * len(batch)
        for (_send, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the socket closed meanwhile
                continue
            if isinstance(outcome, PostedMessage):
                future.set_result(outcome)
            else:
                future.set_exception(outcome)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SendBatcher] = weakref.WeakKeyDictionary()


def batcher() -> SendBatcher:
    loop = asyncio.get_running_loop()
    found = _batchers.get(loop)
    if found is None:
        found = _batchers[loop] = SendBatcher()
    return found


async def post_message(send: TextSend) -> PostedMessage:
    """`services.post_message` for a socket: batched with the other sockets' sends of this process."""
    return await batcher().post(send)
