"""The refund state machine on concurrent real connections (PostgreSQL in CI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tests.concurrency import run_concurrently
from tickets import workflow
from tickets.models import Order, RefundTicket, TicketEvent, TicketStatus
from tickets.services import RequestedItem, create_refund_ticket
from tickets.workflow import TransitionInput, TransitionRefused

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_agents_approving_at_once_one_wins_the_other_is_told_who():
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    agents = [factories.agent(username="wei", first_name="Wei"), factories.agent(username="li", first_name="Li")]

    def approve(agent: Any) -> Any:
        return lambda: workflow.do_transition(
            ticket_id=ticket.pk, name="approve_refund_only", user=agent, given=TransitionInput(amount_cents=7900)
        )

    results = run_concurrently([approve(agent) for agent in agents])

    winners = [r for r in results if isinstance(r, TicketEvent)]
    losers = [r for r in results if isinstance(r, TransitionRefused)]
    assert (len(winners), len(losers)) == (1, 1)
    assert losers[0].code == "wrong_state"
    assert winners[0].actor.first_name in losers[0].message
    assert TicketEvent.objects.filter(ticket=ticket, to_status=TicketStatus.APPROVED_REFUND_ONLY).count() == 1
    assert Order.objects.get(pk=order.pk).refund_committed_cents == 7900


def test_two_tickets_of_one_order_cannot_together_refund_more_than_was_paid():
    buyer = factories.buyer()
    order = factories.order_with_items(buyer=buyer, items=[(8000, 1), (8000, 1)])
    # A coupon: the buyer paid less than the items' list prices.
    Order.objects.filter(pk=order.pk).update(paid_total_cents=10000)
    tickets = [
        create_refund_ticket(
            buyer=buyer,
            order_no=order.order_no,
            kind="refund_only",
            reason="quality_defect",
            items=[RequestedItem(order_item_id=item.pk, quantity=1)],
        )
        for item in order.items.all()
    ]
    agent = factories.agent()

    def approve(ticket: RefundTicket) -> Any:
        return lambda: workflow.do_transition(
            ticket_id=ticket.pk, name="approve_refund_only", user=agent, given=TransitionInput(amount_cents=8000)
        )

    results = run_concurrently([approve(ticket) for ticket in tickets])

    refused = [r for r in results if isinstance(r, TransitionRefused)]
    assert sum(isinstance(r, TicketEvent) for r in results) == 1
    assert [r.code for r in refused] == ["over_refund"]
    assert "¥20.00" in refused[0].message  # what is left to refund
    assert Order.objects.get(pk=order.pk).refund_committed_cents == 8000
    statuses = sorted(RefundTicket.objects.filter(order=order).values_list("status", flat=True))
    assert statuses == ["approved_refund_only", "requested"]


def test_database_refuses_a_committed_total_above_the_paid_total():
    from django.db import IntegrityError, transaction

    order = factories.order_with_items(buyer=factories.buyer(), items=[(8000, 1)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(refund_committed_cents=order.paid_total_cents + 1)
