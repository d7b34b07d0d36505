"""Property tests of sequencing, dedup and resume, through the real consumer.

Hypothesis writes programs of sends, resends, disconnects and resumes for three
sockets (the buyer on two devices and the agent) while the channel layer loses
a chosen set of broadcasts. Whatever the program, every socket must receive a
conversation's messages in seq order without a gap or a duplicate, and after a
final resume hold exactly the committed messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging import realtime
from messaging.models import Message
from refundchat.asgi import application
from tests import factories
from tests.messaging.test_consumer import ORIGIN, session_cookie
from tickets import services as ticket_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("flush_channel_layer")]

CLIENTS = 3  # 0 and 1: the buyer's phone and laptop; 2: the agent

operations = st.one_of(
    st.tuples(st.just("send"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("resend"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("disconnect"), st.integers(0, CLIENTS - 1)),
    st.tuples(st.just("resume"), st.integers(0, CLIENTS - 1)),
)


def headers(user: Any) -> list[tuple[bytes, bytes]]:
    return [ORIGIN, (b"cookie", session_cookie(user))]


@dataclass
class ModelClient:
    """What a well-behaved client keeps: the messages it holds and what it sent."""

    headers: list[tuple[bytes, bytes]]  # the user's session cookie and the origin
    ws: WebsocketCommunicator | None = None
    bodies: dict[int, str] = field(default_factory=dict)  # seq -> body of every message it holds
    framed: set[int] = field(default_factory=set)  # the seqs that came as message frames
    sent: dict[str, str] = field(default_factory=dict)  # client_id -> body
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> seq

    @property
    def last_seq(self) -> int:
        """The end of the run it holds without a gap: what it resubscribes after."""
        seq = 0
        while seq + 1 in self.bodies:
            seq += 1
        return seq

    def take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "message":
            seq = frame["message"]["seq"]
            # The protocol's promise: in order, no gap, no duplicate, across reconnects.
            assert seq not in self.framed, f"seq {seq} came twice"
            self.framed.add(seq)
            if seq in self.bodies:
                # Only a message of its own, held since the ack, may come again: by a catch-up after a resume.
                assert seq in self.acked.values(), f"seq {seq} came again"
                return
            assert seq == self.last_seq + 1, f"got seq {seq} after {self.last_seq}"
            self.bodies[seq] = frame["message"]["body"]
        elif frame["type"] == "message.ack":
            self.acked[frame["client_id"]] = frame["seq"]
            # The ack stands for the broadcast of its own text message on this socket (protocol v3).
            self.bodies.setdefault(frame["seq"], self.sent[frame["client_id"]])


async def drain(client: ModelClient, *, until: str | None = None, ref: str | None = None) -> None:
    """Take the frames that have arrived; with `until`, wait for that frame (matching `ref`) first."""
    assert client.ws is not None
    while True:
        if until is None and await client.ws.receive_nothing(timeout=0.02):
            return
        frame = await client.ws.receive_json_from(timeout=5)
        client.take(frame)
        if until is not None and frame["type"] == until and ref in (None, frame.get("client_id")):
            return


async def resume(client: ModelClient, conversation_id: int) -> None:
    if client.ws is not None:
        await drain(client)
        await client.ws.disconnect()
    client.ws = WebsocketCommunicator(application, "/ws/", headers=client.headers)
    connected, _ = await client.ws.connect()
    assert connected
    await client.ws.send_json_to({"type": "subscribe", "conversation": conversation_id, "last_seq": client.last_seq})
    await drain(client, until="subscribed")
    # Resend whatever was never acked, as the browser does after every (re)connect.
    for client_id, body in client.sent.items():
        if client_id not in client.acked:
            await send(client, conversation_id, client_id, body)


async def send(client: ModelClient, conversation_id: int, client_id: str, body: str) -> None:
    assert client.ws is not None
    await client.ws.send_json_to(
        {"type": "message.send", "conversation": conversation_id, "client_id": client_id, "body": body}
    )
    await drain(client, until="message.ack", ref=client_id)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(operations, min_size=1, max_size=18), lost=st.sets(st.integers(1, 20), max_size=6))
def test_every_client_ends_with_exactly_the_committed_messages_in_order(
    program: list[tuple[str, int]], lost: set[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = factories.buyer()
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(100, 1)]))
    agent = factories.agent()
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    conversation_id = ticket.conversation.pk
    clients = [ModelClient(headers(alice)), ModelClient(headers(alice)), ModelClient(headers(agent))]

    # The channel layer loses the broadcasts of the chosen seqs (it delivers at most once).
    deliver = realtime._send_to_group

    def lossy(group: str, frame: dict[str, Any]) -> None:
        if frame["type"] == "message" and frame["message"]["seq"] in lost:
            return
        deliver(group, frame)

    async def run() -> None:
        for client in clients:
            await resume(client, conversation_id)
        for step, (operation, index) in enumerate(program):
            client = clients[index]
            if operation == "send":
                if client.ws is None:
                    # Offline: the message waits in the outbox until the next resume.
                    client.sent[str(uuid.uuid4())] = f"offline {step}"
                else:
                    client_id = str(uuid.uuid4())
                    client.sent[client_id] = f"message {step}"
                    await send(client, conversation_id, client_id, client.sent[client_id])
            elif operation == "resend" and client.ws is not None and client.acked:
                client_id = sorted(client.acked)[step % len(client.acked)]
                seq = client.acked[client_id]
                await send(client, conversation_id, client_id, client.sent[client_id])
                assert client.acked[client_id] == seq, "a resend must be answered with the original seq"
            elif operation == "disconnect" and client.ws is not None:
                await drain(client)
                await client.ws.disconnect()
                client.ws = None
            elif operation == "resume":
                await resume(client, conversation_id)
            for other in clients:
                if other.ws is not None:
                    await drain(other)
        # Back online: the first round flushes every outbox, the second catches everyone up.
        for _round in range(2):
            for client in clients:
                await resume(client, conversation_id)
        for client in clients:
            assert client.ws is not None
            await client.ws.disconnect()

    with monkeypatch.context() as patch:
        patch.setattr(realtime, "_send_to_group", lossy)
        async_to_sync(run)()

    committed = dict(Message.objects.filter(conversation_id=conversation_id).values_list("seq", "body"))
    assert sorted(committed) == list(range(1, len(committed) + 1)), "seqs are gap-free"
    sent_bodies = [body for client in clients for body in client.sent.values()]
    # Every message any client sent is stored exactly once, however often it was resent.
    assert sorted(b for b in committed.values() if b in sent_bodies) == sorted(sent_bodies)
    for client in clients:
        assert client.bodies == committed
