"""`services.post_messages`: a batch of text messages in one transaction (the socket's group commit), with the same
results, rows and events as the messages sent one by one."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging import realtime, services
from messaging.models import Message, Participant
from messaging.selectors import serialize_message
from messaging.services import MessageRejected, PostedMessage, TextSend
from tests import factories
from tests.concurrency import run_concurrently
from tickets import services as ticket_services

pytestmark = pytest.mark.django_db


def claimed(buyer_name: str, agent: Any) -> Any:
    buyer = factories.buyer(username=buyer_name)
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    ticket.refresh_from_db()
    return ticket


def text(ticket: Any, sender: Any, body: object = "hello", client_id: uuid.UUID | None = None, **kw: Any) -> TextSend:
    return TextSend(
        conversation_id=ticket.conversation.pk, sender=sender, body=body, client_id=client_id or uuid.uuid4(), **kw
    )


def seqs(ticket: Any) -> list[int]:
    return list(Message.objects.filter(conversation=ticket.conversation).order_by("seq").values_list("seq", flat=True))


@pytest.mark.usefixtures("store_path")
def test_post_messages_stores_a_batch_in_order_and_answers_each_send(django_capture_on_commit_callbacks, published):
    agent = factories.agent(username="agent")
    alice, bob = claimed("alice", agent), claimed("bob", agent)
    earlier = services.post_message(
        conversation_id=alice.conversation.pk, sender=alice.buyer, body="first", client_id=uuid.uuid4()
    )
    bob_before = len(seqs(bob))
    outsider = factories.buyer(username="mallory")
    repeated = uuid.uuid4()
    sends = [
        text(alice, alice.buyer, "颜色不对", repeated),
        text(bob, agent, "您好"),
        text(alice, outsider, "let me in", language="en"),
        text(alice, agent, "请上传照片"),
        text(alice, alice.buyer, "颜色不对", repeated),  # resent before the first was acknowledged
        text(bob, bob.buyer, "   ", language="en"),
        text(alice, alice.buyer, "first", earlier.message.client_id),  # resent after it was stored
    ]
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        results = services.post_messages(sends=sends)

    assert [type(r).__name__ for r in results] == [
        "PostedMessage",
        "PostedMessage",
        "MessageRejected",
        "PostedMessage",
        "PostedMessage",
        "MessageRejected",
        "PostedMessage",
    ]
    stored = [r for r in results if isinstance(r, PostedMessage)]
    assert [(r.message.body, r.message.seq, r.created) for r in stored] == [
        ("颜色不对", earlier.message.seq + 1, True),
        ("您好", bob_before + 1, True),
        ("请上传照片", earlier.message.seq + 2, True),
        ("颜色不对", earlier.message.seq + 1, False),
        ("first", earlier.message.seq, False),
    ]
    assert stored[3].message.pk == stored[0].message.pk
    refusals = [r for r in results if isinstance(r, MessageRejected)]
    assert [(r.code, r.message) for r in refusals] == [
        ("not_allowed", "You cannot write in this conversation."),
        ("message_empty", "The message is empty."),
    ]
    assert seqs(alice) == list(range(1, earlier.message.seq + 3))
    assert seqs(bob) == list(range(1, bob_before + 2))
    # Each sender's own read position follows their newest message.
    assert Participant.objects.get(conversation=alice.conversation, user=agent).read_seq == earlier.message.seq + 2
    # The first staff reply stopped each ticket's clock.
    for ticket in (alice, bob):
        ticket.refresh_from_db()
        assert ticket.first_responded_at is not None

    new = [r.message for r in stored if r.created]
    messages = [(m, realtime.conversation_group(m.conversation_id)) for m in new]
    for message, group in messages:
        frame = {"type": "message", "message": serialize_message(message)}
        assert (group, frame) in published
    # Per conversation, the message frames go out in seq order.
    alice_group = realtime.conversation_group(alice.conversation.pk)
    alice_seqs = [f["message"]["seq"] for g, f in published if g == alice_group and f["type"] == "message"]
    assert alice_seqs == sorted(alice_seqs) == [earlier.message.seq + 1, earlier.message.seq + 2]
    activity_groups = [g for g, f in published if f["type"] == "ticket.activity"]
    assert activity_groups == [
        realtime.QUEUE_GROUP,
        realtime.activity_group(alice.buyer_id),
        realtime.QUEUE_GROUP,
        realtime.activity_group(bob.buyer_id),
        realtime.QUEUE_GROUP,
        realtime.activity_group(alice.buyer_id),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("store_path")
def test_concurrent_batches_over_the_same_conversations_neither_deadlock_nor_leave_gaps():
    agent = factories.agent(username="agent")
    tickets = [claimed(f"buyer{i}", agent) for i in range(3)]

    def batch(order: list[int]) -> Any:
        return lambda: services.post_messages(sends=[text(tickets[i], agent, f"m{i}") for i in order for _ in range(3)])

    orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] * 2
    before = {ticket.pk: len(seqs(ticket)) for ticket in tickets}
    results = run_concurrently([batch(order) for order in orders])

    assert [r for r in results if isinstance(r, Exception)] == []
    assert all(
        isinstance(posted, PostedMessage) and posted.created for batch_results in results for posted in batch_results
    )
    for ticket in tickets:
        assert seqs(ticket) == list(range(1, 1 + before[ticket.pk] + 3 * len(orders)))


@pytest.mark.usefixtures("store_path")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    program=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 5)), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=6),
)
def test_any_split_into_batches_stores_each_client_id_once_with_gap_free_seqs(
    program: list[tuple[int, int, int]], cuts: list[int], claimed_ticket: Any
) -> None:
    """Sends of (conversation, sender, client id) with repeats, cut into batches anywhere: every client_id is stored
    once, seqs are 1..N per conversation, and every result of one client_id names the same message."""
    ticket, agent = claimed_ticket
    other = claimed(f"other{uuid.uuid4().hex[:8]}", agent)
    tickets = [ticket, other]
    ids = [uuid.uuid4() for _ in range(6)]
    before = {t.pk: len(seqs(t)) for t in tickets}
    sends = [text(tickets[c], tickets[c].buyer if s == 0 else agent, f"{c}-{s}-{k}", ids[k]) for c, s, k in program]
    bounds = sorted({0, len(sends), *(cut for cut in cuts if cut < len(sends))})
    results: list[PostedMessage | MessageRejected] = []
    for start, end in itertools.pairwise(bounds):
        results += services.post_messages(sends=sends[start:end])

    by_key: dict[tuple[int, int, uuid.UUID], int] = {}
    for send, result in zip(sends, results, strict=True):
        assert isinstance(result, PostedMessage)
        key = (send.conversation_id, send.sender.pk, send.client_id)
        # Stored the first time, answered with the same message every time after.
        assert result.created == (key not in by_key)
        assert by_key.setdefault(key, result.message.pk) == result.message.pk
    for t in tickets:
        wanted = len({(s.sender.pk, s.client_id) for s in sends if s.conversation_id == t.conversation.pk})
        assert seqs(t) == list(range(1, before[t.pk] + wanted + 1))
