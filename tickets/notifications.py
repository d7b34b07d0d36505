"""Telling the buyer what happened to their ticket: chat system messages and email."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _

from messaging import services as messaging_services
from messaging.models import Message
from tickets.formatting import format_duration
from tickets.models import RefundTicket

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
