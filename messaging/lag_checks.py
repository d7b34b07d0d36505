"""The pings' check for a conversation's newest message that the channel layer dropped, one query per process.

The layer delivers at most once; a dropped frame shows as a gap when the next one comes, but nothing comes after
a conversation's last message. So each socket's regular ping asks the database for the newest seq of the
conversations it holds. A thousand idle sockets ping 33 times a second: asked one by one, that was a thread hop,
a health check and a query each, most of an idle server's work. Here the checks of a process that come within
`WINDOW_SECONDS` share one query; the socket answers its ping at once and catches up when the answer comes.
"""

from __future__ import annotations

import asyncio
import weakref

from channels.db import database_sync_to_async

from messaging import selectors
from refundchat.event_loops import per_loop

# How long a check may wait for others to share its query (a dropped last message shows up this much later).
WINDOW_SECONDS = 1.0


class LagChecks:
    """One per event loop (`checks()`)."""

    def __init__(self) -> None:
        self._wanted: set[int] = set()
        self._answer: asyncio.Future[dict[int, int]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def newest_seqs(self, conversation_ids: list[int]) -> dict[int, int]:
        """The newest seq of each conversation, from the next shared query (one without messages is missing)."""
        loop = asyncio.get_running_loop()
        if self._answer is None:
            self._answer = loop.create_future()
            loop.call_later(WINDOW_SECONDS, self._ask)
        self._wanted.update(conversation_ids)
        # Shielded: a socket that closes while it waits must not cancel the answer the others wait for.
        return await asyncio.shield(self._answer)

    def _ask(self) -> None:
        answer, wanted = self._answer, sorted(self._wanted)
        self._answer, self._wanted = None, set()
        if answer is not None:
            task = asyncio.ensure_future(self._query(wanted, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _query(self, wanted: list[int], answer: asyncio.Future[dict[int, int]]) -> None:
        try:
            newest = await database_sync_to_async(selectors.last_seqs)(conversation_ids=wanted)
        except Exception as error:
            answer.set_exception(error)
        else:
            answer.set_result(newest)


_checks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LagChecks] = weakref.WeakKeyDictionary()


def checks() -> LagChecks:
    return per_loop(_checks, LagChecks)
