"""Telling the buyer what happened to their ticket: chat system messages and email."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from messaging import services as messaging_services
from messaging.models import Message
from tickets.formatting import format_cny, format_duration
from tickets.models import RefundTicket, TicketEvent, TicketStatus

# Namespace for the idempotency keys of system messages about tickets.
SYSTEM_MESSAGE_NAMESPACE = uuid.UUID("8a3e8a4c-6f53-4d53-9a65-2a1a1f0c7d11")


def system_message_key(*, ticket_id: int, event: str) -> uuid.UUID:
    return uuid.uuid5(SYSTEM_MESSAGE_NAMESPACE, f"ticket:{ticket_id}:{event}")


def send_ticket_created_notification(*, ticket_id: int) -> None:
    """Email the buyer and post the "ticket created" system message, each at most once per ticket."""
    ticket = RefundTicket.objects.select_related("buyer", "order", "conversation").get(pk=ticket_id)
    key = system_message_key(ticket_id=ticket.pk, event="created")
    if Message.objects.filter(conversation=ticket.conversation, sender=None, client_id=key).exists():
        return  # a previous run finished: nothing left to do
    with translation.override(ticket.language):
        sla = format_duration(settings.REFUNDCHAT_FIRST_RESPONSE_SLA)
        text = _("Ticket %(number)s created, an agent will answer within %(sla)s.") % {
            "number": ticket.number,
            "sla": sla,
        }
        if ticket.buyer.email:
            send_mail(
                subject=_("[RefundChat] We received your refund request %(number)s") % {"number": ticket.number},
                message=_(
                    "Hello %(name)s,\n\nwe received your refund request %(number)s for order %(order)s. "
                    "An agent will answer within %(sla)s. You can follow it and chat with us on RefundChat."
                )
                % {
                    "name": ticket.buyer.get_full_name() or ticket.buyer.get_username(),
                    "number": ticket.number,
                    "order": ticket.order.order_no,
                    "sla": sla,
                },
                from_email=None,
                recipient_list=[ticket.buyer.email],
            )
    messaging_services.post_system_message(conversation_id=ticket.conversation.pk, body=text, key=key)


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


def send_status_changed_notification(*, event_id: int) -> None:
    """Post the state change to the chat, once per event whatever how often the task runs."""
    event = TicketEvent.objects.select_related("ticket", "ticket__conversation", "ticket__order").get(pk=event_id)
    if not event.visible_to_buyer:
        return
    ticket = event.ticket
    with translation.override(ticket.language):
        text = status_text(ticket=ticket, event=event)
    key = system_message_key(ticket_id=ticket.pk, event=f"event:{event.pk}")
    messaging_services.post_system_message(conversation_id=ticket.conversation.pk, body=text, key=key)
