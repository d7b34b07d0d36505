"""realtime.call_service: a consumer runs a service, then sends what it published, once committed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messaging import realtime

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("flush_channel_layer")]


def publishing_service(*, fail: bool) -> str:
    with transaction.atomic():
        realtime.publish(group="test.first", frame={"type": "n", "n": 1})
        realtime.publish(group="test.second", frame={"type": "n", "n": 2})
        realtime.publish(group="test.first", frame={"type": "n", "n": 3})
        if fail:
            raise ValueError("rolled back")
    return "done"


def test_call_service_sends_the_committed_frames_in_order_per_group():
    async def scenario() -> tuple[Any, list[Any], list[Any]]:
        layer: Any = get_channel_layer()
        first, second = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test.first", first)
        await layer.group_add("test.second", second)
        result = await realtime.call_service(publishing_service, fail=False)
        return (
            result,
            [(await layer.receive(first))["frame"] for _ in range(2)],
            [(await layer.receive(second))["frame"]],
        )

    result, first, second = async_to_sync(scenario)()
    assert result == "done"
    assert first == [{"type": "n", "n": 1}, {"type": "n", "n": 3}]
    assert second == [{"type": "n", "n": 2}]


def test_call_service_sends_nothing_from_a_rolled_back_transaction(published):
    async def scenario() -> bool:
        layer: Any = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("test.first", channel)
        with pytest.raises(ValueError, match="rolled back"):
            await realtime.call_service(publishing_service, fail=True)
        await realtime.publish_ephemeral(group="test.first", frame={"type": "marker"})
        return (await layer.receive(channel))["frame"] == {"type": "marker"}

    assert async_to_sync(scenario)()
    assert published == []


def test_many_sends_at_once_wait_for_a_slot_instead_of_failing(caplog):
    # More concurrent group_sends than channels-redis' pool has connections (100): none may be dropped.
    count = 3 * 100

    async def scenario() -> list[int]:
        layer: Any = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("test.many", channel)
        await asyncio.gather(
            *(realtime.publish_ephemeral(group="test.many", frame={"type": "n", "n": n}) for n in range(count))
        )
        return sorted([(await layer.receive(channel))["frame"]["n"] for _ in range(count)])

    assert async_to_sync(scenario)() == list(range(count))
    assert "failed" not in caplog.text


def test_a_publish_from_sync_code_on_a_thread_that_runs_an_event_loop_is_sent(monkeypatch, caplog):
    # As in the browser tests, where Playwright's sync API keeps a loop on the thread that calls services.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    async def scenario() -> list[Any]:
        layer: Any = get_channel_layer()
        first = await layer.new_channel()
        await layer.group_add("test.first", first)
        publishing_service(fail=False)
        return [(await asyncio.wait_for(layer.receive(first), timeout=5))["frame"] for _ in range(2)]

    assert async_to_sync(scenario)() == [{"type": "n", "n": 1}, {"type": "n", "n": 3}]
    assert "failed" not in caplog.text
