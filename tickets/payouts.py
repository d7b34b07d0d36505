"""Paying refunds out: one payout per ticket, requested through the outbox, settled by a signed callback.

The gateway sits behind `PayoutProvider`; settings name the class. The default
`FakePayoutProvider` behaves like a real gateway: it accepts a request at once
and reports the result later, by a signed HTTP callback, after a delay and with
a configurable failure rate. A failed attempt is retried with backoff under a
new attempt key; after the last attempt the payout fails and finance is alarmed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import urllib.request
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from refundchat.errors import Refused
from tickets import outbox
from tickets.formatting import format_cny
from tickets.models import (
    OutboxKind,
    Payout,
    PayoutStatus,
    RefundTicket,
    TicketEvent,
    TicketEventKind,
)

MAX_ATTEMPTS = 5


class PayoutError(Refused):
    pass


class PayoutProvider(Protocol):
    name: str

    def request_payout(self, *, payout: Payout, attempt_key: str) -> str:
        """Ask the gateway to pay; return its reference. The result arrives later through the callback."""
        ...


def get_provider() -> PayoutProvider:
    provider: PayoutProvider = import_string(settings.REFUNDCHAT_PAYOUT_PROVIDER)()
    return provider


def sign(body: bytes) -> str:
    return hmac.new(settings.REFUNDCHAT_PAYOUT_CALLBACK_SECRET.encode(), body, hashlib.sha256).hexdigest()


class FakePayoutProvider:
    """A stand-in gateway for development and tests (see the module docstring)."""

    name = "fake"

    def request_payout(self, *, payout: Payout, attempt_key: str) -> str:
        from tickets.tasks import settle_fake_payout

        # The same attempt always has the same outcome, as a gateway answers a repeated idempotency key.
        failed = random.Random(attempt_key).random() < settings.REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE
        reference = "FAKE-" + hashlib.sha256(attempt_key.encode()).hexdigest()[:16].upper()
        body = {
            "attempt_key": attempt_key,
            "reference": reference,
            "status": "failed" if failed else "succeeded",
            "reason": "insufficient merchant balance" if failed else "",
        }
        transaction.on_commit(
            partial(
                settle_fake_payout.apply_async, args=(body,), countdown=settings.REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS
            )
        )
        return reference


def send_fake_callback(*, body: dict[str, Any]) -> None:
    """What the fake gateway does when it settles: POST the signed result to our callback URL."""
    raw = json.dumps(body, sort_keys=True).encode()
    if not settings.REFUNDCHAT_PAYOUT_CALLBACK_URL:
        handle_callback(body=raw, signature=sign(raw))  # same verification, without a web server (tests)
        return
    request = urllib.request.Request(
        settings.REFUNDCHAT_PAYOUT_CALLBACK_URL,
        data=raw,
        method="POST",
        headers={"Content-Type": "application/json", "X-Payout-Signature": sign(raw)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


# --- services ------------------------------------------------------------------


def open_payout(*, ticket: RefundTicket, user: User | None) -> Payout:
    """Create the ticket's payout in the transaction that moves it to refund_pending.

    Large refunds wait for finance unless finance itself started the payout.
    """
    amount = ticket.approved_amount_cents or 0
    if amount <= 0:
        raise PayoutError("no_amount", _("There is no approved amount to pay out."))
    is_finance = user is not None and user.has_perm("tickets.manage_payout")
    needs_approval = amount > settings.REFUNDCHAT_PAYOUT_APPROVAL_THRESHOLD_CENTS and not is_finance
    payout = Payout.objects.create(
        ticket=ticket,
        amount_cents=amount,
        status=PayoutStatus.AWAITING_APPROVAL if needs_approval else PayoutStatus.REQUESTED,
        provider=get_provider().name,
        approved_by=user if is_finance else None,
    )
    _record(ticket=ticket, user=user, what="awaiting_approval" if needs_approval else "requested", payout=payout)
    if not needs_approval:
        _queue_attempt(payout)
    return payout


def do_approve_payout(*, payout_id: int, user: User) -> Payout:
    with transaction.atomic():
        payout = _locked_for_finance(payout_id=payout_id, user=user, expected=PayoutStatus.AWAITING_APPROVAL)
        payout.status = PayoutStatus.REQUESTED
        payout.approved_by = user
        payout.save(update_fields=["status", "approved_by", "updated_at"])
        _record(ticket=payout.ticket, user=user, what="approved", payout=payout)
        _queue_attempt(payout)
    return payout


def do_retry_payout(*, payout_id: int, user: User) -> Payout:
    """Finance tries a failed payout again (after fixing the cause with the gateway)."""
    with transaction.atomic():
        payout = _locked_for_finance(payout_id=payout_id, user=user, expected=PayoutStatus.FAILED)
        payout.status = PayoutStatus.REQUESTED
        payout.last_error = ""
        payout.save(update_fields=["status", "last_error", "updated_at"])
        _record(ticket=payout.ticket, user=user, what="retried", payout=payout)
        _queue_attempt(payout)
    return payout


def _locked_for_finance(*, payout_id: int, user: User, expected: PayoutStatus) -> Payout:
    """Lock a payout that finance acts on, refusing other people and payouts in another state."""
    if not user.has_perm("tickets.manage_payout"):
        raise PayoutError("not_permitted", _("Only finance approves payouts."))
    payout = Payout.objects.select_for_update().select_related("ticket").get(pk=payout_id)
    if payout.status != expected:
        raise PayoutError(
            "wrong_state", _("This payout is already “%(status)s”.") % {"status": payout.get_status_display()}
        )
    return payout


def send_request(*, payout_id: int, attempt: int) -> None:
    """Ask the gateway for attempt number `attempt` (the outbox calls this; a repeat does nothing)."""
    payout = Payout.objects.select_for_update().select_related("ticket", "ticket__order").get(pk=payout_id)
    if payout.status != PayoutStatus.REQUESTED or payout.attempts != attempt - 1:
        return
    payout.attempts = attempt
    attempt_key = f"{payout.idempotency_key}:{attempt}"
    payout.provider_reference = get_provider().request_payout(payout=payout, attempt_key=attempt_key)
    payout.save(update_fields=["attempts", "provider_reference", "updated_at"])


def _queue_attempt(payout: Payout, *, not_before: datetime | None = None) -> None:
    outbox.enqueue(
        ticket=payout.ticket,
        kind=OutboxKind.PAYOUT,
        payload={"payout_id": payout.pk, "attempt": payout.attempts + 1},
        not_before=not_before,
    )


def handle_callback(*, body: bytes, signature: str) -> Payout:
    """Verify and apply a gateway's result. Repeated or late callbacks change nothing."""
    if not hmac.compare_digest(sign(body), signature or ""):
        raise PayoutError("bad_signature", "signature mismatch")
    try:
        data = json.loads(body)
        payout_key, attempt = str(data["attempt_key"]).rsplit(":", 1)
        succeeded = {"succeeded": True, "failed": False}[data["status"]]
    except (ValueError, KeyError, TypeError):
        raise PayoutError("bad_body", "malformed callback") from None
    from tickets import workflow

    with transaction.atomic():
        payout = Payout.objects.select_for_update().select_related("ticket").filter(idempotency_key=payout_key).first()
        if payout is None:
            raise PayoutError("unknown_payout", "unknown payout")
        if payout.status != PayoutStatus.REQUESTED or str(payout.attempts) != attempt:
            return payout  # already settled, or the answer to an attempt that was superseded
        if succeeded:
            payout.status = PayoutStatus.SUCCEEDED
            payout.paid_at = timezone.now()
            payout.save(update_fields=["status", "paid_at", "updated_at"])
            _record(ticket=payout.ticket, user=None, what="succeeded", payout=payout)
            workflow.do_transition(
                ticket_id=payout.ticket_id, name="complete_payout", user=None, system=workflow.Actor.SYSTEM
            )
            return payout
        payout.last_error = str(data.get("reason", ""))[:500]
        if payout.attempts >= MAX_ATTEMPTS:
            payout.status = PayoutStatus.FAILED
            payout.save(update_fields=["status", "last_error", "updated_at"])
            _record(ticket=payout.ticket, user=None, what="failed", payout=payout)
            _alarm_finance(payout)
        else:
            payout.save(update_fields=["last_error", "updated_at"])
            _record(ticket=payout.ticket, user=None, what="attempt_failed", payout=payout)
            _queue_attempt(payout, not_before=timezone.now() + retry_delay(payout.attempts))
    return payout


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 minutes between attempts."""
    return timedelta(minutes=2 ** (attempts - 1))


def _record(*, ticket: RefundTicket, user: User | None, what: str, payout: Payout) -> None:
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.PAYOUT,
        actor=user,
        reason=payout.last_error if what in ("attempt_failed", "failed") else "",
        data={"payout": what, "amount_cents": payout.amount_cents, "attempt": payout.attempts},
        visible_to_buyer=False,
    )


def _alarm_finance(payout: Payout) -> None:
    """Tell every finance user by email, through the outbox, that a payout needs them."""
    recipients = sorted(
        {
            email
            for email in User.objects.filter(groups__name="finance", is_active=True).values_list("email", flat=True)
            if email
        }
    )
    if not recipients:
        return
    outbox.enqueue(
        ticket=payout.ticket,
        kind=OutboxKind.EMAIL,
        payload={
            "subject": _("[RefundChat] Payout failed: %(number)s") % {"number": payout.ticket.number},
            "body": _("The payout of %(amount)s for %(number)s failed %(attempts)d times: %(error)s")
            % {
                "amount": format_cny(payout.amount_cents),
                "number": payout.ticket.number,
                "attempts": payout.attempts,
                "error": payout.last_error,
            },
            "to": recipients,
        },
    )
