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
import re
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from messaging import pii
from refundchat import crypto
from refundchat.errors import Refused
from tickets import access_log, outbox
from tickets.formatting import format_cny
from tickets.models import (
    AccessAction,
    OutboxKind,
    Payout,
    PayoutMethod,
    PayoutStatus,
    RefundTicket,
    TicketEvent,
    TicketEventKind,
)

MAX_ATTEMPTS = 5


class PayoutError(Refused):
    pass


@dataclass(frozen=True)
class PayoutDestination:
    """Where the money goes; `account` is in clear and must never be logged or stored."""

    method: str
    account: str

    def __repr__(self) -> str:
        return f"PayoutDestination(method={self.method!r}, account=<hidden>)"


class PayoutProvider(Protocol):
    name: str

    def request_payout(self, *, payout: Payout, attempt_key: str, destination: PayoutDestination) -> str:
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

    def request_payout(self, *, payout: Payout, attempt_key: str, destination: PayoutDestination) -> str:
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


# --- payout accounts (issue #9: encrypted at rest, decrypted only to pay) ---------

_WECHAT_ID = re.compile(r"^[A-Za-z][-_A-Za-z0-9]{5,19}$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPACES = re.compile(r"[\s-]+")


@dataclass(frozen=True)
class SealedAccount:
    method: str
    encrypted: str
    masked: str


def check_payout_account(*, method: str, account: str) -> str:
    """The account normalised for its method, or a translated refusal. No account for the original method."""
    account = account.strip()
    if method == PayoutMethod.ORIGINAL:
        return ""
    if method == PayoutMethod.BANK_CARD:
        digits = _SPACES.sub("", account)
        if not (digits.isdigit() and 12 <= len(digits) <= 19 and pii.luhn_valid(digits)):
            raise PayoutError("bad_card", _("This is not a valid bank card number (12 to 19 digits)."))
        return digits
    if method == PayoutMethod.ALIPAY:
        if not (_MOBILE.match(account) or _EMAIL.match(account)):
            raise PayoutError("bad_alipay", _("Enter the mobile number or e-mail of your Alipay account."))
        return account
    if method == PayoutMethod.WECHAT:
        if not (_MOBILE.match(account) or _WECHAT_ID.match(account)):
            raise PayoutError("bad_wechat", _("Enter your WeChat ID or the mobile number bound to WeChat Pay."))
        return account
    raise PayoutError("bad_method", _("Choose where the refund should go."))


def seal_payout_account(*, method: str, account: str) -> SealedAccount:
    """Check, encrypt and mask an account the buyer entered."""
    clear = check_payout_account(method=method, account=account)
    if not clear:
        return SealedAccount(method=PayoutMethod.ORIGINAL, encrypted="", masked="")
    masked = crypto.mask_card(clear) if method == PayoutMethod.BANK_CARD else crypto.mask_account(clear)
    return SealedAccount(method=method, encrypted=crypto.encrypt(clear), masked=masked)


def payout_destination(*, ticket: RefundTicket, actor: User | None) -> PayoutDestination:
    """The one place an account is decrypted: the payout step. Each decryption is in the access log."""
    if not ticket.payout_account_encrypted:
        return PayoutDestination(method=PayoutMethod.ORIGINAL, account="")
    access_log.record_access(
        actor=actor,
        action=AccessAction.PAYOUT_ACCOUNT_DECRYPTED,
        ticket_id=ticket.pk,
        target=f"ticket:{ticket.pk}",
    )
    return PayoutDestination(method=ticket.payout_method, account=crypto.decrypt(ticket.payout_account_encrypted))


def rotate_payout_accounts(*, batch_size: int = 500) -> int:
    """Re-encrypt every stored account under the first key of REFUNDCHAT_FIELD_KEYS (after a new key was put
    first); rows already under it are skipped, so a run that stopped half-way can simply be run again.
    Returns how many rows were re-encrypted."""
    rotated = 0
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                RefundTicket.objects.select_for_update()
                .filter(pk__gt=last_id)
                .exclude(payout_account_encrypted="")
                .order_by("pk")
                .only("pk", "payout_account_encrypted")[:batch_size]
            )
            if not batch:
                return rotated
            for ticket in batch:
                if not crypto.is_current(ticket.payout_account_encrypted):
                    ticket.payout_account_encrypted = crypto.rotate(ticket.payout_account_encrypted)
                    ticket.save(update_fields=["payout_account_encrypted"])
                    rotated += 1
            last_id = batch[-1].pk


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
    destination = payout_destination(ticket=payout.ticket, actor=None)
    payout.provider_reference = get_provider().request_payout(
        payout=payout, attempt_key=attempt_key, destination=destination
    )
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
