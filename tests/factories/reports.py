"""Tickets with a history written directly, every time given: the report tests' fixtures (tests/tickets/reports/,
tests/e2e/test_reports.py). The services would stamp the current time; reports are about times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

from messaging.models import Conversation, Message, MessageKind, Participant, ParticipantRole
from tickets.models import (
    Label,
    Order,
    OrderItem,
    Payout,
    PayoutStatus,
    RefundTicket,
    RefundTicketItem,
    SatisfactionRating,
    TicketEvent,
    TicketEventKind,
    TicketLabel,
)
from tickets.models import TicketStatus as S

SHANGHAI = ZoneInfo("Asia/Shanghai")
_numbers = count(1)


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of a day in the business time zone."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=SHANGHAI)


@dataclass
class Spec:
    created: datetime
    status: str
    reason: str = "quality_defect"
    agent: Any = None
    first_response: int | None = None  # minutes after creation
    resolved: int | None = None  # minutes after creation
    approved: int | None = None  # cents
    items: list[tuple[str, int, int]] = field(default_factory=lambda: [("OTHER", 1000, 1)])  # sku, price, quantity
    breached_at: datetime | None = None
    handoff: str = ""
    rating: tuple[int, str, datetime] | None = None
    paid_after: int | None = None  # minutes after creation
    labels: tuple[Label, ...] = ()
    reopened: bool = False
    staff_message_by: Any = None


def make(spec: Spec, *, buyer: Any) -> RefundTicket:
    """Rows written directly (the services would stamp the current time): every time is the fixture's."""
    number = next(_numbers)
    order = Order.objects.create(
        buyer=buyer,
        order_no=f"R{number:08d}",
        paid_total_cents=sum(p * q for _s, p, q in spec.items),
        paid_at=spec.created - timedelta(days=3),
    )
    ticket = RefundTicket.objects.create(
        order=order,
        buyer=buyer,
        kind="refund_only",
        reason=spec.reason,
        status=spec.status,
        assigned_agent=spec.agent,
        requested_amount_cents=order.paid_total_cents,
        approved_amount_cents=spec.approved,
        first_response_due_at=spec.created + timedelta(hours=2),
        first_responded_at=spec.created + timedelta(minutes=spec.first_response)
        if spec.first_response is not None
        else None,
        resolved_at=spec.created + timedelta(minutes=spec.resolved) if spec.resolved is not None else None,
        sla_breached_at=spec.breached_at,
    )
    RefundTicket.objects.filter(pk=ticket.pk).update(created_at=spec.created)
    for sku, price, quantity in spec.items:
        item = OrderItem.objects.create(
            order=order, sku=sku, title=f"title {sku}", unit_price_cents=price, quantity=quantity
        )
        RefundTicketItem.objects.create(ticket=ticket, order_item=item, quantity=quantity)
    if spec.handoff:
        TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.ASSISTANT_HANDOFF, reason=spec.handoff)
    if spec.agent is not None:
        TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.ASSIGNED, data={"agent_id": spec.agent.pk})
    if spec.reopened:
        TicketEvent.objects.create(
            ticket=ticket, kind=TicketEventKind.STATUS_CHANGED, from_status=S.REJECTED, to_status=S.UNDER_REVIEW
        )
    if spec.rating is not None:
        score, comment, rated_at = spec.rating
        rating = SatisfactionRating.objects.create(ticket=ticket, score=score, comment=comment)
        SatisfactionRating.objects.filter(pk=rating.pk).update(created_at=rated_at)
    if spec.paid_after is not None:
        assert spec.approved is not None
        Payout.objects.create(
            ticket=ticket,
            amount_cents=spec.approved,
            status=PayoutStatus.SUCCEEDED,
            provider="fake",
            paid_at=spec.created + timedelta(minutes=spec.paid_after),
        )
    for label in spec.labels:
        TicketLabel.objects.create(ticket=ticket, label=label)
    conversation = Conversation.objects.create(ticket=ticket)
    Participant.objects.create(conversation=conversation, user=buyer, role=ParticipantRole.BUYER)
    # Every chat has a buyer message and a system message: neither makes a ticket "human".
    Message.objects.create(conversation=conversation, seq=1, sender=buyer, body="你好")
    Message.objects.create(conversation=conversation, seq=2, sender=None, kind=MessageKind.SYSTEM, body="已提交")
    if spec.staff_message_by is not None:
        Participant.objects.create(conversation=conversation, user=spec.staff_message_by, role=ParticipantRole.AGENT)
        Message.objects.create(conversation=conversation, seq=3, sender=spec.staff_message_by, body="您好")
    return ticket
