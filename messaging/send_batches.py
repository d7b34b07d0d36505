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
from refundchat.event_loops import per_loop

logger = logging.getLogger(__name__)

# At most this many messages in one statement; a backlog larger than that goes in several batches.
MAX_BATCH = 200
# Batches in flight at once per process (each on its own chat-write thread and database connection): while one
# waits for PostgreSQL, the next is already being collected and sent.
BATCHES_IN_FLIGHT = 2


class SendBatcher:
    """One per event loop (`batcher()`): queues sends and stores them in batches.

    Sends are stored in the order they were submitted, per conversation: a conversation is in at most one batch in
    flight, so a socket may submit its next message before the last one is stored (a fast typist, an agent with
    many chats) without the two swapping seqs.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[TextSend, asyncio.Future[PostedMessage]]] = []
        self._in_flight = 0
        self._busy: set[int] = set()  # conversations of the batches in flight
        self._tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def submit(self, send: TextSend) -> asyncio.Future[PostedMessage]:
        """Queue `send` now; the future gets its result as `services.post_message` would give it (a refusal as
        the exception). Cancelling the future does not take the message back: it is stored all the same."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[PostedMessage] = loop.create_future()
        self._waiting.append((send, result))
        self._start_batch(loop)
        return result

    async def post(self, send: TextSend) -> PostedMessage:
        """`submit`, then wait for the result (a refusal is raised)."""
        return await self.submit(send)

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._in_flight < BATCHES_IN_FLIGHT:
            self._in_flight += 1
            # A clean context: the batch belongs to no one socket (its language, its log context).
            task = loop.create_task(self._store_batches(), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _store_batches(self) -> None:
        try:
            while batch := self._next_batch():
                # Held before any await: a batch formed meanwhile leaves these conversations' sends for later.
                conversations = {send.conversation_id for send, _ in batch}
                self._busy |= conversations
                try:
                    await self._store(batch)
                finally:
                    self._busy -= conversations
        finally:
            self._in_flight -= 1
            # Sends that waited for a conversation that a failed batch held (a batch that ends normally has taken
            # everything it could); those of conversations still held go with the batch that holds them.
            if any(send.conversation_id not in self._busy for send, _ in self._waiting):
                self._start_batch(asyncio.get_running_loop())

    def _next_batch(self) -> list[tuple[TextSend, asyncio.Future[PostedMessage]]]:
        """The oldest sends, up to MAX_BATCH, of conversations no batch in flight holds; the rest keep their order."""
        batch: list[tuple[TextSend, asyncio.Future[PostedMessage]]] = []
        later: list[tuple[TextSend, asyncio.Future[PostedMessage]]] = []
        for entry in self._waiting:
            if len(batch) < MAX_BATCH and entry[0].conversation_id not in self._busy:
                batch.append(entry)
            else:
                later.append(entry)
        self._waiting = later
        return batch

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
    return per_loop(_batchers, SendBatcher)


async def post_message(send: TextSend) -> PostedMessage:
    """`services.post_message` for a socket: batched with the other sockets' sends of this process."""
    return await batcher().post(send)


def submit(send: TextSend) -> asyncio.Future[PostedMessage]:
    """Queue a socket's message for the next batch of this process, in order; its result comes in the future."""
    return batcher().submit(send)
