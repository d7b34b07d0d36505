"""Conversations and their messages.

The database is the source of truth for chat: every message has a
per-conversation sequence number (gap-free, assigned under a row lock on the
conversation) and, when a client sent it, the client's idempotency id.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from tickets.models import RefundTicket

MESSAGE_MAX_LENGTH = 5000


class Conversation(models.Model):
    ticket = models.OneToOneField(
        RefundTicket, on_delete=models.CASCADE, related_name="conversation", verbose_name=_("ticket")
    )
    # The seq of the newest message; the next message takes last_seq + 1 under a row lock.
    last_seq = models.PositiveBigIntegerField(_("last sequence number"), default=0)
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return str(self.ticket)


class ParticipantRole(models.TextChoices):
    BUYER = "buyer", _("Buyer")
    AGENT = "agent", _("Agent")


class Participant(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants", verbose_name=_("conversation")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="participations", verbose_name=_("user")
    )
    role = models.CharField(_("role"), max_length=16, choices=ParticipantRole.choices)
    delivered_seq = models.PositiveBigIntegerField(_("delivered up to"), default=0)
    read_seq = models.PositiveBigIntegerField(_("read up to"), default=0)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="participant_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class MessageKind(models.TextChoices):
    TEXT = "text", _("Text")
    SYSTEM = "system", _("System")
    # Structured cards: what they show is in Message.data (docs/protocol.md).
    ORDER_CARD = "order_card", _("Order card")
    PRODUCT_CARD = "product_card", _("Product card")


CARD_KINDS = (MessageKind.ORDER_CARD, MessageKind.PRODUCT_CARD)


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", verbose_name=_("conversation")
    )
    seq = models.PositiveBigIntegerField(_("sequence number"))
    kind = models.CharField(_("kind"), max_length=16, choices=MessageKind.choices, default=MessageKind.TEXT)
    # Null for system messages.
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sender"),
    )
    # Empty only when the message carries attachments or is a card.
    body = models.TextField(_("body"), max_length=MESSAGE_MAX_LENGTH, blank=True)
    # A card's content (order card, product card); {} for other kinds. db_default: inserts that do not
    # name the column (raw SQL on the hot path) still get a value.
    data = models.JSONField(
        _("card data"), default=dict, db_default=Value({}, output_field=models.JSONField()), blank=True
    )
    # Whether media.Attachment rows point at this message: serialising a plain text message needs no query.
    has_attachments = models.BooleanField(_("has attachments"), default=False, db_default=False)
    client_id = models.UUIDField(_("client id"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_unique_seq"),
            models.UniqueConstraint(
                fields=["conversation", "sender", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_unique_client_id",
            ),
            models.CheckConstraint(condition=Q(seq__gt=0), name="message_seq_positive"),
            models.CheckConstraint(
                condition=Q(LessThanOrEqual(Length("body"), MESSAGE_MAX_LENGTH))
                & (Q(GreaterThan(Length("body"), 0)) | Q(has_attachments=True) | Q(kind__in=CARD_KINDS)),
                name="message_body_length",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation} #{self.seq}"


class PresenceStatus(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class Presence(models.Model):
    """Whether a person is reachable now: their chosen status while a socket is open, else offline."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="presence",
        verbose_name=_("user"),
    )
    # What the person chose (online or away); they are offline whatever they chose when no socket is live.
    chosen_status = models.CharField(
        _("chosen status"), max_length=16, choices=PresenceStatus.choices, default=PresenceStatus.ONLINE
    )
    # The effective status last announced, so that only changes are broadcast.
    status = models.CharField(
        _("status"), max_length=16, choices=PresenceStatus.choices, default=PresenceStatus.OFFLINE
    )
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    class Meta:
        verbose_name = _("presence")
        verbose_name_plural = _("presences")
        constraints = [
            models.CheckConstraint(
                condition=Q(chosen_status__in=["online", "away"]), name="presence_chosen_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_status_display()})"


class SocketSession(models.Model):
    """One open WebSocket. A row whose heartbeat is old belongs to a process that died and is swept."""

    channel_name = models.CharField(_("channel name"), max_length=200, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="socket_sessions", verbose_name=_("user")
    )
    connected_at = models.DateTimeField(_("connected at"), auto_now_add=True)
    seen_at = models.DateTimeField(_("seen at"))

    class Meta:
        verbose_name = _("socket session")
        verbose_name_plural = _("socket sessions")
        indexes = [models.Index(fields=["user", "seen_at"], name="socketsession_user_seen")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.channel_name}"


class TicketViewer(models.Model):
    """A staff socket that has a ticket's conversation open. Keyed by the socket's channel name, like
    SocketSession, so every server process sees the same viewers; the presence sweep removes the rows of
    sockets that are no longer live (messaging/viewers.py)."""

    channel_name = models.CharField(_("channel name"), max_length=200)
    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="+", verbose_name=_("ticket"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    since = models.DateTimeField(_("viewing since"))

    class Meta:
        verbose_name = _("ticket viewer")
        verbose_name_plural = _("ticket viewers")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "channel_name"], name="ticketviewer_unique_socket"),
        ]
        indexes = [models.Index(fields=["channel_name"], name="ticketviewer_channel")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.ticket_id}"
