"""The transactional outbox: notifications that are never lost and never sent twice.

`enqueue` writes an OutboxMessage in the caller's transaction and, after commit,
hands its id to Celery. If the broker is down at that moment nothing is lost:
`dispatch_due` (a beat task) sends every pending message whose time has come.
`deliver` locks the row and skips it unless it is still pending, so a message
dispatched twice is delivered once. Chat messages are keyed, webhooks carry an
Idempotency-Key header, so a receiver can drop a repeat after a crash between
sending and marking sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from refundchat.celery import queue_after_commit, queue_task
from tickets.models import OutboxKind, OutboxMessage, OutboxStatus, RefundTicket, TicketEvent, WebhookSubscription

logger = logging.getLogger(__name__)

# The normal path delivers at once; the beat task only picks up what is still pending after this.
FIRST_REDISPATCH_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 10
DELIVER_TASK = "tickets.tasks.deliver_outbox_message"
WEBHOOK_TIMEOUT_SECONDS = 5


def enqueue(
    *,
    ticket: RefundTicket,
    kind: OutboxKind,
    payload: dict[str, Any],
    event: TicketEvent | None = None,
    idempotency_key: Any = None,
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Write a notification in the current transaction; it is dispatched after commit.

    With `not_before` it waits for the beat task instead (a retry after a delay).
    """
    extra = {"idempotency_key": idempotency_key} if idempotency_key else {}
    message = OutboxMessage.objects.create(
        ticket=ticket,
        event=event,
        kind=kind,
        payload=payload,
        next_attempt_at=not_before or timezone.now() + FIRST_REDISPATCH_AFTER,
        **extra,
    )
    if not_before is None:
        # If the broker is down, the message waits here and dispatch_due sends it later.
        queue_after_commit(DELIVER_TASK, message.pk)
    return message


def dispatch_due(*, now: datetime | None = None) -> int:
    """Hand every pending message whose time has come to Celery again; returns how many."""
    now = now or timezone.now()
    due = list(
        OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)
    )
    for message_id in due:
        queue_task(DELIVER_TASK, message_id)
    return len(due)


def retry_now(*, message_ids: list[int]) -> int:
    """Put failed or waiting messages back in line and dispatch them (the admin's "send again")."""
    with transaction.atomic():
        updated = OutboxMessage.objects.filter(pk__in=message_ids).exclude(status=OutboxStatus.SENT)
        ids = list(updated.values_list("pk", flat=True))
        updated.update(status=OutboxStatus.PENDING, next_attempt_at=timezone.now() + FIRST_REDISPATCH_AFTER)
        for message_id in ids:
            queue_after_commit(DELIVER_TASK, message_id)
    return len(ids)


def deliver(*, message_id: int) -> bool:
    """Send one pending message; True when it was sent by this call."""
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, status=OutboxStatus.PENDING)
            .first()
        )
        if message is None:
            return False  # sent already, given up, or being sent by another worker right now
        try:
            SENDERS[OutboxKind(message.kind)](message)
        except Exception as error:
            _record_failure(message, error)
            return False
        message.status = OutboxStatus.SENT
        message.sent_at = timezone.now()
        message.attempts += 1
        message.save(update_fields=["status", "sent_at", "attempts"])
    return True


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … capped at one hour."""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _record_failure(message: OutboxMessage, error: Exception) -> None:
    message.attempts += 1
    message.last_error = f"{type(error).__name__}: {error}"[:2000]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = OutboxStatus.FAILED
        logger.error("outbox message %s (%s) given up after %s attempts", message.pk, message.kind, message.attempts)
    else:
        message.next_attempt_at = timezone.now() + backoff(message.attempts)
        logger.warning("outbox message %s (%s) failed, retry at %s", message.pk, message.kind, message.next_attempt_at)
    message.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


# --- senders -----------------------------------------------------------------


def _send_chat(message: OutboxMessage) -> None:
    from messaging import services as messaging_services

    messaging_services.post_system_message(
        conversation_id=message.ticket.conversation.pk,
        body=message.payload["body"],
        key=message.idempotency_key,
    )


def _send_email(message: OutboxMessage) -> None:
    payload = message.payload
    EmailMessage(
        subject=payload["subject"],
        body=payload["body"],
        to=payload["to"],
        headers={"X-RefundChat-Idempotency-Key": str(message.idempotency_key)},
    ).send()


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex; receivers recompute it with the shared secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _send_webhook(message: OutboxMessage) -> None:
    secret = settings.REFUNDCHAT_WEBHOOK_SECRET
    subscription_id = message.payload.get("subscription_id")
    if subscription_id is not None:
        subscription = WebhookSubscription.objects.filter(pk=subscription_id, active=True).first()
        if subscription is None:
            # Deleted or switched off since the event: the receiver no longer wants it; nothing to send.
            logger.info("outbox message %s: webhook subscription %s is gone", message.pk, subscription_id)
            return
        secret = subscription.secret
    body = json.dumps(message.payload["body"], ensure_ascii=False, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        message.payload["url"],
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": str(message.idempotency_key),
            "X-RefundChat-Event": str(message.payload["body"].get("event", "")),
            "X-RefundChat-Timestamp": timestamp,
            "X-RefundChat-Signature": "sha256=" + webhook_signature(secret=secret, timestamp=timestamp, body=body),
        },
    )
    # Any non-2xx answer raises HTTPError: the message stays pending and is retried with backoff.
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        response.read()


def _send_payout_request(message: OutboxMessage) -> None:
    from tickets import payouts

    payouts.send_request(payout_id=message.payload["payout_id"], attempt=message.payload["attempt"])


SENDERS: dict[OutboxKind, Callable[[OutboxMessage], None]] = {
    OutboxKind.CHAT: _send_chat,
    OutboxKind.EMAIL: _send_email,
    OutboxKind.WEBHOOK: _send_webhook,
    OutboxKind.PAYOUT: _send_payout_request,
}
