"""refundchat/channel_layer.py on a real Redis: publishes pipelined, group messages decoded once per process."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from refundchat.channel_layer import PipelinedPubSubChannelLayer

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the layer is Redis'; CI always has Redis")


def new_layer() -> PipelinedPubSubChannelLayer:
    return PipelinedPubSubChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix=f"test-{uuid.uuid4().hex[:8]}")


def test_group_sends_made_together_share_round_trips_and_arrive_in_order_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from redis.asyncio.client import Pipeline

    round_trips: list[int] = []
    execute = Pipeline.execute

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        round_trips.append(len(self.command_stack))
        return await execute(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "execute", counting)
    layer = new_layer()

    async def scenario() -> list[list[dict[str, Any]]]:
        members = [await layer.new_channel() for _ in range(3)]
        for channel in members:
            await layer.group_add("room", channel)
        await asyncio.gather(*(layer.group_send("room", {"type": "relay.frame", "n": n}) for n in range(50)))
        received = [[await asyncio.wait_for(layer.receive(channel), 5) for _ in range(50)] for channel in members]
        for channel in members:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), 0.3)  # nothing twice
        await layer.flush()
        return received

    received = async_to_sync(scenario)()

    assert sum(round_trips) == 50
    assert len(round_trips) < 50
    for messages in received:
        assert [m["n"] for m in messages] == list(range(50))
    # One decoded dict per message, shared by the sockets of the process.
    assert all(received[0][n] is received[1][n] is received[2][n] for n in range(50))


def test_a_message_to_one_channel_still_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = new_layer()

    async def scenario() -> dict[str, Any]:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "hello", "text": "你好"})
        message = await asyncio.wait_for(layer.receive(channel), 5)
        await layer.flush()
        return message

    assert async_to_sync(scenario)() == {"type": "hello", "text": "你好"}


def test_group_send_many_hands_over_messages_in_order_to_several_groups() -> None:
    layer = new_layer()

    async def scenario() -> tuple[list[int], list[int]]:
        room, queue = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("room", room)
        await layer.group_add("queue", queue)
        await layer.group_send_many(
            [(group, {"type": "relay.frame", "n": n}) for n in range(20) for group in ("room", "queue")]
        )
        got_room = [(await asyncio.wait_for(layer.receive(room), 5))["n"] for _ in range(20)]
        got_queue = [(await asyncio.wait_for(layer.receive(queue), 5))["n"] for _ in range(20)]
        await layer.flush()
        return got_room, got_queue

    assert async_to_sync(scenario)() == (list(range(20)), list(range(20)))
