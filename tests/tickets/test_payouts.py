"""Payouts: once per refund, finance approval above the threshold, signed callbacks, retries and alarms."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests import factories
from tests.concurrency import run_concurrently
from tickets import outbox, payouts, workflow
from tickets.models import Order, Payout, PayoutStatus, RefundTicket, TicketEvent, TicketStatus
from tickets.roles import Role
from tickets.workflow import TransitionInput, TransitionRefused


def approved_ticket(*, price_cents: int = 7900) -> RefundTicket:
    order = factories.order_with_items(buyer=factories.buyer(), items=[(price_cents, 1)])
    ticket = factories.open_ticket(order=order)
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="approve_refund_only",
        user=factories.agent(),
        given=TransitionInput(amount_cents=price_cents),
    )
    return ticket


def pay_out(ticket: RefundTicket, user=None) -> None:
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="request_payout",
        user=user,
        system=None if user else workflow.Actor.SYSTEM,
    )


@pytest.mark.django_db
def test_payout_is_requested_paid_and_closes_the_refund(django_capture_on_commit_callbacks):
    ticket = approved_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        pay_out(ticket)
    payout = Payout.objects.get(ticket=ticket)
    ticket.refresh_from_db()
    # The fake gateway (instant in tests) called back with a signed success.
    assert (payout.status, payout.attempts, payout.amount_cents) == (PayoutStatus.SUCCEEDED, 1, 7900)
    assert payout.provider_reference.startswith("FAKE-")
    assert ticket.status == TicketStatus.REFUNDED
    steps = list(TicketEvent.objects.filter(ticket=ticket, kind="payout").values_list("data__payout", flat=True))
    assert steps == ["requested", "succeeded"]


@pytest.mark.django_db
def test_large_refund_waits_for_finance(settings, django_capture_on_commit_callbacks):
    settings.REFUNDCHAT_PAYOUT_APPROVAL_THRESHOLD_CENTS = 5000
    ticket = approved_ticket()
    agent = factories.agent()
    with django_capture_on_commit_callbacks(execute=True):
        pay_out(ticket, user=agent)
    payout = Payout.objects.get(ticket=ticket)
    assert (payout.status, payout.attempts) == (PayoutStatus.AWAITING_APPROVAL, 0)
    with pytest.raises(payouts.PayoutError) as refused:
        payouts.do_approve_payout(payout_id=payout.pk, user=agent)
    assert refused.value.code == "not_permitted"

    finance = factories.staff(Role.FINANCE)
    with django_capture_on_commit_callbacks(execute=True):
        payouts.do_approve_payout(payout_id=payout.pk, user=finance)
    payout.refresh_from_db()
    assert (payout.status, payout.approved_by) == (PayoutStatus.SUCCEEDED, finance)
    with pytest.raises(payouts.PayoutError) as again:
        payouts.do_approve_payout(payout_id=payout.pk, user=finance)
    assert again.value.code == "wrong_state"


@pytest.mark.django_db
def test_failed_attempts_retry_with_backoff_then_alarm_finance(settings, django_capture_on_commit_callbacks):
    settings.REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE = 1.0
    factories.staff(Role.FINANCE, email="finance@example.com")
    ticket = approved_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        pay_out(ticket)
    payout = Payout.objects.get(ticket=ticket)
    assert (payout.status, payout.attempts) == (PayoutStatus.REQUESTED, 1)
    now = timezone.now()
    for _attempt in range(payouts.MAX_ATTEMPTS - 1):
        now += timedelta(minutes=20)
        with time_machine.travel(now), django_capture_on_commit_callbacks(execute=True):
            outbox.dispatch_due()
    payout.refresh_from_db()
    assert (payout.status, payout.attempts) == (PayoutStatus.FAILED, payouts.MAX_ATTEMPTS)
    assert payout.last_error == "insufficient merchant balance"
    alarms = [m for m in mail.outbox if "finance@example.com" in m.to]
    assert len(alarms) == 1
    assert ticket.number in alarms[0].subject
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUND_PENDING  # the money has not moved

    # Finance fixes it with the gateway and tries again.
    settings.REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE = 0.0
    with django_capture_on_commit_callbacks(execute=True):
        payouts.do_retry_payout(payout_id=payout.pk, user=factories.staff(Role.FINANCE))
    payout.refresh_from_db()
    ticket.refresh_from_db()
    assert (payout.status, ticket.status) == (PayoutStatus.SUCCEEDED, TicketStatus.REFUNDED)


@pytest.mark.django_db
def test_callback_endpoint_checks_the_signature_and_ignores_repeats(settings):
    ticket = approved_ticket()
    pay_out(ticket)  # on_commit does not run: request the attempt by hand
    payout = Payout.objects.get(ticket=ticket)
    payouts.send_request(payout_id=payout.pk, attempt=1)
    payouts.send_request(payout_id=payout.pk, attempt=1)  # a repeated outbox delivery asks nothing more
    payout.refresh_from_db()
    assert payout.attempts == 1
    body = json.dumps(
        {"attempt_key": f"{payout.idempotency_key}:1", "status": "succeeded", "reference": "X", "reason": ""}
    ).encode()
    client = Client()
    url = "/api/v1/payouts/callback/"
    forged = client.post(url, body, content_type="application/json", HTTP_X_PAYOUT_SIGNATURE="0" * 64)
    assert forged.status_code == 403
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.REQUESTED
    garbled = client.post(url, b"{", content_type="application/json", HTTP_X_PAYOUT_SIGNATURE=payouts.sign(b"{"))
    assert garbled.status_code == 400

    for _repeat in range(2):
        response = client.post(url, body, content_type="application/json", HTTP_X_PAYOUT_SIGNATURE=payouts.sign(body))
        assert response.status_code == 200
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED
    assert TicketEvent.objects.filter(ticket=ticket, to_status=TicketStatus.REFUNDED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_payout_requests_pay_once():
    ticket = approved_ticket()
    finance = [factories.staff(Role.FINANCE) for _ in range(3)]

    def request(user):
        return lambda: pay_out(ticket, user=user)

    results = run_concurrently([request(user) for user in finance])

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, TransitionRefused) for r in results if r is not None)
    assert Payout.objects.filter(ticket=ticket).count() == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 7900


@pytest.mark.django_db
def test_finance_work_list_approves_large_payouts(settings, django_capture_on_commit_callbacks):
    settings.REFUNDCHAT_PAYOUT_APPROVAL_THRESHOLD_CENTS = 5000
    ticket = approved_ticket()
    pay_out(ticket, user=factories.agent())
    payout = Payout.objects.get(ticket=ticket)
    finance = Client()
    finance.force_login(factories.staff(Role.FINANCE))
    page = finance.get("/console/payouts/").content.decode()
    assert f'data-payout-id="{payout.pk}"' in page
    assert "¥79.00" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(f"/console/payouts/{payout.pk}/approve/")
    assert response.status_code == 302
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SUCCEEDED

    agent = Client()
    agent.force_login(factories.agent())
    assert agent.get("/console/payouts/").status_code == 403
    assert agent.post(f"/console/payouts/{payout.pk}/approve/").status_code == 302  # refused with a message
    assert Client().post(f"/console/payouts/{payout.pk}/approve/").status_code == 302  # to the login page
    assert finance.post(f"/console/payouts/{payout.pk}/steal/").status_code == 404
    assert finance.post("/console/payouts/999999/approve/").status_code == 404


@pytest.mark.django_db
def test_warehouse_sees_returns_on_their_way():
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order, kind="return_and_refund")
    workflow.do_transition(
        ticket_id=ticket.pk, name="require_return", user=factories.agent(), given=TransitionInput(amount_cents=7900)
    )
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="ship_return",
        user=order.buyer,
        given=TransitionInput(carrier="YTO", tracking_no="YT1234567890123"),
    )
    warehouse = Client()
    warehouse.force_login(factories.staff(Role.WAREHOUSE))
    page = warehouse.get("/console/returns/").content.decode()
    assert "YT1234567890123" in page
    assert f'data-ticket-id="{ticket.pk}"' in page
