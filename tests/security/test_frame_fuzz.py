"""Hypothesis-generated WebSocket frames against the live consumer (the real ASGI stack, session auth).

Whatever arrives (wrong types, huge, deeply nested, odd unicode, missing fields, not JSON at all), the socket
answers with frames or an error frame and stays open: never a traceback, never a close without a close code, and
never anything of another buyer. The attacker is buyer B; the victim's conversation and ids are in the mix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.consumers import MAX_FRAME_BYTES, RealtimeConsumer
from refundchat.asgi import application
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("flush_channel_layer")]

FIELDS = [
    "type", "conversation", "last_seq", "client_id", "body", "card", "attachments", "draft", "status",
    "delivered_seq", "read_seq", "call", "media", "kind", "sdp", "candidate", "title", "url", "price_cents",
]  # fmt: skip


def json_values(ids: list[int]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(ids),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=40),
        st.sampled_from(["", "\x00", "\u202e", "😀" * 50, "<script>x</script>", "a" * 5000, "v=0", "offer"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5), st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner)
        ),
        max_leaves=25,
    )


def frames(ids: list[int]) -> st.SearchStrategy[str | bytes]:
    types = st.sampled_from([*RealtimeConsumer.HANDLERS, "error", "hello", "", "PING", "message"])
    typed = st.builds(
        lambda kind, rest: json.dumps({**rest, "type": kind}),
        st.one_of(types, json_values(ids)),
        st.dictionaries(st.sampled_from(FIELDS), json_values(ids), max_size=6),
    )
    deep = st.integers(min_value=1, max_value=5000).map(
        lambda depth: '{"type":"ping","x":' + "[" * depth + "]" * depth + "}"
    )
    huge = st.sampled_from(["a", "汉"]).map(
        lambda ch: json.dumps({"type": "message.send", "conversation": ids[0], "body": ch * MAX_FRAME_BYTES})
    )
    return st.one_of(
        typed,
        json_values(ids).map(json.dumps),
        st.text(max_size=200),
        deep,
        huge,
        st.binary(max_size=200),
    )


@pytest.fixture
def world() -> dict[str, Any]:
    alice = factories.buyer(username="alice", first_name="Alice")
    bob = factories.buyer(username="bob", first_name="Bob")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    own = factories.open_ticket(order=factories.order_with_items(buyer=bob, items=[(5000, 1)]))
    client = Client()
    client.force_login(bob)
    return {
        "cookie": client.cookies["sessionid"].value,
        "ids": [ticket.conversation.pk, own.conversation.pk, ticket.pk, 0, -1, 2**63],
        "alice_marks": [ticket.number, "Alice", f'"conversation": {ticket.conversation.pk},'],
    }


def test_any_frame_gets_an_answer_and_never_a_traceback_or_anothers_data(world: dict[str, Any]) -> None:
    async def open_socket() -> WebsocketCommunicator:
        comm = WebsocketCommunicator(
            application,
            "/ws/",
            headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", f"sessionid={world['cookie']}".encode())],
        )
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from())["type"] == "hello"
        return comm

    async def exchange(raw: str | bytes) -> list[dict[str, Any]]:
        # A socket per example: each async_to_sync call runs in an event loop of its own.
        comm = await open_socket()
        try:
            return await answer_to(comm, raw)
        finally:
            await comm.disconnect()

    async def answer_to(comm: WebsocketCommunicator, raw: str | bytes) -> list[dict[str, Any]]:
        # send_input, not send_to: an empty frame is a frame too.
        key = "bytes" if isinstance(raw, bytes) else "text"
        await comm.send_input({"type": "websocket.receive", key: raw})
        await comm.send_json_to({"type": "ping"})
        answer: list[dict[str, Any]] = []
        while True:
            # An exception inside the consumer is raised here: a traceback fails the test.
            output = await comm.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                assert output.get("code"), f"closed without a close code after {raw[:200]!r}"
                return answer
            frame = json.loads(output["text"])
            if frame["type"] == "pong":
                return answer
            answer.append(frame)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw=frames(world["ids"]))
    def check(raw: str | bytes) -> None:
        answer = async_to_sync(exchange)(raw)
        text = json.dumps(answer, ensure_ascii=False)
        for mark in world["alice_marks"]:
            assert mark not in text, f"buyer B was sent alice's {mark!r} for {raw[:200]!r}: {text[:500]}"
        for frame in answer:
            if frame["type"] == "error":
                assert set(frame) <= {"type", "code", "message", "ref", "retry_after"}
                assert frame["code"]
                assert frame["message"]

    check()
