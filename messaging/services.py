"""Writes on conversations: storing messages with their sequence numbers.

A message is stored before it is broadcast: the broadcast is scheduled with
`transaction.on_commit` through `messaging.realtime.publish`.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from messaging import ratelimit, realtime
from messaging.models import MESSAGE_MAX_LENGTH, Conversation, Message, MessageKind, Participant, ParticipantRole
from messaging.selectors import can_send, serialize_message
from refundchat.errors import Refused
from tickets.models import RefundTicket


class MessageRejected(Refused):
    """A message that is not stored."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        # Seconds after which the same request may succeed (rate limits).
        self.retry_after = retry_after


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
        # Only new messages spend tokens: resending after a reconnect is free.
        check_send_rate(user=sender)
        message = _append(
            conversation=conversation, kind=MessageKind.TEXT, sender=sender, body=text, client_id=client_id
        )
        # What one writes, one has read: the sender's unread count stays right on all their devices.
        Participant.objects.filter(conversation=conversation, user=sender).update(
            delivered_seq=message.seq, read_seq=message.seq
        )
        # Only the first staff reply stops the clock: later ones skip the ticket lock.
        if sender.pk != conversation.ticket.buyer_id and conversation.ticket.first_responded_at is None:
            ticket_services.record_staff_reply(ticket_id=conversation.ticket.pk, agent=sender)
    return PostedMessage(message=message, created=True)


def check_send_rate(*, user: User) -> None:
    wait = ratelimit.send_wait(user_id=user.pk)
    if wait > 0:
        raise MessageRejected(
            "rate_limited",
            _("You are sending messages too fast. Try again in %(seconds)d s.") % {"seconds": math.ceil(wait)},
            retry_after=round(wait, 2),
        )


def mark_seen(
    *, conversation_id: int, user: User, delivered_seq: int | None = None, read_seq: int | None = None
) -> Participant:
    """Move a participant's delivered/read positions forward (never back, never past the last message).

    A change is announced to the conversation (the sender's ticks) and to the
    reader's own sockets (their other tabs and devices, their unread counts).
    """
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(of=("self",))
            .select_related("conversation")
            .filter(conversation_id=conversation_id, user=user)
            .first()
        )
        if participant is None:
            raise MessageRejected("not_allowed", _("You do not take part in this conversation."))
        last_seq = participant.conversation.last_seq
        read = min(max(participant.read_seq, read_seq or 0), last_seq)
        delivered = min(max(participant.delivered_seq, delivered_seq or 0, read), last_seq)
        if (delivered, read) == (participant.delivered_seq, participant.read_seq):
            return participant
        participant.delivered_seq, participant.read_seq = delivered, read
        participant.save(update_fields=["delivered_seq", "read_seq"])
        frame = receipt_frame(participant)
        realtime.publish(group=realtime.conversation_group(conversation_id), frame=frame)
        realtime.publish(group=realtime.user_group(user.pk), frame=frame)
    return participant


def receipt_frame(participant: Participant) -> dict[str, Any]:
    return {
        "type": "receipt",
        "conversation": participant.conversation_id,
        "user_id": participant.user_id,
        "delivered_seq": participant.delivered_seq,
        "read_seq": participant.read_seq,
    }


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
    # Lists (the consoles' queue, the buyer's tickets) move the row and count it unread,
    # without a database read per watching socket.
    activity = {
        "type": "ticket.activity",
        "ticket_id": conversation.ticket_id,
        "conversation": conversation.pk,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "last_message_at": message.created_at.isoformat(),
    }
    realtime.publish(group=realtime.QUEUE_GROUP, frame=activity)
    realtime.publish(group=realtime.user_group(conversation.ticket.buyer_id), frame=activity)
    return message
