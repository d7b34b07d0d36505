"""Telling the buyer (chat, email) and the shop's systems (webhook) what happened to a ticket.

Everything here runs inside the transaction of the change and writes to the
outbox (tickets/outbox.py), which delivers after commit, exactly once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tickets import outbox
from tickets.formatting import format_cny, format_duration
from tickets.models import OutboxKind, RefundTicket, TicketEvent, TicketStatus, WebhookEvent, WebhookSubscription

# Namespace for the idempotency keys of system messages about tickets.
SYSTEM_MESSAGE_NAMESPACE = uuid.UUID("8a3e8a4c-6f53-4d53-9a65-2a1a1f0c7d11")


def system_message_key(*, ticket_id: int, event: str) -> uuid.UUID:
    return uuid.uuid5(SYSTEM_MESSAGE_NAMESPACE, f"ticket:{ticket_id}:{event}")


def notify_ticket_created(*, ticket: RefundTicket) -> None:
    """Queue the "ticket created" chat message, email and webhook in the transaction that opens the ticket."""
    with translation.override(ticket.language):
        sla = format_duration(settings.REFUNDCHAT_FIRST_RESPONSE_SLA)
        text = _("Ticket %(number)s created, an agent will answer within %(sla)s.") % {
            "number": ticket.number,
            "sla": sla,
        }
        outbox.enqueue(
            ticket=ticket,
            kind=OutboxKind.CHAT,
            payload={"body": text},
            idempotency_key=system_message_key(ticket_id=ticket.pk, event="created"),
        )
        if ticket.buyer.email:
            subject = _("[RefundChat] We received your refund request %(number)s") % {"number": ticket.number}
            body = _(
                "Hello %(name)s,\n\nwe received your refund request %(number)s for order %(order)s. "
                "An agent will answer within %(sla)s. You can follow it and chat with us on RefundChat."
            ) % {
                "name": ticket.buyer.get_full_name() or ticket.buyer.get_username(),
                "number": ticket.number,
                "order": ticket.order.order_no,
                "sla": sla,
            }
            _queue_email(ticket=ticket, subject=subject, body=body)
    _queue_webhook(ticket=ticket, event=None, name=WebhookEvent.TICKET_CREATED)


def notify_status_changed(*, ticket: RefundTicket, event: TicketEvent) -> None:
    """Queue what a state change tells: the next step in the chat and by email, and the shop's webhook."""
    if event.visible_to_buyer:
        with translation.override(ticket.language):
            text = status_text(ticket=ticket, event=event)
            outbox.enqueue(
                ticket=ticket,
                event=event,
                kind=OutboxKind.CHAT,
                payload={"body": text},
                idempotency_key=system_message_key(ticket_id=ticket.pk, event=f"event:{event.pk}"),
            )
            if ticket.buyer.email:
                subject = _("[RefundChat] %(number)s: %(status)s") % {
                    "number": ticket.number,
                    "status": ticket.get_status_display(),
                }
                _queue_email(ticket=ticket, subject=subject, body=text, event=event)
    _queue_webhook(ticket=ticket, event=event, name=WebhookEvent.TICKET_STATUS_CHANGED)


def _queue_email(*, ticket: RefundTicket, subject: str, body: str, event: TicketEvent | None = None) -> None:
    outbox.enqueue(
        ticket=ticket,
        event=event,
        kind=OutboxKind.EMAIL,
        payload={"subject": subject, "body": body, "to": [ticket.buyer.email]},
    )


def _queue_webhook(*, ticket: RefundTicket, event: TicketEvent | None, name: WebhookEvent) -> None:
    """One outbox message per receiver: the settings URL (if any) and every active subscription to `name`.

    Each message is signed and retried on its own, so one receiver that is down delays no other.
    """
    subscriptions = [sub for sub in WebhookSubscription.objects.filter(active=True) if sub.wants(name)]
    if not settings.REFUNDCHAT_WEBHOOK_URL and not subscriptions:
        return
    body = {
        "event": name.value,
        "ticket": ticket.number,
        "order_no": ticket.order.order_no,
        "status": ticket.status,
        "from_status": event.from_status if event else "",
        "approved_amount_cents": ticket.approved_amount_cents,
        "requested_amount_cents": ticket.requested_amount_cents,
        "occurred_at": (event.created_at if event else ticket.created_at).isoformat(),
    }
    if settings.REFUNDCHAT_WEBHOOK_URL:
        outbox.enqueue(
            ticket=ticket,
            event=event,
            kind=OutboxKind.WEBHOOK,
            payload={"url": settings.REFUNDCHAT_WEBHOOK_URL, "body": body},
        )
    for subscription in subscriptions:
        # The URL is kept as it was at the event; the secret is read at delivery (tickets.outbox), so rotating
        # it applies to retries too and it never sits in the outbox table.
        outbox.enqueue(
            ticket=ticket,
            event=event,
            kind=OutboxKind.WEBHOOK,
            payload={"url": subscription.url, "subscription_id": subscription.pk, "body": body},
        )


def promised_by(*, status: str, since: datetime) -> datetime | None:
    hours = settings.REFUNDCHAT_PROMISE_HOURS.get(status)
    return since + timedelta(hours=hours) if hours else None


def status_text(*, ticket: RefundTicket, event: TicketEvent) -> str:
    """What the buyer reads in the chat when the ticket changes state: what happened, what next, by when."""
    due = promised_by(status=ticket.status, since=event.created_at)
    values = {
        "amount": format_cny(ticket.approved_amount_cents or 0),
        "reason": event.reason,
        "due": timezone.localtime(due).strftime("%m-%d %H:%M") if due else "",
        "address": settings.REFUNDCHAT_RETURN_ADDRESS,
        "carrier": ticket.return_carrier,
        "tracking_no": ticket.return_tracking_no,
    }
    texts = {
        TicketStatus.AWAITING_EVIDENCE: _(
            "The agent needs more evidence: %(reason)s Please send it here by %(due)s, or the request closes."
        ),
        TicketStatus.UNDER_REVIEW: _("Your case is under review. You will have a decision by %(due)s."),
        TicketStatus.APPROVED_REFUND_ONLY: _(
            "Refund of %(amount)s approved, no return needed. The payout starts by %(due)s."
        ),
        TicketStatus.RETURN_REQUIRED: _(
            "Refund of %(amount)s approved once the items are back. Please send them to: %(address)s, "
            "and enter the carrier and tracking number here by %(due)s."
        ),
        TicketStatus.RETURN_IN_TRANSIT: _(
            "Return shipped with %(carrier)s %(tracking_no)s. The warehouse expects it by %(due)s; "
            "the refund is paid within 24 hours after it arrives."
        ),
        TicketStatus.RETURN_RECEIVED: _(
            "The warehouse received your return. The refund of %(amount)s starts by %(due)s."
        ),
        TicketStatus.REFUND_PENDING: _("The refund of %(amount)s is on its way and arrives by %(due)s."),
        TicketStatus.REFUNDED: _("The refund of %(amount)s has been paid."),
        TicketStatus.REJECTED: _("The refund request was rejected: %(reason)s You can escalate it to the platform."),
        TicketStatus.CANCELLED: _("The refund request was cancelled."),
        TicketStatus.CLOSED: _("The refund request was closed: %(reason)s"),
        TicketStatus.ESCALATED: _("The case went to the platform's arbitration. You will have a decision by %(due)s."),
    }
    template = texts.get(TicketStatus(ticket.status), _("The ticket is now “%(status)s”."))
    return template % {**values, "status": ticket.get_status_display()}
