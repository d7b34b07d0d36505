"""Reads on conversations, and the rules of who may see and write in them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from messaging.models import Conversation, Message, Participant
from tickets.models import RefundTicket
from tickets.roles import can_use_console

# How many messages one catch-up frame carries at most; the client asks again for more.
CATCH_UP_BATCH = 200


def can_view(*, user: User | AnonymousUser, ticket: RefundTicket) -> bool:
    if not user.is_authenticated:
        return False
    return ticket.buyer_id == user.pk or can_use_console(user)


def can_send(*, user: User | AnonymousUser, ticket: RefundTicket) -> bool:
    """The buyer and the agent the ticket is assigned to; others watch or claim first."""
    if not user.is_authenticated:
        return False
    return user.pk in (ticket.buyer_id, ticket.assigned_agent_id)


def visible_conversation(*, user: User | AnonymousUser, conversation_id: int) -> Conversation | None:
    conversation = Conversation.objects.select_related("ticket").filter(pk=conversation_id).first()
    if conversation is None or not can_view(user=user, ticket=conversation.ticket):
        return None
    return conversation


def last_seqs(*, conversation_ids: list[int]) -> dict[int, int]:
    return dict(Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "last_seq"))


def _with_attachments(messages: QuerySet[Message]) -> QuerySet[Message]:
    """One more query for a whole batch, however many messages carry files."""
    from media.models import Attachment

    return messages.select_related("sender").prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.order_by("pk"), to_attr="attachment_list")
    )


def messages_since(*, conversation_id: int, after_seq: int) -> QuerySet[Message]:
    """Every message after `after_seq`, oldest first, unsliced (the REST API pages it by seq)."""
    return _with_attachments(Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq)).order_by("seq")


def messages_after(*, conversation_id: int, after_seq: int, limit: int = CATCH_UP_BATCH) -> QuerySet[Message]:
    return messages_since(conversation_id=conversation_id, after_seq=after_seq)[:limit]


def message_attachments(message: Message) -> list[Any]:
    """The attachments a message carries, oldest first: prefetched by the selectors above, else one query
    (none for a message without files)."""
    if not message.has_attachments:
        return []
    prefetched = getattr(message, "attachment_list", None)
    if prefetched is not None:
        return list(prefetched)
    return list(message.attachments.order_by("pk"))


def serialize_message(message: Message) -> dict[str, Any]:
    from media.selectors import message_attachment_payload

    sender = message.sender
    return {
        "conversation": message.conversation_id,
        "seq": message.seq,
        "kind": message.kind,
        "sender_id": sender.pk if sender else None,
        "sender_name": (sender.get_full_name() or sender.get_username()) if sender else "",
        "body": message.body,
        "client_id": str(message.client_id) if message.client_id else None,
        "created_at": message.created_at.isoformat(),
        "attachments": [message_attachment_payload(attachment=a) for a in message_attachments(message)],
        "data": message.data,
    }


def recent_messages(*, conversation_id: int, limit: int = CATCH_UP_BATCH) -> list[Message]:
    """The newest `limit` messages, oldest first, for the first paint of a chat."""
    newest = _with_attachments(Message.objects.filter(conversation_id=conversation_id)).order_by("-seq")[:limit]
    return list(reversed(newest))


def with_unread(tickets: QuerySet[RefundTicket], *, user: User) -> QuerySet[RefundTicket]:
    """Annotate `my_read_seq` and `unread`: messages from others after what `user` has read.

    Two correlated subqueries on indexed columns, so a page of a list costs one query.
    """
    my_read_seq = Participant.objects.filter(conversation=OuterRef("conversation"), user=user).values("read_seq")[:1]
    unread = (
        Message.objects.filter(conversation=OuterRef("conversation"), seq__gt=OuterRef("my_read_seq"))
        .exclude(sender=user)
        .order_by()
        .values("conversation")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return tickets.annotate(
        my_read_seq=Coalesce(Subquery(my_read_seq), Value(0), output_field=IntegerField()),
        unread=Coalesce(Subquery(unread), Value(0), output_field=IntegerField()),
    )
