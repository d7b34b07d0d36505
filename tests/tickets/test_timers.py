"""Deadlines kept by the beat task, on a frozen clock: each rule acts once, at the right moment."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from messaging import realtime
from messaging import services as messaging_services
from messaging.models import Message
from tests import factories
from tickets import selectors, services, timers, workflow
from tickets.models import Order, Payout, RefundTicket, TicketEvent, TicketStatus
from tickets.roles import Role
from tickets.workflow import TransitionInput

pytestmark = pytest.mark.django_db


def new_ticket(kind: str = "return_and_refund", price: int = 7900) -> RefundTicket:
    order = factories.order_with_items(buyer=factories.buyer(), items=[(price, 1)])
    return factories.open_ticket(order=order, kind=kind)


def run_at(moment, capture) -> dict[str, int]:
    with time_machine.travel(moment, tick=False), capture(execute=True):
        return timers.run_timers()


def test_unanswered_ticket_is_escalated_once_and_team_leads_are_told(django_capture_on_commit_callbacks):
    factories.staff(Role.MANAGER, email="lead@example.com")
    ticket = new_ticket()
    due = ticket.first_response_due_at
    assert run_at(due - timedelta(minutes=1), django_capture_on_commit_callbacks)["first_response_breached"] == 0
    assert run_at(due + timedelta(minutes=1), django_capture_on_commit_callbacks)["first_response_breached"] == 1
    assert run_at(due + timedelta(minutes=5), django_capture_on_commit_callbacks)["first_response_breached"] == 0
    ticket.refresh_from_db()
    assert ticket.sla_breached_at is not None
    alarms = [m for m in mail.outbox if m.to == ["lead@example.com"]]
    assert len(alarms) == 1
    assert ticket.number in alarms[0].subject


def test_answered_ticket_is_not_escalated(django_capture_on_commit_callbacks):
    ticket = new_ticket()
    RefundTicket.objects.filter(pk=ticket.pk).update(first_responded_at=timezone.now())
    later = ticket.first_response_due_at + timedelta(hours=1)
    assert run_at(later, django_capture_on_commit_callbacks)["first_response_breached"] == 0


def test_return_not_shipped_is_reminded_on_day_5_and_closed_on_day_7(django_capture_on_commit_callbacks):
    ticket = new_ticket()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        workflow.do_transition(
            ticket_id=ticket.pk, name="require_return", user=factories.agent(), given=TransitionInput(amount_cents=7900)
        )
    # In the ticket's language, zh-hans.
    reminders = Message.objects.filter(conversation=ticket.conversation, body__startswith="提醒")
    assert run_at(start + timedelta(days=4, hours=23), django_capture_on_commit_callbacks)["return_reminder"] == 0
    assert run_at(start + timedelta(days=5, minutes=1), django_capture_on_commit_callbacks)["return_reminder"] == 1
    assert reminders.count() == 1
    # Nothing is due on day 6 (the unanswered-ticket alarm went off on day 5's run).
    assert run_at(start + timedelta(days=6), django_capture_on_commit_callbacks) == {
        "first_response_breached": 0,
        "next_response_breached": 0,
        "return_reminder": 0,
        "return_not_shipped": 0,
        "evidence_not_sent": 0,
        "refund_overdue": 0,
    }
    assert run_at(start + timedelta(days=7, minutes=1), django_capture_on_commit_callbacks)["return_not_shipped"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED
    closing = TicketEvent.objects.get(ticket=ticket, to_status=TicketStatus.CLOSED)
    assert closing.actor is None
    assert closing.data["timer"] == "return_not_shipped"
    # The promise to pay is withdrawn from the order.
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 0
    assert run_at(start + timedelta(days=9), django_capture_on_commit_callbacks)["return_not_shipped"] == 0


def test_shipped_return_is_never_closed(django_capture_on_commit_callbacks):
    ticket = new_ticket()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        workflow.do_transition(
            ticket_id=ticket.pk, name="require_return", user=factories.agent(), given=TransitionInput(amount_cents=7900)
        )
        workflow.do_transition(
            ticket_id=ticket.pk,
            name="ship_return",
            user=ticket.buyer,
            given=TransitionInput(carrier="SF", tracking_no="SF1234567890123"),
        )
    run_at(start + timedelta(days=8), django_capture_on_commit_callbacks)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RETURN_IN_TRANSIT


def test_refund_unpaid_a_day_after_receipt_alarms_finance_once(django_capture_on_commit_callbacks):
    factories.staff(Role.FINANCE, email="finance@example.com")
    ticket = new_ticket()
    agent, warehouse = factories.agent(), factories.staff(Role.WAREHOUSE)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        workflow.do_transition(
            ticket_id=ticket.pk, name="require_return", user=agent, given=TransitionInput(amount_cents=7900)
        )
        workflow.do_transition(
            ticket_id=ticket.pk,
            name="ship_return",
            user=ticket.buyer,
            given=TransitionInput(carrier="SF", tracking_no="SF1234567890123"),
        )
        workflow.do_transition(
            ticket_id=ticket.pk, name="receive_return", user=warehouse, given=TransitionInput(condition="intact")
        )
    assert run_at(start + timedelta(hours=23), django_capture_on_commit_callbacks)["refund_overdue"] == 0
    assert run_at(start + timedelta(hours=25), django_capture_on_commit_callbacks)["refund_overdue"] == 1
    assert run_at(start + timedelta(hours=30), django_capture_on_commit_callbacks)["refund_overdue"] == 0
    assert len([m for m in mail.outbox if m.to == ["finance@example.com"]]) == 1


def test_evidence_never_sent_closes_the_request(django_capture_on_commit_callbacks):
    ticket = new_ticket()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        workflow.do_transition(
            ticket_id=ticket.pk,
            name="request_evidence",
            user=factories.agent(),
            given=TransitionInput(reason="请拍一张吊牌照片"),
        )
    assert run_at(start + timedelta(days=7, minutes=1), django_capture_on_commit_callbacks)["evidence_not_sent"] == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.CLOSED


def test_express_refund_for_a_trusted_buyer_is_approved_and_paid_with_the_rule_recorded(
    django_capture_on_commit_callbacks,
):
    buyer = factories.buyer(date_joined=timezone.now() - timedelta(days=400))
    order = factories.order_with_items(buyer=buyer, items=[(2900, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=order, kind="refund_only")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED
    approval = TicketEvent.objects.get(ticket=ticket, to_status=TicketStatus.APPROVED_REFUND_ONLY)
    assert approval.actor is None
    assert approval.data["rule"] == "express_refund"
    assert Payout.objects.get(ticket=ticket).amount_cents == 2900


@pytest.mark.parametrize(
    ("price", "kind", "account_days", "why"),
    [
        (9900, "refund_only", 400, "over the express limit"),
        (2900, "return_and_refund", 400, "needs a return"),
        (2900, "refund_only", 3, "a new account"),
    ],
)
def test_express_refund_does_not_apply(django_capture_on_commit_callbacks, price, kind, account_days, why):
    buyer = factories.buyer(date_joined=timezone.now() - timedelta(days=account_days))
    order = factories.order_with_items(buyer=buyer, items=[(price, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=order, kind=kind)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REQUESTED, why


def test_express_refund_not_for_a_buyer_with_a_rejected_request(django_capture_on_commit_callbacks):
    buyer = factories.buyer(date_joined=timezone.now() - timedelta(days=400))
    earlier = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(99000, 1)]))
    workflow.do_transition(
        ticket_id=earlier.pk, name="reject", user=factories.agent(), given=TransitionInput(reason="照片与商品不符")
    )
    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(2900, 1)]))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REQUESTED


# --- next response ------------------------------------------------------------------


def say(ticket: RefundTicket, sender: Any, at: datetime, body: str = "…") -> None:
    """A chat message through the real message path, at a frozen moment."""
    with time_machine.travel(at, tick=False):
        messaging_services.post_message(
            conversation_id=ticket.conversation.pk, sender=sender, body=body, client_id=uuid.uuid4()
        )


def claimed(start: datetime) -> tuple[RefundTicket, Any]:
    """A ticket an agent claimed and answered at `start` (the first response)."""
    agent = factories.agent()
    with time_machine.travel(start, tick=False):
        ticket = new_ticket()
        services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    say(ticket, agent, start, "您好，请问有什么可以帮您？")
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None
    return ticket, agent


def lead_mail() -> list[Any]:
    return [m for m in mail.outbox if m.to == ["lead@example.com"]]


def in_sla_view(ticket: RefundTicket) -> bool:
    return selectors.console_queue(view="sla", user=factories.agent()).filter(pk=ticket.pk).exists()


NEXT = settings.REFUNDCHAT_NEXT_RESPONSE_SLA


def test_buyer_waiting_past_the_next_response_promise_escalates_once(django_capture_on_commit_callbacks, published):
    factories.staff(Role.MANAGER, email="lead@example.com")
    start = timezone.now()
    ticket, _agent = claimed(start)
    asked = start + timedelta(minutes=10)
    say(ticket, ticket.buyer, asked, "我的退款怎么样了？")
    # Neither a follow-up from the buyer nor a system message restarts or stops the clock.
    say(ticket, ticket.buyer, asked + timedelta(hours=1), "在吗？")
    with time_machine.travel(asked + timedelta(hours=2), tick=False):
        messaging_services.post_system_message(
            conversation_id=ticket.conversation.pk, body="系统消息", key=uuid.uuid4()
        )

    assert (
        run_at(asked + NEXT - timedelta(minutes=1), django_capture_on_commit_callbacks)["next_response_breached"] == 0
    )
    ticket.refresh_from_db()
    assert ticket.next_response_breached_at is None
    assert not in_sla_view(ticket)

    published.clear()
    breach = asked + NEXT + timedelta(minutes=1)
    assert run_at(breach, django_capture_on_commit_callbacks)["next_response_breached"] == 1
    ticket.refresh_from_db()
    assert ticket.next_response_breached_at == breach
    assert in_sla_view(ticket)
    # The queue hears of it; the buyer's tabs do not (it is internal).
    groups = [group for group, frame in published if frame["type"] == "ticket.updated"]
    assert realtime.QUEUE_GROUP in groups
    assert realtime.user_group(ticket.buyer_id) not in groups
    event = TicketEvent.objects.get(ticket=ticket, data__timer="next_response_breached")
    first_buyer_seq = Message.objects.get(conversation=ticket.conversation, body="我的退款怎么样了？").seq
    assert (event.data["since_seq"], event.visible_to_buyer) == (first_buyer_seq, False)
    assert len(lead_mail()) == 1
    assert ticket.number in lead_mail()[0].subject
    # The console's "SLA at risk" view lists it, marked as a reply overdue.
    console = Client()
    console.force_login(factories.agent())
    page = console.get("/console/?view=sla").content.decode()
    row = re.search(rf'<tr data-testid="queue-item" data-ticket-id="{ticket.pk}".*?</tr>', page, re.S)
    assert row is not None
    assert 'data-reply-overdue="1"' in row.group(0)
    assert 'data-testid="reply-overdue"' in row.group(0)

    # Idempotent: the same run twice, and later runs, tell nobody again.
    assert run_at(breach, django_capture_on_commit_callbacks)["next_response_breached"] == 0
    assert run_at(breach + timedelta(hours=5), django_capture_on_commit_callbacks)["next_response_breached"] == 0
    assert len(lead_mail()) == 1
    assert TicketEvent.objects.filter(ticket=ticket, data__timer="next_response_breached").count() == 1


def test_no_escalation_when_staff_answered_in_time(django_capture_on_commit_callbacks):
    factories.staff(Role.MANAGER, email="lead@example.com")
    start = timezone.now()
    ticket, agent = claimed(start)
    say(ticket, ticket.buyer, start + timedelta(minutes=10), "什么时候退款？")
    say(ticket, agent, start + timedelta(minutes=40), "今天之内处理。")
    assert run_at(start + NEXT * 3, django_capture_on_commit_callbacks)["next_response_breached"] == 0
    ticket.refresh_from_db()
    assert ticket.next_response_breached_at is None
    assert lead_mail() == []
    assert not TicketEvent.objects.filter(ticket=ticket, data__timer="next_response_breached").exists()


def test_a_staff_reply_clears_the_flag_and_a_new_buyer_message_starts_a_new_period(
    django_capture_on_commit_callbacks,
):
    factories.staff(Role.MANAGER, email="lead@example.com")
    start = timezone.now()
    ticket, agent = claimed(start)
    say(ticket, ticket.buyer, start + timedelta(minutes=10), "第一次问")
    first_breach = start + timedelta(minutes=10) + NEXT + timedelta(minutes=1)
    assert run_at(first_breach, django_capture_on_commit_callbacks)["next_response_breached"] == 1

    answered = first_breach + timedelta(minutes=30)
    say(ticket, agent, answered, "抱歉久等了。")
    run_at(answered + timedelta(minutes=1), django_capture_on_commit_callbacks)
    ticket.refresh_from_db()
    assert ticket.next_response_breached_at is None
    assert not in_sla_view(ticket)
    assert len(lead_mail()) == 1

    asked_again = answered + timedelta(hours=1)
    say(ticket, ticket.buyer, asked_again, "第二次问")
    assert (
        run_at(asked_again + NEXT - timedelta(minutes=1), django_capture_on_commit_callbacks)["next_response_breached"]
        == 0
    )
    second_breach = asked_again + NEXT + timedelta(minutes=1)
    assert run_at(second_breach, django_capture_on_commit_callbacks)["next_response_breached"] == 1
    assert (
        run_at(second_breach + timedelta(minutes=1), django_capture_on_commit_callbacks)["next_response_breached"] == 0
    )
    ticket.refresh_from_db()
    assert ticket.next_response_breached_at == second_breach
    assert in_sla_view(ticket)
    assert len(lead_mail()) == 2
    periods = TicketEvent.objects.filter(ticket=ticket, data__timer="next_response_breached").order_by("id")
    asked = Message.objects.filter(conversation=ticket.conversation, body__in=["第一次问", "第二次问"]).order_by("seq")
    assert [event.data["since_seq"] for event in periods] == [message.seq for message in asked]


def test_a_ticket_never_answered_is_left_to_the_first_response_rule(django_capture_on_commit_callbacks):
    ticket = new_ticket()
    say(ticket, ticket.buyer, timezone.now(), "有人吗？")
    later = timezone.now() + NEXT * 2
    assert run_at(later, django_capture_on_commit_callbacks)["next_response_breached"] == 0
