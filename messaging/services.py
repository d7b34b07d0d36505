"""Writes on conversations: storing messages with their sequence numbers.

A message is stored before it is broadcast: the broadcast is scheduled with
`transaction.on_commit` through `messaging.realtime.publish`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from messaging import realtime
from messaging.models import MESSAGE_MAX_LENGTH, Conversation, Message, MessageKind, Participant, ParticipantRole
from messaging.selectors import can_send, serialize_message
from tickets.models import RefundTicket


class MessageRejected(Exception):
    """A message that is not stored; `code` is machine-readable, the text is for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PostedMessage:
    message: Message
    # False when the client resent a message the server already had.
    created: bool


def open_conversation(*, ticket: RefundTicket) -> Conversation:
    conversation = Conversation.objects.create(ticket=ticket)
    Participant.objects.create(conversation=conversation, user_id=ticket.buyer_id, role=ParticipantRole.BUYER)
    return conversation


def add_agent(*, conversation_id: int, agent: User) -> None:
    Participant.objects.get_or_create(
        conversation_id=conversation_id, user_id=agent.pk, defaults={"role": ParticipantRole.AGENT}
    )


def check_message_body(body: object) -> str:
    if not isinstance(body, str) or not body.strip():
        raise MessageRejected("message_empty", _("The message is empty."))
    if len(body) > MESSAGE_MAX_LENGTH:
        raise MessageRejected(
            "message_too_long",
            _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX_LENGTH},
        )
    return body.strip()


def post_message(*, conversation_id: int, sender: User, body: object, client_id: uuid.UUID) -> PostedMessage:
    """Store a participant's message once, whatever how often the client resends it."""
    from tickets import services as ticket_services

    text = check_message_body(body)
    with transaction.atomic():
        # The row lock hands out gap-free sequence numbers and serialises resends.
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("ticket")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None or not can_send(user=sender, ticket=conversation.ticket):
            raise MessageRejected("not_allowed", _("You cannot write in this conversation."))
        existing = Message.objects.filter(conversation=conversation, sender=sender, client_id=client_id).first()
        if existing is not None:
            return PostedMessage(message=existing, created=False)
        message = _append(
            conversation=conversation, kind=MessageKind.TEXT, sender=sender, body=text, client_id=client_id
        )
        if sender.pk != conversation.ticket.buyer_id:
            ticket_services.record_staff_reply(ticket_id=conversation.ticket.pk, agent=sender)
    return PostedMessage(message=message, created=True)


def post_system_message(*, conversation_id: int, body: str, key: uuid.UUID) -> PostedMessage:
    """Post a message from the system once per `key`, so that a retried task does not repeat it."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",)).select_related("ticket").get(pk=conversation_id)
        )
        # Under the row lock, so a concurrent retry cannot insert the same key.
        existing = Message.objects.filter(conversation=conversation, sender=None, client_id=key).first()
        if existing is not None:
            return PostedMessage(message=existing, created=False)
        message = _append(conversation=conversation, kind=MessageKind.SYSTEM, sender=None, body=body, client_id=key)
    return PostedMessage(message=message, created=True)


def _append(
    *,
    conversation: Conversation,
    kind: str,
    sender: User | None,
    body: str,
    client_id: uuid.UUID | None,
) -> Message:
    """Insert the next message of a locked conversation and broadcast it after commit."""
    from tickets import services as ticket_services

    conversation.last_seq += 1
    message = Message.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        kind=kind,
        sender=sender,
        body=body,
        client_id=client_id,
    )
    conversation.last_message_at = message.created_at
    conversation.save(update_fields=["last_seq", "last_message_at"])
    realtime.publish(
        group=realtime.conversation_group(conversation.pk),
        frame={"type": "message", "message": serialize_message(message)},
    )
    # The consoles' queue shows the newest activity of each ticket.
    ticket_services.publish_ticket_changed(ticket=conversation.ticket, notify_buyer=False)
    return message
