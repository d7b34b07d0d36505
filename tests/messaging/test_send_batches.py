"""The sockets' group commit (messaging/send_batches.py): sends that arrive together are stored together, and each
caller gets its own answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from messaging import send_batches, services
from messaging.models import Message
from messaging.services import MessageRejected, PostedMessage, TextSend
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    original = services.post_messages

    def recording(*, sends: Any) -> Any:
        sizes.append(len(sends))
        return original(sends=sends)

    monkeypatch.setattr(services, "post_messages", recording)
    return sizes


def test_sends_that_arrive_together_go_in_one_batch_and_each_gets_its_answer(claimed_ticket, batch_sizes):
    ticket, agent = claimed_ticket
    outsider = factories.buyer(username="mallory")
    senders = [ticket.buyer, agent] * 10
    senders[7] = outsider
    sends = [
        TextSend(conversation_id=ticket.conversation.pk, sender=sender, body=f"m{i}", client_id=uuid.uuid4())
        for i, sender in enumerate(senders)
    ]

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(send_batches.post_message(send) for send in sends), return_exceptions=True)

    results = async_to_sync(scenario)()

    assert batch_sizes == [20]
    refused = results.pop(7)
    assert isinstance(refused, MessageRejected)
    assert refused.code == "not_allowed"
    assert all(isinstance(r, PostedMessage) and r.created for r in results)
    assert [r.message.body for r in results] == [s.body for i, s in enumerate(sends) if i != 7]
    # In the order they arrived, with no gap.
    first = results[0].message.seq
    assert [r.message.seq for r in results] == list(range(first, first + 19))


def test_a_send_that_finds_nothing_in_flight_goes_at_once_alone(claimed_ticket, batch_sizes):
    ticket, agent = claimed_ticket

    async def scenario() -> list[PostedMessage]:
        posted = []
        for i in range(3):
            send = TextSend(conversation_id=ticket.conversation.pk, sender=agent, body=f"m{i}", client_id=uuid.uuid4())
            posted.append(await send_batches.post_message(send))
        return posted

    async_to_sync(scenario)()
    assert batch_sizes == [1, 1, 1]


def test_a_sender_who_goes_away_while_waiting_still_has_the_message_stored(claimed_ticket, batch_sizes):
    ticket, _agent = claimed_ticket
    client_id = uuid.uuid4()
    gone = TextSend(conversation_id=ticket.conversation.pk, sender=ticket.buyer, body="gone", client_id=client_id)
    stays = TextSend(conversation_id=ticket.conversation.pk, sender=ticket.buyer, body="stays", client_id=uuid.uuid4())

    async def scenario() -> PostedMessage:
        leaving = asyncio.ensure_future(send_batches.post_message(gone))
        staying = asyncio.ensure_future(send_batches.post_message(stays))
        await asyncio.sleep(0)  # both are queued
        leaving.cancel()  # the socket closed
        return await staying

    posted = async_to_sync(scenario)()
    assert posted.created
    assert Message.objects.filter(client_id=client_id, body="gone").count() == 1


def test_a_conversation_is_in_one_batch_at_a_time_so_its_messages_keep_their_order(claimed_ticket, batch_sizes):
    ticket, agent = claimed_ticket
    other = factories.open_ticket(
        order=factories.order_with_items(buyer=factories.buyer(username="bob"), items=[(100, 1)])
    )

    def text(conversation: Any, sender: Any, body: str) -> TextSend:
        return TextSend(conversation_id=conversation.pk, sender=sender, body=body, client_id=uuid.uuid4())

    async def scenario() -> list[PostedMessage]:
        batches = send_batches.batcher()
        first = [batches.submit(text(ticket.conversation, agent, f"a{i}")) for i in range(3)]
        await asyncio.sleep(0)  # that batch is in flight now, holding alice's conversation
        later = [batches.submit(text(ticket.conversation, ticket.buyer, f"a{i}")) for i in range(3, 6)]
        beside = [batches.submit(text(other.conversation, other.buyer, "b0"))]
        return list(await asyncio.gather(*first, *later, *beside))

    results = async_to_sync(scenario)()

    # bob's message went in a batch beside the first; alice's later ones waited for it to finish.
    assert sorted(batch_sizes) == [1, 3, 3]
    alice = [r.message for r in results if r.message.conversation_id == ticket.conversation.pk]
    assert [m.body for m in sorted(alice, key=lambda m: m.seq)] == [f"a{i}" for i in range(6)]
