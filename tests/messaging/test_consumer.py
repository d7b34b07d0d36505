"""The /ws/ consumer, driven through the real ASGI stack (session auth, origin check)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from messaging import realtime
from messaging import services as messaging_services
from messaging.models import Message
from refundchat.asgi import application
from tests import factories
from tickets import services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("flush_channel_layer")]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(
    user: Any | None, *, origin: tuple[bytes, bytes] = ORIGIN, language: str = "en"
) -> WebsocketCommunicator:
    headers = [origin, (b"accept-language", language.encode())]
    if user is not None:
        headers.append((b"cookie", session_cookie(user)))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


async def connect(comm: WebsocketCommunicator) -> dict[str, Any]:
    connected, _ = await comm.connect()
    assert connected
    hello = await comm.receive_json_from()
    assert hello["type"] == "hello"
    return hello


async def receive_until(comm: WebsocketCommunicator, frame_type: str) -> dict[str, Any]:
    while True:
        frame = await comm.receive_json_from(timeout=3)
        if frame["type"] == frame_type:
            return frame


async def frames_within(comm: WebsocketCommunicator, seconds: float) -> list[dict[str, Any]]:
    """Every frame that arrives in the next `seconds`."""
    frames: list[dict[str, Any]] = []
    while not await comm.receive_nothing(timeout=seconds):
        frames.append(await comm.receive_json_from())
    return frames


async def send_text(ws: WebsocketCommunicator, conversation_id: int, body: str, client_id: str | None = None) -> str:
    """Send a message.send frame; return its client_id."""
    client_id = client_id or str(uuid.uuid4())
    await ws.send_json_to(
        {"type": "message.send", "conversation": conversation_id, "client_id": client_id, "body": body}
    )
    return client_id


@pytest.fixture
def ticket():
    alice = factories.buyer(username="alice")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    return factories.open_ticket(order=order)


def test_socket_without_session_is_closed_with_4401():
    comm = communicator(None)

    async def scenario() -> None:
        connected, _ = await comm.connect()
        assert connected
        closed = await comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4401}

    async_to_sync(scenario)()


def test_foreign_origin_is_rejected(ticket):
    comm = communicator(ticket.buyer, origin=(b"origin", b"http://evil.example"))

    async def scenario() -> None:
        connected, _ = await comm.connect()
        assert not connected

    async_to_sync(scenario)()


def test_buyer_and_agent_exchange_messages(ticket):
    agent = factories.agent(username="agent")
    services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    conversation_id = ticket.conversation.pk

    buyer_ws, agent_ws = communicator(ticket.buyer), communicator(agent)
    buyer_id = ticket.buyer.pk

    async def scenario() -> None:
        await connect(buyer_ws)
        await connect(agent_ws)
        for ws in (buyer_ws, agent_ws):
            await ws.send_json_to({"type": "subscribe", "conversation": conversation_id, "last_seq": 0})
            # The history so far: the "ticket created" system message.
            history = await receive_until(ws, "message")
            assert history["message"]["kind"] == "system"
            subscribed = await receive_until(ws, "subscribed")
            assert subscribed == {"type": "subscribed", "conversation": conversation_id, "last_seq": 1}

        client_id = str(uuid.uuid4())
        await buyer_ws.send_json_to(
            {"type": "message.send", "conversation": conversation_id, "client_id": client_id, "body": "颜色不对"}
        )
        ack = await receive_until(buyer_ws, "message.ack")
        assert (ack["seq"], ack["client_id"], ack["duplicate"]) == (2, client_id, False)
        received = await receive_until(agent_ws, "message")
        assert received["message"]["body"] == "颜色不对"
        assert received["message"]["seq"] == 2
        assert received["message"]["sender_id"] == buyer_id
        # The ack stands for the broadcast on the sending socket (its other tabs get it: below).
        assert "message" not in [f["type"] for f in await frames_within(buyer_ws, 0.3)]

        await agent_ws.send_json_to(
            {"type": "message.send", "conversation": conversation_id, "client_id": str(uuid.uuid4()), "body": "您好"}
        )
        reply = await receive_until(buyer_ws, "message")
        assert (reply["message"]["body"], reply["message"]["seq"]) == ("您好", 3)
        await buyer_ws.disconnect()
        await agent_ws.disconnect()

    async_to_sync(scenario)()
    assert list(Message.objects.filter(conversation_id=conversation_id).values_list("seq", flat=True)) == [1, 2, 3]
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None


def test_resend_with_same_client_id_is_stored_once(ticket):
    conversation_id = ticket.conversation.pk

    ws = communicator(ticket.buyer)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "subscribe", "conversation": conversation_id, "last_seq": 1})
        await receive_until(ws, "subscribed")
        frame = {"type": "message.send", "conversation": conversation_id, "client_id": str(uuid.uuid4()), "body": "hi"}
        await ws.send_json_to(frame)
        first = await receive_until(ws, "message.ack")
        await ws.send_json_to(frame)
        second = await receive_until(ws, "message.ack")
        assert second["seq"] == first["seq"]
        assert second["duplicate"] is True
        # No broadcast of it comes back to the socket that sent it, the first time or again (list updates may).
        assert [f for f in await frames_within(ws, 0.3) if f["type"] == "message"] == []
        await ws.disconnect()

    async_to_sync(scenario)()
    assert Message.objects.filter(conversation_id=conversation_id, kind="text").count() == 1


def test_resume_sends_only_missed_messages_in_order(ticket):
    conversation_id = ticket.conversation.pk

    for n in range(3):
        messaging_services.post_message(
            conversation_id=conversation_id, sender=ticket.buyer, body=f"m{n}", client_id=uuid.uuid4()
        )

    ws = communicator(ticket.buyer)

    async def scenario() -> None:
        await connect(ws)
        # The buyer's first socket announces them online, to their own sockets too.
        announced = await receive_until(ws, "presence")
        assert (announced["user_id"], announced["status"]) == (ticket.buyer.pk, "online")
        await ws.send_json_to({"type": "subscribe", "conversation": conversation_id, "last_seq": 2})
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "subscribed":
            frames.append(await ws.receive_json_from(timeout=3))
        # The missed messages in order, then where everyone has read up to and who is here.
        assert [f["message"]["seq"] for f in frames if f["type"] == "message"] == [3, 4]
        assert [f["type"] for f in frames] == ["message", "message", "receipt", "presence", "subscribed"]
        receipt, presence_frame, subscribed = frames[2:]
        assert receipt == {
            "type": "receipt",
            "conversation": conversation_id,
            "user_id": ticket.buyer.pk,
            "delivered_seq": 4,
            "read_seq": 4,
        }
        assert presence_frame["user_id"] == ticket.buyer.pk
        assert presence_frame["status"] == "online"
        assert subscribed["last_seq"] == 4
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not json", "bad_json"),
        (json.dumps([1, 2]), "bad_frame"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"type": "subscribe", "conversation": "1"}), "bad_frame"),
        (json.dumps({"type": "message.send", "conversation": 1, "client_id": "nope", "body": "x"}), "bad_frame"),
        ("x" * 70_000, "frame_too_large"),
    ],
)
def test_malformed_frames_get_error_and_socket_stays_open(ticket, payload, code):
    ws = communicator(ticket.buyer)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_to(text_data=payload)
        error = await receive_until(ws, "error")
        assert error["code"] == code
        assert error["message"]
        await ws.send_json_to({"type": "ping"})
        assert (await receive_until(ws, "pong")) == {"type": "pong"}
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize(
    ("body", "code"), [("", "message_empty"), ("   ", "message_empty"), ("长" * 5001, "message_too_long")]
)
def test_empty_or_too_long_message_is_rejected(ticket, body, code):
    client_id = str(uuid.uuid4())

    ws = communicator(ticket.buyer)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to(
            {"type": "message.send", "conversation": ticket.conversation.pk, "client_id": client_id, "body": body}
        )
        error = await receive_until(ws, "error")
        assert (error["code"], error["ref"]) == (code, client_id)
        await ws.send_json_to({"type": "ping"})
        await receive_until(ws, "pong")
        await ws.disconnect()

    async_to_sync(scenario)()
    assert not Message.objects.filter(kind="text").exists()


def test_other_buyer_cannot_subscribe_or_send(ticket):
    bob = factories.buyer(username="bob")

    ws = communicator(bob)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "subscribe", "conversation": ticket.conversation.pk, "last_seq": 0})
        error = await receive_until(ws, "error")
        assert error == {"type": "error", "code": "not_found", "message": "No such conversation.", "ref": None}
        await send_text(ws, ticket.conversation.pk, "x")
        assert (await receive_until(ws, "error"))["code"] == "not_allowed"
        await ws.send_json_to({"type": "queue.subscribe"})
        assert (await receive_until(ws, "error"))["code"] == "not_allowed"
        await ws.disconnect()

    async_to_sync(scenario)()
    assert not Message.objects.filter(kind="text").exists()


def test_error_messages_follow_the_connection_language(ticket):
    ws = communicator(ticket.buyer, language="zh-CN,zh;q=0.9")

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "subscribe", "conversation": 999_999, "last_seq": 0})
        error = await receive_until(ws, "error")
        assert (error["code"], error["message"]) == ("not_found", "会话不存在。")
        await ws.disconnect()

    async_to_sync(scenario)()


def test_unassigned_agent_watches_but_cannot_write(ticket):
    services.claim_ticket(ticket_id=ticket.pk, agent=factories.agent(username="agent1"))
    agent2 = factories.agent(username="agent2")

    ws = communicator(agent2)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "subscribe", "conversation": ticket.conversation.pk, "last_seq": 0})
        await receive_until(ws, "subscribed")
        await send_text(ws, ticket.conversation.pk, "x")
        assert (await receive_until(ws, "error"))["code"] == "not_allowed"
        await ws.disconnect()

    async_to_sync(scenario)()


def test_console_queue_receives_new_ticket_rows():
    agent = factories.agent(username="agent")
    alice = factories.buyer(username="alice")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])

    ws = communicator(agent)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "queue.subscribe"})
        await receive_until(ws, "queue.subscribed")
        ticket = await database_sync_to_async(factories.open_ticket)(order=order)
        update = await receive_until(ws, "ticket.updated")
        assert update["ticket_id"] == ticket.pk
        assert f'data-ticket-id="{ticket.pk}"' in update["queue_row"]
        assert order.order_no in update["queue_row"]
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.fixture
def claimed(ticket):
    agent = factories.agent(username="agent")
    services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    return ticket, agent


async def subscribe(ws: WebsocketCommunicator, conversation_id: int, last_seq: int = 0) -> list[dict[str, Any]]:
    """Subscribe; return the frames up to and including `subscribed`."""
    await ws.send_json_to({"type": "subscribe", "conversation": conversation_id, "last_seq": last_seq})
    frames = [await ws.receive_json_from(timeout=3)]
    while frames[-1]["type"] != "subscribed":
        frames.append(await ws.receive_json_from(timeout=3))
    return frames


def test_read_receipt_reaches_the_sender_and_the_readers_other_device(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    buyer_ws, agent_phone, agent_desk = communicator(ticket.buyer), communicator(agent), communicator(agent)

    async def scenario() -> None:
        for ws in (buyer_ws, agent_phone, agent_desk):
            await connect(ws)
            await subscribe(ws, conversation_id)
        await send_text(buyer_ws, conversation_id, "看一下照片")
        seq = (await receive_until(buyer_ws, "message.ack"))["seq"]
        # Both devices of the agent get the message (multi-device sync).
        assert (await receive_until(agent_phone, "message"))["message"]["seq"] == seq
        assert (await receive_until(agent_desk, "message"))["message"]["seq"] == seq

        await agent_phone.send_json_to({"type": "receipt", "conversation": conversation_id, "read_seq": seq})
        expected = {
            "type": "receipt",
            "conversation": conversation_id,
            "user_id": agent.pk,
            "delivered_seq": seq,
            "read_seq": seq,
        }
        assert await receive_until(buyer_ws, "receipt") == expected
        # The agent's other device learns where they have read up to.
        assert await receive_until(agent_desk, "receipt") == expected
        for ws in (buyer_ws, agent_phone, agent_desk):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_ticket_activity_reaches_only_the_buyers_sockets_that_list_tickets(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    chat_tab, list_tab, agent_ws = communicator(ticket.buyer), communicator(ticket.buyer), communicator(agent)

    async def scenario() -> None:
        for ws in (chat_tab, list_tab, agent_ws):
            await connect(ws)
        await subscribe(chat_tab, conversation_id)
        await subscribe(agent_ws, conversation_id)
        await list_tab.send_json_to({"type": "lists.subscribe"})
        assert await receive_until(list_tab, "lists.subscribed") == {"type": "lists.subscribed"}

        await send_text(agent_ws, conversation_id, "退款已受理")
        seq = (await receive_until(agent_ws, "message.ack"))["seq"]
        activity = await receive_until(list_tab, "ticket.activity")
        assert (activity["ticket_id"], activity["seq"], activity["sender_id"]) == (ticket.pk, seq, agent.pk)
        # The chat tab gets the message itself, and no activity frame for lists it does not show.
        chat_types = [f["type"] for f in await frames_within(chat_tab, 0.5)]
        assert "message" in chat_types
        assert "ticket.activity" not in chat_types
        for ws in (chat_tab, list_tab, agent_ws):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_a_text_message_goes_to_the_senders_other_tabs_and_not_back_to_its_own_socket(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    sending_tab, other_tab, agent_ws = communicator(ticket.buyer), communicator(ticket.buyer), communicator(agent)

    async def scenario() -> None:
        for ws in (sending_tab, other_tab, agent_ws):
            await connect(ws)
            await subscribe(ws, conversation_id)
        client_id = await send_text(sending_tab, conversation_id, "两件都退")
        ack = await receive_until(sending_tab, "message.ack")
        for ws in (other_tab, agent_ws):
            relayed = await receive_until(ws, "message")
            assert (relayed["message"]["seq"], relayed["message"]["client_id"]) == (ack["seq"], client_id)
        # The agent answers: the buyer's sending tab gets that, in order, right after its own (held from the ack).
        await send_text(agent_ws, conversation_id, "好的")
        answer = await receive_until(sending_tab, "message")
        assert answer["message"]["seq"] == ack["seq"] + 1
        # Resubscribing from before its own message brings it like any other: the client asked for it.
        await sending_tab.send_json_to(
            {"type": "subscribe", "conversation": conversation_id, "last_seq": ack["seq"] - 1}
        )
        caught_up = [f["message"]["seq"] for f in await frames_within(sending_tab, 0.5) if f["type"] == "message"]
        assert caught_up == [ack["seq"], ack["seq"] + 1]
        for ws in (sending_tab, other_tab, agent_ws):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_a_socket_sends_messages_back_to_back_and_each_is_stored_in_order_and_acked(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    buyer_ws, agent_ws = communicator(ticket.buyer), communicator(agent)

    async def scenario() -> None:
        for ws in (buyer_ws, agent_ws):
            await connect(ws)
            await subscribe(ws, conversation_id)
        # No waiting for acks in between, as an agent pasting several answers.
        client_ids = [await send_text(agent_ws, conversation_id, f"第{n}条") for n in range(5)]
        acks: dict[str, int] = {}
        while len(acks) < len(client_ids):
            ack = await receive_until(agent_ws, "message.ack")
            acks[ack["client_id"]] = ack["seq"]
        seqs = [acks[client_id] for client_id in client_ids]
        assert seqs == sorted(seqs) == list(range(seqs[0], seqs[0] + 5))
        relayed = [(await receive_until(buyer_ws, "message"))["message"] for _ in client_ids]
        assert [(m["seq"], m["body"]) for m in relayed] == [(seq, f"第{n}条") for n, seq in enumerate(seqs)]
        for ws in (buyer_ws, agent_ws):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_receipt_needs_a_subscription_and_participation(claimed):
    ticket, _agent = claimed
    onlooker = factories.agent(username="onlooker")
    ws = communicator(onlooker)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "receipt", "conversation": ticket.conversation.pk, "read_seq": 1})
        assert (await receive_until(ws, "error"))["code"] == "not_subscribed"
        await subscribe(ws, ticket.conversation.pk)
        await ws.send_json_to({"type": "receipt", "conversation": ticket.conversation.pk, "read_seq": 1})
        assert (await receive_until(ws, "error"))["code"] == "not_allowed"
        await ws.disconnect()

    async_to_sync(scenario)()


def test_typing_is_relayed_throttled_and_only_from_writers(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    onlooker = factories.agent(username="onlooker")
    buyer_ws, agent_ws, onlooker_ws = communicator(ticket.buyer), communicator(agent), communicator(onlooker)

    async def scenario() -> None:
        for ws in (buyer_ws, agent_ws, onlooker_ws):
            await connect(ws)
            await subscribe(ws, conversation_id)
        await agent_ws.send_json_to({"type": "typing", "conversation": conversation_id})
        await agent_ws.send_json_to({"type": "typing", "conversation": conversation_id})  # within 2 s: dropped
        typing = await receive_until(buyer_ws, "typing")
        assert typing == {
            "type": "typing",
            "conversation": conversation_id,
            "user_id": agent.pk,
            "name": agent.get_full_name(),
            "expires_in": 6,
        }
        assert [f for f in await frames_within(buyer_ws, 0.3) if f["type"] == "typing"] == []
        # Someone who may only watch cannot make others see them typing.
        await onlooker_ws.send_json_to({"type": "typing", "conversation": conversation_id})
        assert (await receive_until(onlooker_ws, "error"))["code"] == "not_allowed"
        for ws in (buyer_ws, agent_ws, onlooker_ws):
            await ws.disconnect()

    async_to_sync(scenario)()


def test_subscribe_tells_who_is_here_and_presence_follows_the_agent(claimed):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    buyer_ws, agent_ws = communicator(ticket.buyer), communicator(agent)

    async def scenario() -> None:
        await connect(buyer_ws)
        frames = await subscribe(buyer_ws, conversation_id)
        state = {f["user_id"]: f["status"] for f in frames if f["type"] == "presence"}
        assert state == {ticket.buyer.pk: "online", agent.pk: "offline"}

        async def agent_presence() -> dict[str, Any]:
            # The buyer's own "online" announcement may still be on its way: skip it.
            while (frame := await receive_until(buyer_ws, "presence"))["user_id"] != agent.pk:
                pass
            return frame

        await connect(agent_ws)
        assert (await agent_presence())["status"] == "online"
        await agent_ws.send_json_to({"type": "presence.set", "status": "away"})
        assert (await agent_presence())["status"] == "away"
        await agent_ws.disconnect()
        gone = await agent_presence()
        assert gone["status"] == "offline"
        assert gone["last_seen_at"]

        # Buyers have no status to choose.
        await buyer_ws.send_json_to({"type": "presence.set", "status": "away"})
        assert (await receive_until(buyer_ws, "error"))["code"] == "not_allowed"
        await buyer_ws.disconnect()

    async_to_sync(scenario)()


def test_too_fast_sender_gets_rate_limited_error_with_retry_after(claimed, settings):
    settings.REFUNDCHAT_SEND_BURST = 2
    settings.REFUNDCHAT_SEND_RATE = 0.2
    ticket, _agent = claimed
    conversation_id = ticket.conversation.pk
    ws = communicator(ticket.buyer, language="zh-hans")

    async def scenario() -> None:
        await connect(ws)
        await subscribe(ws, conversation_id)
        for _ in range(2):
            await send_text(ws, conversation_id, "ok")
            await receive_until(ws, "message.ack")
        refused_id = await send_text(ws, conversation_id, "too fast")
        error = await receive_until(ws, "error")
        assert (error["code"], error["ref"]) == ("rate_limited", refused_id)
        assert 0 < error["retry_after"] <= 5
        assert "过快" in error["message"]
        await ws.send_json_to({"type": "ping"})
        assert (await receive_until(ws, "pong")) == {"type": "pong"}  # the socket stays open
        await ws.disconnect()

    async_to_sync(scenario)()
    assert not Message.objects.filter(body="too fast").exists()


def test_ping_delivers_a_newest_message_whose_broadcast_was_lost(claimed, monkeypatch):
    ticket, agent = claimed
    conversation_id = ticket.conversation.pk
    ws = communicator(agent)

    async def scenario() -> None:
        await connect(ws)
        await subscribe(ws, conversation_id)
        # The layer drops the broadcast of the buyer's message, and nobody writes after it.
        with monkeypatch.context() as patch:
            patch.setattr(realtime, "_send_to_group", lambda group, frame: None)
            lost = await database_sync_to_async(messaging_services.post_message)(
                conversation_id=conversation_id, sender=ticket.buyer, body="最后一条", client_id=uuid.uuid4()
            )
        assert [f for f in await frames_within(ws, 0.3) if f["type"] == "message"] == []
        await ws.send_json_to({"type": "ping"})
        # The pong at once; the message when the process' shared check (messaging/lag_checks.py) has run.
        assert (await ws.receive_json_from(timeout=3)) == {"type": "pong"}
        arrived = await receive_until(ws, "message")
        assert (arrived["message"]["seq"], arrived["message"]["body"]) == (lost.message.seq, "最后一条")
        await ws.disconnect()

    async_to_sync(scenario)()
