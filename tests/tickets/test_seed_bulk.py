"""`manage.py seed_bulk` on a small size: the data set is consistent, deterministic and leaves other rows alone."""

from __future__ import annotations

from collections import Counter, defaultdict
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F, Max, Min

from messaging.models import Conversation, Message, MessageKind, Participant, ParticipantRole
from tickets.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    Order,
    Payout,
    PayoutStatus,
    RefundTicket,
    SatisfactionRating,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from tickets.workflow import COMMITTED_STATUSES, TRANSITIONS, check_tracking

# Committed, then flushed (TRUNCATE): seeding in a rolled-back transaction would leave the tables' files grown by
# thousands of dead rows, which changes the plans later tests see.
pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = 300


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_bulk", "--tickets", str(TICKETS), "--buyers", "60", "--agents", "6", *args, stdout=out)
    return out.getvalue()


def bulk_tickets():
    return RefundTicket.objects.filter(buyer__username__startswith="bulk-")


def check_foreign_keys() -> None:
    """Django's foreign keys are deferred to the commit, which a test never reaches: check them now."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_key_check")
            assert cursor.fetchall() == []


def test_seed_bulk_writes_a_consistent_data_set():
    output = seed("--messages", "3100")
    assert "Bulk data ready" in output
    check_foreign_keys()
    tickets = list(bulk_tickets().select_related("order", "conversation"))
    assert len(tickets) == TICKETS
    assert Message.objects.filter(conversation__ticket__in=tickets).count() == 3100
    assert get_user_model().objects.filter(username__startswith="bulk-b").count() == 60

    # Every ticket has its conversation, with gap-free seqs from 1 and last_seq / last_message_at on the newest.
    seqs = {
        row["conversation"]: row
        for row in Message.objects.filter(conversation__ticket__in=tickets)
        .values("conversation")
        .annotate(n=Count("pk"), low=Min("seq"), high=Max("seq"), newest=Max("created_at"))
    }
    for ticket in tickets:
        conversation = ticket.conversation
        row = seqs[conversation.pk]
        assert (row["low"], row["high"], row["n"]) == (1, conversation.last_seq, conversation.last_seq)
        assert conversation.last_message_at == row["newest"]
    assert Conversation.objects.filter(ticket__in=tickets).count() == TICKETS

    # Every state shows up, most tickets are finished, and a real share is still open.
    statuses = Counter(ticket.status for ticket in tickets)
    assert sum(n for s, n in statuses.items() if s in FINAL_STATUSES) > 0.8 * TICKETS
    assert sum(n for s, n in statuses.items() if s in OPEN_STATUSES) >= 3
    assert {TicketStatus.REFUNDED, TicketStatus.REJECTED, TicketStatus.CANCELLED, TicketStatus.CLOSED} <= set(statuses)
    assert len(statuses) >= 6

    # The status events of each ticket are a walk through the workflow's transitions, ending where it stands.
    walks: dict[int, list[TicketEvent]] = defaultdict(list)
    for event in TicketEvent.objects.filter(ticket__in=tickets).order_by("created_at", "id"):
        walks[event.ticket_id].append(event)
    allowed = {(source, t.target) for t in TRANSITIONS.values() for source in t.sources}
    for ticket in tickets:
        events = walks[ticket.pk]
        assert events[0].kind == TicketEventKind.CREATED
        assert events[0].created_at == ticket.created_at
        status = TicketStatus.REQUESTED
        for event in events:
            if event.kind == TicketEventKind.STATUS_CHANGED:
                assert event.from_status == status
                assert (status, event.to_status) in allowed
                assert event.data["transition"] in TRANSITIONS
                status = event.to_status
        assert status == ticket.status
        # Assigned first, then answered by the agent, then every step after the creation.
        assigned = [e.created_at for e in events if e.kind == TicketEventKind.ASSIGNED]
        if ticket.first_responded_at is not None:
            assert assigned
            assert max(assigned) < ticket.first_responded_at
        assert all(e.created_at >= ticket.created_at for e in events)
        assert events[-1].created_at <= ticket.updated_at
        assert (ticket.resolved_at is not None) == (ticket.status in FINAL_STATUSES)

        # Money: what the order has committed is exactly what the ticket holds approved.
        if ticket.status in COMMITTED_STATUSES:
            assert ticket.approved_amount_cents is not None
            assert 0 < ticket.approved_amount_cents <= ticket.order.paid_total_cents
            assert ticket.order.refund_committed_cents == ticket.approved_amount_cents
        else:
            assert ticket.approved_amount_cents is None
            assert ticket.order.refund_committed_cents == 0
        assert 0 < ticket.requested_amount_cents <= ticket.order.paid_total_cents
        if ticket.return_tracking_no:
            assert check_tracking(carrier=ticket.return_carrier, tracking_no=ticket.return_tracking_no) == (
                ticket.return_carrier,
                ticket.return_tracking_no,
            )
        if ticket.assigned_agent_id is None:
            assert ticket.first_responded_at is None
    assert any(ticket.return_tracking_no for ticket in tickets)

    # Payouts for the refunds, ratings only for finished tickets.
    for payout in Payout.objects.filter(ticket__in=tickets).select_related("ticket"):
        assert payout.ticket.status in (TicketStatus.REFUND_PENDING, TicketStatus.REFUNDED)
        assert payout.amount_cents == payout.ticket.approved_amount_cents
        assert (payout.status == PayoutStatus.SUCCEEDED) == (payout.ticket.status == TicketStatus.REFUNDED)
    assert Payout.objects.filter(ticket__in=tickets).count() == sum(
        statuses[s] for s in (TicketStatus.REFUND_PENDING, TicketStatus.REFUNDED)
    )
    ratings = SatisfactionRating.objects.filter(ticket__in=tickets).select_related("ticket")
    assert ratings.exists()
    assert all(r.ticket.status in FINAL_STATUSES and 1 <= r.score <= 5 for r in ratings)

    # The buyer sits in every chat, the agent in every assigned one; staff write only from the first response on.
    seats = Counter(
        Participant.objects.filter(conversation__ticket__in=tickets, role=ParticipantRole.BUYER).values_list(
            "conversation__ticket__buyer_id", flat=True
        )
    )
    assert sum(seats.values()) == TICKETS
    for ticket in tickets:
        if ticket.assigned_agent_id:
            assert Participant.objects.filter(
                conversation=ticket.conversation, user_id=ticket.assigned_agent_id
            ).exists()
    first_staff = (
        Message.objects.filter(conversation__ticket__in=tickets, kind=MessageKind.TEXT)
        .exclude(sender_id=F("conversation__ticket__buyer_id"))
        .values("conversation__ticket")
        .annotate(first=Min("created_at"))
    )
    answered = {t.pk: t.first_responded_at for t in tickets}
    for row in first_staff:
        assert answered[row["conversation__ticket"]] == row["first"]


def test_seed_bulk_refuses_a_second_run_and_force_replaces_only_bulk_rows(settings):
    settings.DEMO_DATA_ALLOWED = True
    call_command("seed_demo", stdout=StringIO())
    demo_orders = set(Order.objects.values_list("order_no", flat=True))
    demo_users = set(get_user_model().objects.values_list("username", flat=True))

    seed("--seed", "7")
    first = list(bulk_tickets().order_by("id").values_list("status", "reason", "requested_amount_cents"))
    first_bodies = list(
        Message.objects.filter(conversation__ticket__buyer__username__startswith="bulk-", kind=MessageKind.TEXT)
        .order_by("id")
        .values_list("body", flat=True)[:200]
    )
    with pytest.raises(CommandError, match="already has bulk data"):
        seed("--seed", "7")
    assert bulk_tickets().count() == TICKETS

    seed("--seed", "7", "--force")
    check_foreign_keys()
    # The same seed, the same data set (ids and times aside), and nothing left of the first run.
    assert list(bulk_tickets().order_by("id").values_list("status", "reason", "requested_amount_cents")) == first
    assert (
        list(
            Message.objects.filter(conversation__ticket__buyer__username__startswith="bulk-", kind=MessageKind.TEXT)
            .order_by("id")
            .values_list("body", flat=True)[:200]
        )
        == first_bodies
    )
    assert bulk_tickets().count() == TICKETS
    assert Order.objects.filter(buyer__username__startswith="bulk-").count() == TICKETS
    # Demo rows untouched.
    assert demo_orders <= set(Order.objects.values_list("order_no", flat=True))
    assert Order.objects.exclude(buyer__username__startswith="bulk-").count() == len(demo_orders)
    assert demo_users <= set(get_user_model().objects.values_list("username", flat=True))


def test_seed_bulk_rejects_nonsense_sizes():
    with pytest.raises(CommandError, match="at least"):
        call_command("seed_bulk", "--tickets", "0", stdout=StringIO())
    assert not bulk_tickets().exists()
