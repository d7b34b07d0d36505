"""Concurrent writers on real database connections (PostgreSQL in CI)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from messaging import services
from messaging.models import Message
from tests import factories
from tests.concurrency import run_concurrently
from tickets import services as ticket_services
from tickets.models import RefundTicket
from tickets.services import RequestedItem, TicketError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("store_path")
def test_twenty_concurrent_senders_get_gap_free_sequence_numbers():
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    agent = factories.agent()
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    conversation_id = ticket.conversation.pk
    senders = [order.buyer, agent] * 10
    client_ids = [uuid.uuid4() for _ in senders]

    def sender(index: int) -> Callable[[], Any]:
        return lambda: services.post_message(
            conversation_id=conversation_id, sender=senders[index], body=f"m{index}", client_id=client_ids[index]
        )

    results = run_concurrently([sender(i) for i in range(20)])

    assert [r for r in results if isinstance(r, Exception)] == []
    seqs = sorted(r.message.seq for r in results)
    assert seqs == list(range(2, 22))  # seq 1 is the "ticket created" system message
    stored = list(Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("seq", flat=True))
    assert stored == list(range(1, 22))


@pytest.mark.usefixtures("store_path")
def test_concurrent_resends_of_one_message_store_it_once():
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    client_id = uuid.uuid4()

    def resend() -> Any:
        return services.post_message(
            conversation_id=ticket.conversation.pk, sender=order.buyer, body="hello", client_id=client_id
        )

    results = run_concurrently([resend for _ in range(8)])

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.message.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Message.objects.filter(client_id=client_id).count() == 1


def test_concurrent_requests_for_one_item_open_one_ticket():
    alice = factories.buyer()
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    item_id = order.items.get().pk

    def request() -> Any:
        return ticket_services.create_refund_ticket(
            buyer=alice,
            order_no=order.order_no,
            kind="refund_only",
            reason="quality_defect",
            items=[RequestedItem(order_item_id=item_id, quantity=1)],
        )

    results = run_concurrently([request for _ in range(5)])

    assert sum(isinstance(r, RefundTicket) for r in results) == 1
    assert all(isinstance(r, TicketError) for r in results if not isinstance(r, RefundTicket))
    assert RefundTicket.objects.count() == 1
