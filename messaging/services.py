"""Writes on conversations: storing messages with their sequence numbers.

A message is stored before it is broadcast: the broadcast is scheduled with
`transaction.on_commit` through `messaging.realtime.publish`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import User
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from media.models import Attachment, UploadStatus
from messaging import pii, ratelimit, realtime
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
    result = post_messages(
        sends=[TextSend(conversation_id=conversation_id, sender=sender, body=body, client_id=client_id)]
    )[0]
    if isinstance(result, MessageRejected):
        raise result
    return result


@dataclass(frozen=True)
class TextSend:
    """One participant's text message, as a client sent it."""

    conversation_id: int
    sender: User
    body: object
    client_id: uuid.UUID
    # The sender's language for a refusal (a batch mixes sockets of several languages); None: the active one.
    language: str | None = None


@dataclass(frozen=True)
class _Storable:
    index: int
    send: TextSend
    text: str


def post_messages(*, sends: Sequence[TextSend]) -> list[PostedMessage | MessageRejected]:
    """Store several participants' text messages in one transaction: one result per send, in order, each what
    `post_message` would give for it alone (a refusal is returned, not raised, and spoils none of the others).

    The sockets of a server process hand in what arrived while the previous batch was being stored
    (`messaging.send_batches`): under load one statement and one commit carry many messages.
    """
    results: list[PostedMessage | MessageRejected | None] = [None] * len(sends)
    checked: list[_Storable] = []
    for index, send in enumerate(sends):
        with _language_of(send):
            try:
                # Card and resident ID numbers are masked before storing (the hot path's SQL stays one statement).
                checked.append(_Storable(index, send, pii.mask_sensitive(check_message_body(send.body))))
            except MessageRejected as rejected:
                results[index] = rejected
    waits = ratelimit.send_waits(user_ids=[item.send.sender.pk for item in checked])
    storable: list[_Storable] = []
    first_of: dict[tuple[int, int, uuid.UUID], _Storable] = {}
    repeats: list[tuple[_Storable, _Storable]] = []
    for item, wait in zip(checked, waits, strict=True):
        key = (item.send.conversation_id, item.send.sender.pk, item.send.client_id)
        if wait > 0:
            # Resends of a stored message are free: answer them even when over the rate.
            existing = _sent_before(
                conversation_id=item.send.conversation_id, sender=item.send.sender, client_id=item.send.client_id
            )
            with _language_of(item.send):
                results[item.index] = (
                    PostedMessage(message=existing, created=False) if existing is not None else rate_limited(wait)
                )
        elif key in first_of:
            repeats.append((item, first_of[key]))  # the same client_id twice in one batch: a resend
        else:
            first_of[key] = item
            storable.append(item)
    for index, message in _store_texts(storable).items():
        results[index] = PostedMessage(message=message, created=True)
    for item in storable:
        if results[item.index] is None:
            results[item.index] = _resend_or_refusal(item)
    for item, first in repeats:
        first_result = results[first.index]
        results[item.index] = (
            PostedMessage(message=first_result.message, created=False)
            if isinstance(first_result, PostedMessage)
            else first_result
        )
        if isinstance(first_result, PostedMessage):
            ratelimit.give_back_send(user_id=item.send.sender.pk)
    return cast(list[PostedMessage | MessageRejected], results)  # every send has its result by now


def _language_of(send: TextSend) -> AbstractContextManager[None]:
    return translation.override(send.language) if send.language else nullcontext()


def _store_texts(items: Sequence[_Storable]) -> dict[int, Message]:
    """The new messages by index; an item missing is a resend or a sender who may not write there."""
    if not items:
        return {}
    if connection.vendor != "postgresql":
        return _store_texts_locked(items)
    try:
        return _store_texts_statement(items)
    except IntegrityError:
        if len(items) == 1:
            # A concurrent resend of the same client_id committed first: the unique constraint refused ours.
            return {}
    except DatabaseError:
        if len(items) == 1:
            raise
    # One item spoilt the batch (a concurrent resend, or a lock wait PostgreSQL broke off): each on its own.
    stored: dict[int, Message] = {}
    for item in items:
        stored.update(_store_texts([item]))
    return stored


def _resend_or_refusal(item: _Storable) -> PostedMessage | MessageRejected:
    send = item.send
    existing = _sent_before(conversation_id=send.conversation_id, sender=send.sender, client_id=send.client_id)
    if existing is None:
        with _language_of(send):
            return MessageRejected("not_allowed", _("You cannot write in this conversation."))
    # What a resend spent on the rate limit is given back.
    ratelimit.give_back_send(user_id=send.sender.pk)
    return PostedMessage(message=existing, created=False)


def _sent_before(*, conversation_id: int, sender: User, client_id: uuid.UUID) -> Message | None:
    return (
        Message.objects.select_related("sender")
        .filter(conversation_id=conversation_id, sender=sender, client_id=client_id)
        .first()
    )


# Taken first, in id order: two batches that share conversations wait for each other instead of deadlocking.
_LOCK_CONVERSATIONS_SQL = "SELECT id FROM {conversation} WHERE id = ANY(%(conversation_ids)s) ORDER BY id FOR UPDATE"

# One statement for a batch, under the conversations' row locks: keep the messages whose sender may write in
# the conversation and has not sent that client_id before, move each conversation's last_seq on by how many
# it gets, insert them with the seqs in between (in batch order), and move each sender's own read position.
# Returns a row per stored message; a resend or a refusal has none. A concurrent resend that slips past NOT
# EXISTS hits the unique constraint (IntegrityError).
_STORE_TEXTS_SQL = """
WITH input AS (
    SELECT * FROM unnest(%(ords)s::integer[], %(conversation_ids)s::bigint[], %(sender_ids)s::bigint[],
                         %(client_ids)s::uuid[], %(bodies)s::text[])
        AS i(ord, conversation_id, sender_id, client_id, body)
), allowed AS (
    SELECT i.ord, i.conversation_id, i.sender_id, i.client_id, i.body, c.ticket_id, t.buyer_id,
           t.first_responded_at, c.assistant_active,
           row_number() OVER (PARTITION BY i.conversation_id ORDER BY i.ord) AS k,
           count(*) OVER (PARTITION BY i.conversation_id) AS n
      FROM input AS i
      JOIN {conversation} AS c ON c.id = i.conversation_id
      JOIN {ticket} AS t ON t.id = c.ticket_id
     WHERE i.sender_id IN (t.buyer_id, t.assigned_agent_id)
       AND NOT EXISTS (
           SELECT 1 FROM {message} AS m
            WHERE m.conversation_id = i.conversation_id AND m.sender_id = i.sender_id AND m.client_id = i.client_id
       )
), bumped AS (
    UPDATE {conversation} AS c
       SET last_seq = c.last_seq + counts.n, last_message_at = %(now)s
      FROM (SELECT DISTINCT conversation_id, n FROM allowed) AS counts
     WHERE c.id = counts.conversation_id
    RETURNING c.id, c.last_seq
), numbered AS (
    SELECT a.*, b.last_seq - a.n + a.k AS seq FROM allowed AS a JOIN bumped AS b ON b.id = a.conversation_id
), inserted AS (
    INSERT INTO {message} (conversation_id, seq, kind, sender_id, body, client_id, created_at)
    SELECT conversation_id, seq, %(kind)s, sender_id, body, client_id, %(now)s FROM numbered
    RETURNING id, conversation_id, seq
), sender_position AS (
    UPDATE {participant} AS p
       SET delivered_seq = GREATEST(p.delivered_seq, own.seq), read_seq = GREATEST(p.read_seq, own.seq)
      FROM (SELECT conversation_id, sender_id, max(seq) AS seq FROM numbered GROUP BY conversation_id, sender_id) AS own
     WHERE p.conversation_id = own.conversation_id AND p.user_id = own.sender_id
)
SELECT n.ord, ins.id, ins.seq, n.ticket_id, n.buyer_id, n.first_responded_at, n.assistant_active
  FROM inserted AS ins JOIN numbered AS n ON n.conversation_id = ins.conversation_id AND n.seq = ins.seq
 ORDER BY n.ord
"""


def _store_texts_statement(items: Sequence[_Storable]) -> dict[int, Message]:
    """PostgreSQL: a batch in two round trips and one commit (the chat's hot path; docs/benchmarks.md)."""
    from tickets import services as ticket_services

    now = timezone.now()
    tables = {
        "conversation": Conversation._meta.db_table,
        "ticket": RefundTicket._meta.db_table,
        "message": Message._meta.db_table,
        "participant": Participant._meta.db_table,
    }
    params: dict[str, Any] = {
        "ords": list(range(len(items))),
        "conversation_ids": [item.send.conversation_id for item in items],
        "sender_ids": [item.send.sender.pk for item in items],
        "client_ids": [item.send.client_id for item in items],
        "bodies": [item.text for item in items],
        "kind": MessageKind.TEXT.value,
        "now": now,
    }
    stored: dict[int, Message] = {}
    first_replies: dict[int, User] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LOCK_CONVERSATIONS_SQL.format(**tables), params)
        cursor.execute(_STORE_TEXTS_SQL.format(**tables), params)
        for ord_, message_id, seq, ticket_id, buyer_id, first_responded_at, assistant_active in cursor.fetchall():
            item = items[ord_]
            sender = item.send.sender
            message = Message(
                pk=message_id,
                conversation_id=item.send.conversation_id,
                seq=seq,
                kind=MessageKind.TEXT,
                sender=sender,
                body=item.text,
                client_id=item.send.client_id,
                created_at=now,
            )
            message._state.adding = False
            message._state.db = connection.alias
            stored[item.index] = message
            _announce(message=message, ticket_id=ticket_id, buyer_id=buyer_id)
            if assistant_active and sender.pk == buyer_id:
                _schedule_assistant(conversation_id=item.send.conversation_id)
            # Only the first staff reply stops the clock: later ones skip the ticket lock.
            if sender.pk != buyer_id and first_responded_at is None:
                first_replies.setdefault(ticket_id, sender)
        for ticket_id in sorted(first_replies):
            ticket_services.record_staff_reply(ticket_id=ticket_id, agent=first_replies[ticket_id])
    return stored


def _store_texts_locked(items: Sequence[_Storable]) -> dict[int, Message]:
    """Any database (the embedded SQLite of `make run`): the same rules through the ORM, one message at a time."""
    stored: dict[int, Message] = {}
    for item in items:

        def body(_conversation: Conversation, text: str = item.text) -> dict[str, Any]:
            return {"body": text}

        posted = _store_locked(
            conversation_id=item.send.conversation_id,
            sender=item.send.sender,
            client_id=item.send.client_id,
            kind=MessageKind.TEXT,
            build=body,
        )
        if posted is not None and posted.created:
            stored[item.index] = posted.message
    return stored


def _store_locked(
    *,
    conversation_id: int,
    sender: User,
    client_id: uuid.UUID,
    kind: str,
    build: Callable[[Conversation], dict[str, Any]],
) -> PostedMessage | None:
    """Store a message under the conversation's row lock: None when the sender may not write there, the
    stored message for a resend, else the new one (`build` gives its fields and may refuse)."""
    from tickets import services as ticket_services

    with transaction.atomic():
        conversation = _locked_conversation(conversation_id=conversation_id)
        if conversation is None or not can_send(user=sender, ticket=conversation.ticket):
            return None
        existing = _sent_before(conversation_id=conversation.pk, sender=sender, client_id=client_id)
        if existing is not None:
            return PostedMessage(message=existing, created=False)
        message = _append(
            conversation=conversation, kind=kind, sender=sender, client_id=client_id, **build(conversation)
        )
        # What one writes, one has read: the sender's unread count stays right on all their devices.
        Participant.objects.filter(conversation=conversation, user=sender).update(
            delivered_seq=message.seq, read_seq=message.seq
        )
        if sender.pk != conversation.ticket.buyer_id and conversation.ticket.first_responded_at is None:
            ticket_services.record_staff_reply(ticket_id=conversation.ticket.pk, agent=sender)
        if conversation.assistant_active and sender.pk == conversation.ticket.buyer_id:
            _schedule_assistant(conversation_id=conversation.pk)
    return PostedMessage(message=message, created=True)


def _schedule_assistant(*, conversation_id: int) -> None:
    """The triage assistant answers a buyer message off the socket's path: a Celery task after commit."""
    from refundchat.celery import queue_after_commit

    queue_after_commit("messaging.tasks.assistant_step", conversation_id)


def _locked_conversation(*, conversation_id: int) -> Conversation | None:
    # The row lock hands out gap-free sequence numbers and serialises resends.
    return (
        Conversation.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk=conversation_id).first()
    )


def check_send_rate(*, user: User) -> None:
    wait = ratelimit.send_wait(user_id=user.pk)
    if wait > 0:
        raise rate_limited(wait)


def rate_limited(wait: float) -> MessageRejected:
    return MessageRejected(
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
    return _post_keyed(conversation_id=conversation_id, kind=MessageKind.SYSTEM, body=body, data=None, key=key)


def post_assistant_message(*, conversation_id: int, body: str, data: dict[str, Any], key: uuid.UUID) -> PostedMessage:
    """A message of the triage assistant (no sender), once per `key`; `data` holds its quick replies and cards."""
    return _post_keyed(conversation_id=conversation_id, kind=MessageKind.ASSISTANT, body=body, data=data, key=key)


def _post_keyed(
    *, conversation_id: int, kind: str, body: str, data: dict[str, Any] | None, key: uuid.UUID
) -> PostedMessage:
    with transaction.atomic():
        conversation = _locked_conversation(conversation_id=conversation_id)
        if conversation is None:
            raise Conversation.DoesNotExist(f"conversation {conversation_id}")
        # Under the row lock, so a concurrent retry cannot insert the same key.
        existing = Message.objects.filter(conversation=conversation, sender=None, client_id=key).first()
        if existing is not None:
            return PostedMessage(message=existing, created=False)
        message = _append(conversation=conversation, kind=kind, sender=None, body=body, client_id=key, data=data)
    return PostedMessage(message=message, created=True)


def _append(
    *,
    conversation: Conversation,
    kind: str,
    sender: User | None,
    body: str,
    client_id: uuid.UUID | None,
    data: dict[str, Any] | None = None,
    attachment_ids: Sequence[int] = (),
) -> Message:
    """Insert the next message of a locked conversation and broadcast it after commit.

    `data`: a card's content; `attachment_ids`: Attachment rows (already checked and locked by the
    caller) that the message carries."""
    conversation.last_seq += 1
    message = Message.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        kind=kind,
        sender=sender,
        body=body,
        client_id=client_id,
        data=data or {},
        has_attachments=bool(attachment_ids),
    )
    if attachment_ids:
        Attachment.objects.filter(pk__in=attachment_ids).update(message=message)
    conversation.last_message_at = message.created_at
    conversation.save(update_fields=["last_seq", "last_message_at"])
    _announce(message=message, ticket_id=conversation.ticket_id, buyer_id=conversation.ticket.buyer_id)
    return message


def _announce(*, message: Message, ticket_id: int, buyer_id: int) -> None:
    """The new message to its conversation, and its activity to the lists, after commit."""
    realtime.publish(
        group=realtime.conversation_group(message.conversation_id),
        frame={"type": "message", "message": serialize_message(message)},
    )
    # Lists (the consoles' queue, the buyer's tickets) move the row and count it unread,
    # without a database read per watching socket.
    activity = {
        "type": "ticket.activity",
        "ticket_id": ticket_id,
        "conversation": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "last_message_at": message.created_at.isoformat(),
    }
    realtime.publish(group=realtime.QUEUE_GROUP, frame=activity)
    realtime.publish(group=realtime.activity_group(buyer_id), frame=activity)


# --- Messages with attachments, and cards (issue #4; docs/protocol.md) --------------------------------

MAX_ATTACHMENTS_PER_MESSAGE = 30
PRODUCT_TITLE_MAX_LENGTH = 200
URL_MAX_LENGTH = 500
PRICE_MAX_CENTS = 100_000_000_00


def check_caption(body: object) -> str:
    """The text that goes with files or a card: may be empty, not too long."""
    if body is None:
        return ""
    if not isinstance(body, str):
        raise MessageRejected("bad_body", _("The message text is not valid."))
    if len(body) > MESSAGE_MAX_LENGTH:
        raise MessageRejected(
            "message_too_long",
            _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX_LENGTH},
        )
    return body.strip()


def post_message_with_attachments(
    *, conversation_id: int, sender: User, body: object, client_id: uuid.UUID, upload_ids: Sequence[uuid.UUID]
) -> PostedMessage:
    """A participant's message carrying files they uploaded (tus) to this ticket, stored once per client_id.

    Only the sender's own completed uploads of this ticket that no message carries yet; anything else
    refuses the whole message and writes nothing.
    """
    text = pii.mask_sensitive(check_caption(body))
    wanted = list(dict.fromkeys(upload_ids))
    if not wanted:
        raise MessageRejected("attachments_missing", _("Choose at least one file to send."))
    if len(wanted) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise MessageRejected(
            "too_many_attachments",
            _("One message can carry at most %(max)d files.") % {"max": MAX_ATTACHMENTS_PER_MESSAGE},
        )

    def attach(conversation: Conversation) -> dict[str, Any]:
        found = {
            attachment.upload_id: attachment
            for attachment in Attachment.objects.select_for_update(of=("self",)).filter(
                upload_id__in=wanted,
                upload__status=UploadStatus.COMPLETE,
                ticket_id=conversation.ticket_id,
                uploader=sender,
            )
        }
        if len(found) != len(wanted):
            raise MessageRejected(
                "attachment_not_found",
                _("A file of this message was not found: it has not finished uploading, or it is not yours."),
            )
        if any(attachment.message_id is not None for attachment in found.values()):
            raise MessageRejected("attachment_already_sent", _("A file of this message was already sent."))
        return {"body": text, "attachment_ids": sorted(attachment.pk for attachment in found.values())}

    return _post_locked(
        conversation_id=conversation_id, sender=sender, client_id=client_id, kind=MessageKind.TEXT, build=attach
    )


def share_order_card(*, conversation_id: int, sender: User, client_id: uuid.UUID) -> PostedMessage:
    """The ticket's order as a card in the chat (the buyer shows which order they mean)."""

    def build(conversation: Conversation) -> dict[str, Any]:
        return {"body": "", "data": order_card_data(ticket=conversation.ticket)}

    return _post_locked(
        conversation_id=conversation_id, sender=sender, client_id=client_id, kind=MessageKind.ORDER_CARD, build=build
    )


def order_card_data(*, ticket: RefundTicket) -> dict[str, Any]:
    """What an order card shows, as it was when shared: the order's number, items and total."""
    from tickets.formatting import format_cny

    order = ticket.order
    items = [
        {
            "title": item.title,
            "sku": item.sku,
            "quantity": item.quantity,
            "unit_price_cents": item.unit_price_cents,
            "unit_price": format_cny(item.unit_price_cents),
            "image_url": item.image.url if item.image else "",
        }
        for item in order.items.order_by("pk")
    ]
    return {
        "order_no": order.order_no,
        "ticket_number": ticket.number,
        "paid_total_cents": order.paid_total_cents,
        "paid_total": format_cny(order.paid_total_cents),
        "items": items,
    }


def post_product_card(
    *,
    conversation_id: int,
    sender: User,
    client_id: uuid.UUID,
    title: object,
    url: object,
    image_url: object = "",
    price_cents: object = None,
) -> PostedMessage:
    """A product link with its title, picture and price, posted by the agent handling the ticket."""

    def build(conversation: Conversation) -> dict[str, Any]:
        if sender.pk == conversation.ticket.buyer_id:
            raise MessageRejected("not_allowed", _("Only staff send product cards."))
        return {
            "body": "",
            "data": product_card_data(title=title, url=url, image_url=image_url, price_cents=price_cents),
        }

    return _post_locked(
        conversation_id=conversation_id, sender=sender, client_id=client_id, kind=MessageKind.PRODUCT_CARD, build=build
    )


def product_card_data(*, title: object, url: object, image_url: object, price_cents: object) -> dict[str, Any]:
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    from tickets.formatting import format_cny

    if not isinstance(title, str) or not title.strip() or len(title) > PRODUCT_TITLE_MAX_LENGTH:
        raise MessageRejected(
            "bad_card", _("A product card needs a title of at most %(max)d characters.") % {"max": 200}
        )
    links = {"url": url, "image_url": image_url or ""}
    for name, value in links.items():
        try:
            if not isinstance(value, str) or len(value) > URL_MAX_LENGTH:
                raise ValidationError("bad")
            if value or name == "url":
                URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            raise MessageRejected("bad_card", _("A product card needs web addresses (http or https).")) from None
    if price_cents is not None and (
        isinstance(price_cents, bool) or not isinstance(price_cents, int) or not 0 <= price_cents <= PRICE_MAX_CENTS
    ):
        raise MessageRejected("bad_card", _("The price of a product card is not valid."))
    return {
        "title": title.strip(),
        "url": links["url"],
        "image_url": links["image_url"],
        "price_cents": price_cents,
        "price": format_cny(price_cents) if price_cents is not None else "",
    }


def _post_locked(
    *,
    conversation_id: int,
    sender: User,
    client_id: uuid.UUID,
    kind: str,
    build: Callable[[Conversation], dict[str, Any]],
) -> PostedMessage:
    """The locked path for messages that are not plain text: a resend gets the stored message, else `build`
    checks (and may refuse) before a send token is spent."""

    def checked_then_charged(conversation: Conversation) -> dict[str, Any]:
        fields = build(conversation)
        check_send_rate(user=sender)
        return fields

    posted = _store_locked(
        conversation_id=conversation_id, sender=sender, client_id=client_id, kind=kind, build=checked_then_charged
    )
    if posted is None:
        raise MessageRejected("not_allowed", _("You cannot write in this conversation."))
    return posted
