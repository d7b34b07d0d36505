"""Conversations and their messages.

The database is the source of truth for chat: every message has a
per-conversation sequence number (gap-free, assigned under a row lock on the
conversation) and, when a client sent it, the client's idempotency id.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan, LessThanOrEqual
from django.utils import timezone
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
    # The triage assistant holds the conversation (messaging/assistant): buyer messages go to it and routing
    # waits. On the row the message path updates anyway, so the hot path learns it without another query.
    assistant_active = models.BooleanField(_("assistant active"), default=False, db_default=False)
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
    # From the triage assistant (no sender): text, and in Message.data its quick replies and cards.
    ASSISTANT = "assistant", _("Assistant")


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


# --- Voice and video calls (issue #10; messaging/calls.py) -------------------------------------------


class CallMedia(models.TextChoices):
    VOICE = "voice", _("Voice call")
    VIDEO = "video", _("Video call")


class CallState(models.TextChoices):
    RINGING = "ringing", _("Ringing")
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")


class CallOutcome(models.TextChoices):
    ENDED = "ended", _("Ended")
    MISSED = "missed", _("Missed")
    DECLINED = "declined", _("Declined")
    BUSY = "busy", _("Busy")


LIVE_CALL_STATES = (CallState.RINGING, CallState.ACTIVE)


class Call(models.Model):
    """One call attempt between a ticket's buyer and its agent. Only signalling state lives here: no SDP, no
    candidates, no media (calls are never recorded). The transitions are in messaging/calls.py."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="calls", verbose_name=_("conversation")
    )
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("caller")
    )
    # Null while a buyer's call to an unassigned ticket waits in the queue for any agent.
    callee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("callee"),
    )
    media = models.CharField(_("media"), max_length=8, choices=CallMedia.choices)
    state = models.CharField(_("state"), max_length=8, choices=CallState.choices, default=CallState.RINGING)
    outcome = models.CharField(_("outcome"), max_length=8, choices=CallOutcome.choices, blank=True)
    # Why it ended, machine-readable: hangup, cancelled, timeout, declined, busy, connection_lost.
    end_reason = models.CharField(_("end reason"), max_length=16, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ended by"),
    )
    # The socket of each party that carries the call's signalling; its loss starts the grace period.
    caller_channel = models.CharField(_("caller's socket"), max_length=200, blank=True)
    callee_channel = models.CharField(_("callee's socket"), max_length=200, blank=True)
    caller_lost_at = models.DateTimeField(_("caller's socket lost at"), null=True, blank=True)
    callee_lost_at = models.DateTimeField(_("callee's socket lost at"), null=True, blank=True)
    created_at = models.DateTimeField(_("started at"), default=timezone.now)
    ring_deadline = models.DateTimeField(_("rings until"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"], condition=Q(state__in=LIVE_CALL_STATES), name="call_one_live_per_conversation"
            ),
            models.CheckConstraint(condition=Q(media__in=CallMedia.values), name="call_media_valid"),
            models.CheckConstraint(condition=~Q(caller=F("callee")), name="call_not_self"),
            models.CheckConstraint(
                condition=(Q(state=CallState.ENDED) & Q(ended_at__isnull=False) & ~Q(outcome=""))
                | (Q(state__in=LIVE_CALL_STATES) & Q(ended_at__isnull=True) & Q(outcome="")),
                name="call_ended_has_outcome",
            ),
            models.CheckConstraint(
                condition=~Q(state=CallState.ACTIVE) | (Q(answered_at__isnull=False) & Q(callee__isnull=False)),
                name="call_active_answered",
            ),
        ]
        indexes = [
            models.Index(fields=["caller_channel"], condition=Q(state__in=LIVE_CALL_STATES), name="call_live_caller"),
            models.Index(fields=["callee_channel"], condition=Q(state__in=LIVE_CALL_STATES), name="call_live_callee"),
            models.Index(fields=["state", "ring_deadline"], condition=Q(state="ringing"), name="call_ringing_due"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation} {self.get_media_display()} #{self.pk}"

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_CALL_STATES

    @property
    def duration_seconds(self) -> int:
        """Talk time: from the answer to the end (0 for a call never answered)."""
        if self.answered_at is None:
            return 0
        end = self.ended_at or timezone.now()
        return max(0, int((end - self.answered_at).total_seconds()))


# --- The triage assistant (issue #7, messaging/assistant/) ------------------------------------------


class AssistantState(models.TextChoices):
    CONFIRM_ORDER = "confirm_order", _("Confirming the order")
    PROBLEM = "problem", _("Asking the problem")
    EVIDENCE = "evidence", _("Collecting evidence")
    DONE = "done", _("Resolved by the assistant")
    HANDED_OFF = "handed_off", _("Handed off to an agent")


class AssistantDialog(models.Model):
    """The assistant's dialog with the buyer of one ticket: its state survives restarts.

    Buyer messages are processed one step each, in seq order, under this row's lock; `last_seq`
    remembers the last one processed, so a resent or replayed message is never processed twice.
    """

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="assistant_dialog", verbose_name=_("conversation")
    )
    state = models.CharField(_("state"), max_length=16, choices=AssistantState.choices)
    # The language the buyer writes in now (their last message); replies follow it.
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    problem = models.CharField(_("problem type"), max_length=32, blank=True)
    last_seq = models.PositiveBigIntegerField(_("last buyer message processed"), default=0)
    # Evidence counts from buyer messages after this seq (when the evidence was asked for).
    evidence_since_seq = models.PositiveBigIntegerField(_("evidence asked at"), default=0)
    # Messages in a row the assistant did not understand; two hand the case off.
    misunderstood = models.PositiveSmallIntegerField(_("not understood in a row"), default=0)
    # Where to continue when an agent hands the case back.
    resume_state = models.CharField(_("resume at"), max_length=16, choices=AssistantState.choices, blank=True)
    handoff_reason = models.CharField(_("hand-off reason"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("assistant dialog")
        verbose_name_plural = _("assistant dialogs")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in AssistantState]), name="assistantdialog_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation} ({self.get_state_display()})"

    @property
    def handoff_reason_label(self) -> str:
        from messaging.assistant.dialog import REASON_LABELS

        return str(REASON_LABELS.get(self.handoff_reason, self.handoff_reason))


class AssistantStep(models.Model):
    """One step of a dialog, append-only: what the buyer said, what the assistant understood and did."""

    dialog = models.ForeignKey(
        AssistantDialog, on_delete=models.CASCADE, related_name="steps", verbose_name=_("dialog")
    )
    # The buyer message this step answered; 0 for steps nobody's message started (opening, hand-back).
    seq = models.PositiveBigIntegerField(_("buyer message"), default=0)
    state_before = models.CharField(_("state before"), max_length=16, blank=True)
    state_after = models.CharField(_("state after"), max_length=16)
    text = models.CharField(_("buyer's words"), max_length=500, blank=True)
    intent = models.CharField(_("intent"), max_length=32, blank=True)
    confidence = models.FloatField(_("confidence"), default=0)
    action = models.CharField(_("action"), max_length=32)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["dialog", "id"]
        verbose_name = _("assistant step")
        verbose_name_plural = _("assistant steps")

    def __str__(self) -> str:
        return f"{self.dialog_id}: {self.action}"
