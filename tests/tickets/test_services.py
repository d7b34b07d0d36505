from __future__ import annotations

import pytest
from django.core import mail
from django.http import Http404

from messaging.models import Message, MessageKind, Participant
from tests import factories
from tickets import services
from tickets.models import RefundTicket, TicketEvent, TicketEventKind, TicketStatus
from tickets.services import RequestedItem, TicketError

pytestmark = pytest.mark.django_db


def request_refund(buyer, order, *, item_id=None, quantity=1, kind="refund_only", reason="other"):
    """Ask a refund for `quantity` of one item (the order's only item by default)."""
    return services.create_refund_ticket(
        buyer=buyer,
        order_no=order.order_no,
        kind=kind,
        reason=reason,
        items=[RequestedItem(order_item_id=item_id or order.items.get().pk, quantity=quantity)],
    )


def test_create_refund_ticket_opens_ticket_conversation_and_event(django_capture_on_commit_callbacks, published):
    alice = factories.buyer(username="alice", email="alice@example.com")
    order = factories.order_with_items(buyer=alice, items=[(7900, 2), (12900, 1)])
    first, _second = order.items.all()

    with django_capture_on_commit_callbacks(execute=True):
        ticket = services.create_refund_ticket(
            buyer=alice,
            order_no=order.order_no,
            kind="return_and_refund",
            reason="wrong_size",
            items=[RequestedItem(order_item_id=first.pk, quantity=1)],
            description="  太小了  ",
            language="en",
        )

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REQUESTED
    assert ticket.requested_amount_cents == 7900
    assert ticket.description == "太小了"
    assert ticket.first_response_due_at > ticket.created_at
    assert [(row.order_item_id, row.quantity) for row in ticket.items.all()] == [(first.pk, 1)]
    event = TicketEvent.objects.get(ticket=ticket)
    assert (event.kind, event.actor, event.to_status) == (TicketEventKind.CREATED, alice, TicketStatus.REQUESTED)
    assert list(Participant.objects.filter(conversation=ticket.conversation).values_list("user_id", "role")) == [
        (alice.pk, "buyer")
    ]
    # The Celery task (eager in tests) posted the system message and sent the email in the buyer's language.
    system = Message.objects.get(conversation=ticket.conversation)
    assert system.kind == MessageKind.SYSTEM
    assert system.seq == 1
    assert system.body == f"Ticket {ticket.number} created, an agent will answer within 2 hours."
    assert len(mail.outbox) == 1
    assert ticket.number in mail.outbox[0].subject
    assert mail.outbox[0].to == ["alice@example.com"]
    ticket_frame = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "requested", "assigned_agent_id": None}
    conversation_group = f"conversation.{ticket.conversation.pk}"
    assert published[:3] == [
        ("queue", ticket_frame),
        (conversation_group, ticket_frame),
        (f"user.{alice.pk}", ticket_frame),
    ]
    assert published[3][0] == conversation_group
    assert published[3][1]["message"]["seq"] == 1


def test_notification_task_is_idempotent(django_capture_on_commit_callbacks):
    alice = factories.buyer()
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=order)
    from tickets.models import OutboxMessage
    from tickets.tasks import deliver_outbox_message

    for message in OutboxMessage.objects.filter(ticket=ticket):
        assert deliver_outbox_message(message.pk) is False  # a redelivered task does nothing
    assert Message.objects.filter(conversation=ticket.conversation).count() == 1
    assert len(mail.outbox) == 1


def test_refund_for_someone_elses_order_is_404():
    alice, bob = factories.buyer(), factories.buyer()
    order = factories.order_with_items(buyer=bob, items=[(7900, 1)])
    with pytest.raises(Http404):
        request_refund(alice, order)
    assert not RefundTicket.objects.exists()


def test_second_open_ticket_for_same_item_is_refused():
    alice = factories.buyer()
    order = factories.order_with_items(buyer=alice, items=[(7900, 2)])
    factories.open_ticket(order=order)
    with pytest.raises(TicketError, match="already has an open refund request"):
        request_refund(alice, order)
    assert RefundTicket.objects.count() == 1


@pytest.mark.parametrize(
    ("quantity", "kind", "reason", "message"),
    [
        (3, "refund_only", "other", "at most 2"),
        (0, "refund_only", "other", "at most 2"),
        (1, "exchange", "other", "refund only or return"),
        (1, "refund_only", "because", "reason"),
    ],
)
def test_bad_refund_requests_change_nothing(quantity, kind, reason, message):
    alice = factories.buyer()
    order = factories.order_with_items(buyer=alice, items=[(7900, 2)])
    with pytest.raises(TicketError, match=message):
        request_refund(alice, order, quantity=quantity, kind=kind, reason=reason)
    assert not RefundTicket.objects.exists()
    assert not TicketEvent.objects.exists()


def test_item_of_another_order_is_refused():
    alice = factories.buyer()
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    other = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    with pytest.raises(TicketError, match="not part of this order"):
        request_refund(alice, order, item_id=other.items.get().pk)


def test_claim_ticket_assigns_once(django_capture_on_commit_callbacks, published):
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    first, second = factories.agent(username="agent"), factories.agent(username="agent2")

    with django_capture_on_commit_callbacks(execute=True):
        services.claim_ticket(ticket_id=ticket.pk, agent=first)
    ticket.refresh_from_db()
    assert ticket.assigned_agent == first
    assert Participant.objects.filter(conversation=ticket.conversation, user=first, role="agent").exists()
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.ASSIGNED)
    assert event.actor == first
    assert event.visible_to_buyer is False
    frame = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "requested", "assigned_agent_id": first.pk}
    assert published == [
        ("queue", frame),
        (f"conversation.{ticket.conversation.pk}", frame),
        (f"user.{order.buyer.pk}", frame),
    ]

    with pytest.raises(TicketError, match="Already claimed by agent"):
        services.claim_ticket(ticket_id=ticket.pk, agent=second)
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.ASSIGNED).count() == 1


def test_buyer_cannot_claim():
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    with pytest.raises(TicketError, match="permission"):
        services.claim_ticket(ticket_id=ticket.pk, agent=order.buyer)
