"""Message services: the exact events they publish after commit, receipts and the send rate."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from messaging import ratelimit, realtime, services
from messaging.models import Message, Participant
from messaging.selectors import serialize_message
from messaging.services import MessageRejected
from tests import factories
from tickets.models import TicketEventKind

pytestmark = pytest.mark.django_db


def send(ticket, sender, body="hello", client_id=None):
    return services.post_message(
        conversation_id=ticket.conversation.pk, sender=sender, body=body, client_id=client_id or uuid.uuid4()
    )


@pytest.mark.usefixtures("store_path")
def test_post_message_publishes_message_and_list_activity(
    claimed_ticket, django_capture_on_commit_callbacks, published
):
    ticket, _agent = claimed_ticket
    conversation = ticket.conversation
    with django_capture_on_commit_callbacks(execute=True):
        posted = send(ticket, ticket.buyer)

    message = posted.message
    activity = {
        "type": "ticket.activity",
        "ticket_id": ticket.pk,
        "conversation": conversation.pk,
        "seq": message.seq,
        "sender_id": ticket.buyer.pk,
        "last_message_at": message.created_at.isoformat(),
    }
    assert published == [
        (realtime.conversation_group(conversation.pk), {"type": "message", "message": serialize_message(message)}),
        (realtime.QUEUE_GROUP, activity),
        (realtime.activity_group(ticket.buyer.pk), activity),
    ]


@pytest.mark.usefixtures("store_path")
def test_post_message_marks_the_senders_own_message_read(claimed_ticket):
    ticket, agent = claimed_ticket
    posted = send(ticket, agent)
    mine = Participant.objects.get(conversation=ticket.conversation, user=agent)
    assert (mine.delivered_seq, mine.read_seq) == (posted.message.seq, posted.message.seq)
    buyer = Participant.objects.get(conversation=ticket.conversation, user=ticket.buyer)
    assert buyer.read_seq < posted.message.seq


def test_mark_seen_moves_forward_only_and_announces_each_change(
    claimed_ticket, django_capture_on_commit_callbacks, published
):
    ticket, agent = claimed_ticket
    conversation_id = ticket.conversation.pk
    for n in range(3):
        send(ticket, ticket.buyer, body=f"m{n}")
    last = Message.objects.filter(conversation_id=conversation_id).latest("seq").seq
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.mark_seen(conversation_id=conversation_id, user=agent, delivered_seq=last)
        services.mark_seen(conversation_id=conversation_id, user=agent, read_seq=last - 1)
        # Backwards, or the same again: nothing changes, nothing is announced.
        services.mark_seen(conversation_id=conversation_id, user=agent, delivered_seq=1, read_seq=1)
        # Past the last message: clamped.
        services.mark_seen(conversation_id=conversation_id, user=agent, read_seq=last + 50)

    def receipt(delivered: int, read: int) -> dict[str, object]:
        return {
            "type": "receipt",
            "conversation": conversation_id,
            "user_id": agent.pk,
            "delivered_seq": delivered,
            "read_seq": read,
        }

    expected = []
    for frame in (receipt(last, 0), receipt(last, last - 1), receipt(last, last)):
        expected += [(realtime.conversation_group(conversation_id), frame), (realtime.user_group(agent.pk), frame)]
    assert published == expected
    participant = Participant.objects.get(conversation_id=conversation_id, user=agent)
    assert (participant.delivered_seq, participant.read_seq) == (last, last)


def test_reading_implies_delivery(claimed_ticket):
    ticket, agent = claimed_ticket
    send(ticket, ticket.buyer)
    seq = send(ticket, ticket.buyer).message.seq
    participant = services.mark_seen(conversation_id=ticket.conversation.pk, user=agent, read_seq=seq)
    assert (participant.delivered_seq, participant.read_seq) == (seq, seq)


def test_mark_seen_by_someone_outside_the_conversation_is_refused(claimed_ticket, published):
    ticket, _agent = claimed_ticket
    onlooker = factories.agent(username="onlooker")
    with pytest.raises(MessageRejected) as refused:
        services.mark_seen(conversation_id=ticket.conversation.pk, user=onlooker, read_seq=1)
    assert refused.value.code == "not_allowed"
    assert not Participant.objects.filter(user=onlooker).exists()
    assert published == []


@override_settings(REFUNDCHAT_SEND_BURST=3, REFUNDCHAT_SEND_RATE=0.5)
@pytest.mark.usefixtures("store_path")
def test_send_rate_limit_refuses_a_burst_but_not_resends(claimed_ticket):
    ticket, _agent = claimed_ticket
    first = uuid.uuid4()
    send(ticket, ticket.buyer, client_id=first)
    send(ticket, ticket.buyer)
    send(ticket, ticket.buyer)
    with pytest.raises(MessageRejected) as refused:
        send(ticket, ticket.buyer, body="one too many")
    assert refused.value.code == "rate_limited"
    assert 0 < refused.value.retry_after <= 2
    assert "too fast" in refused.value.message
    assert not Message.objects.filter(body="one too many").exists()
    # A resend of a stored message costs nothing and still answers with the original.
    again = send(ticket, ticket.buyer, client_id=first)
    assert again.created is False
    assert again.message.pk == Message.objects.get(client_id=first).pk


@pytest.mark.usefixtures("store_path")
@override_settings(REFUNDCHAT_SEND_BURST=2, REFUNDCHAT_SEND_RATE=0.01)
def test_a_resend_under_the_limit_gives_its_token_back(claimed_ticket):
    ticket, _agent = claimed_ticket
    first = uuid.uuid4()
    send(ticket, ticket.buyer, client_id=first)
    for _ in range(3):
        assert send(ticket, ticket.buyer, client_id=first).created is False
    # The bucket still holds the second token: the resends took none.
    assert send(ticket, ticket.buyer, body="second").created is True
    with pytest.raises(MessageRejected):
        send(ticket, ticket.buyer, body="third")


@pytest.mark.usefixtures("store_path")
def test_post_message_returns_the_stored_row(claimed_ticket):
    ticket, agent = claimed_ticket
    client_id = uuid.uuid4()
    posted = send(ticket, agent, body="  on it  ", client_id=client_id)
    stored = Message.objects.get(pk=posted.message.pk)
    assert (stored.seq, stored.kind, stored.sender_id, stored.body, stored.client_id, stored.created_at) == (
        posted.message.seq,
        "text",
        agent.pk,
        "on it",
        client_id,
        posted.message.created_at,
    )
    ticket.conversation.refresh_from_db()
    assert (ticket.conversation.last_seq, ticket.conversation.last_message_at) == (stored.seq, stored.created_at)
    assert serialize_message(posted.message) == serialize_message(stored)


@pytest.mark.usefixtures("store_path")
def test_only_the_first_staff_reply_is_recorded_as_first_response(claimed_ticket):
    ticket, agent = claimed_ticket
    send(ticket, ticket.buyer, body="hello?")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is None
    send(ticket, agent, body="first")
    ticket.refresh_from_db()
    first_at = ticket.first_responded_at
    assert first_at is not None
    send(ticket, agent, body="second")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == first_at
    assert ticket.events.filter(kind=TicketEventKind.FIRST_RESPONSE).count() == 1


@pytest.mark.usefixtures("store_path")
def test_someone_not_handling_the_ticket_cannot_post_and_nothing_changes(claimed_ticket, published):
    ticket, _agent = claimed_ticket
    other_agent = factories.agent(username="agent2")
    stranger = factories.buyer(username="mallory")
    before = ticket.conversation.messages.count()
    for user in (other_agent, stranger):
        with pytest.raises(MessageRejected) as refused:
            send(ticket, user, body="let me in")
        assert refused.value.code == "not_allowed"
    with pytest.raises(MessageRejected):
        services.post_message(conversation_id=999_999, sender=ticket.buyer, body="nowhere", client_id=uuid.uuid4())
    assert ticket.conversation.messages.count() == before
    ticket.conversation.refresh_from_db()
    assert ticket.conversation.last_seq == before
    assert published == []


@override_settings(REFUNDCHAT_SEND_BURST=2, REFUNDCHAT_SEND_RATE=1000)
def test_send_rate_bucket_refills(claimed_ticket):
    ticket, _agent = claimed_ticket
    for n in range(6):
        send(ticket, ticket.buyer, body=f"fast {n}")
    assert Message.objects.filter(body__startswith="fast").count() == 6


def test_token_bucket_is_shared_per_user_and_separate_between_users():
    bucket = f"test:{uuid.uuid4()}"
    assert [ratelimit.take_token(bucket=bucket, capacity=2, rate=0.1) for _ in range(3)][:2] == [0.0, 0.0]
    assert ratelimit.take_token(bucket=bucket, capacity=2, rate=0.1) > 0
    assert ratelimit.take_token(bucket=bucket + "-other", capacity=2, rate=0.1) == 0.0


def test_local_token_bucket_without_redis():
    buckets = ratelimit._LocalBuckets()
    assert [buckets.take("k", 2, 0.1) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("k", 2, 0.1) == pytest.approx(10, rel=0.01)
