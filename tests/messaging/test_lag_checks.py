"""messaging/lag_checks.py: the pings' checks of one process share a query."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from messaging import lag_checks, selectors

pytestmark = pytest.mark.django_db(transaction=True)


def test_checks_asked_within_the_window_share_one_query(claimed_ticket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket, _agent = claimed_ticket
    conversation = ticket.conversation
    queries: list[list[int]] = []
    original = selectors.last_seqs

    def counting(*, conversation_ids: list[int]) -> dict[int, int]:
        queries.append(conversation_ids)
        return original(conversation_ids=conversation_ids)

    monkeypatch.setattr(selectors, "last_seqs", counting)
    monkeypatch.setattr(lag_checks, "WINDOW_SECONDS", 0.2)
    missing = conversation.pk + 1_000_000

    async def scenario() -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
        checks = lag_checks.checks()
        first = asyncio.ensure_future(checks.newest_seqs([conversation.pk]))
        gone = asyncio.ensure_future(checks.newest_seqs([conversation.pk]))
        second = asyncio.ensure_future(checks.newest_seqs([conversation.pk, missing]))
        await asyncio.sleep(0)
        gone.cancel()  # a socket that closed meanwhile takes nobody's answer away
        shared = (await first, await second)
        later = await checks.newest_seqs([conversation.pk])  # after the window: a query of its own
        return (*shared, later)

    first, second, later = async_to_sync(scenario)()

    assert queries == [sorted([conversation.pk, missing]), [conversation.pk]]
    conversation.refresh_from_db()
    assert first == second == later == {conversation.pk: conversation.last_seq}
