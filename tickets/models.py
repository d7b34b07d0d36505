"""Orders, refund tickets and their timeline.

Money is stored as integer cents (CNY fen); datetimes are aware.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Order(models.Model):
    """An order as the shop's order system knows it."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", verbose_name=_("buyer")
    )
    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    shipping_fee_cents = models.PositiveIntegerField(_("shipping fee (cents)"), default=0)
    paid_total_cents = models.PositiveIntegerField(_("paid total (cents)"))
    paid_at = models.DateTimeField(_("paid at"))
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    recipient_name = models.CharField(_("recipient"), max_length=100, blank=True)
    shipping_address = models.CharField(_("shipping address"), max_length=300, blank=True)
    # What approved tickets of this order promise to pay back, kept under the order's row lock:
    # the database refuses any change that would promise more than was paid.
    refund_committed_cents = models.PositiveIntegerField(_("refunds committed (cents)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-paid_at"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        indexes = [models.Index(fields=["buyer", "-paid_at"], name="order_buyer_paid_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(refund_committed_cents__lte=F("paid_total_cents")), name="order_refund_within_paid"
            ),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", verbose_name=_("order"))
    sku = models.CharField(_("SKU"), max_length=64)
    title = models.CharField(_("title"), max_length=200)
    unit_price_cents = models.PositiveIntegerField(_("unit price (cents)"))
    quantity = models.PositiveIntegerField(_("quantity"))
    image = models.ImageField(_("image"), upload_to="products/", blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="orderitem_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.title} × {self.quantity}"

    @property
    def line_total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


class TicketStatus(models.TextChoices):
    """The refund states of shared/DESIGN.md; transitions live in tickets/workflow.py."""

    REQUESTED = "requested", _("Requested")
    AWAITING_EVIDENCE = "awaiting_evidence", _("Awaiting evidence")
    UNDER_REVIEW = "under_review", _("Under review")
    APPROVED_REFUND_ONLY = "approved_refund_only", _("Approved (refund only)")
    RETURN_REQUIRED = "return_required", _("Return required")
    RETURN_IN_TRANSIT = "return_in_transit", _("Return in transit")
    RETURN_RECEIVED = "return_received", _("Return received")
    REFUND_PENDING = "refund_pending", _("Refund pending")
    REFUNDED = "refunded", _("Refunded")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")
    CLOSED = "closed", _("Closed")
    ESCALATED = "escalated", _("Escalated")


FINAL_STATUSES = frozenset({TicketStatus.REFUNDED, TicketStatus.REJECTED, TicketStatus.CANCELLED, TicketStatus.CLOSED})
OPEN_STATUSES = frozenset(set(TicketStatus) - FINAL_STATUSES)


class RefundKind(models.TextChoices):
    REFUND_ONLY = "refund_only", _("Refund only")
    RETURN_AND_REFUND = "return_and_refund", _("Return and refund")


class RefundReason(models.TextChoices):
    WRONG_SIZE = "wrong_size", _("Wrong size")
    COLOUR_DIFFERS = "colour_differs", _("Colour differs from the pictures")
    QUALITY_DEFECT = "quality_defect", _("Quality defect")
    DAMAGED_IN_TRANSIT = "damaged_in_transit", _("Damaged in transit")
    MISSING_ITEM = "missing_item", _("Missing item")
    NOT_RECEIVED = "not_received", _("Not received")
    WRONG_ITEM = "wrong_item", _("Wrong item")
    CHANGED_MIND = "changed_mind", _("Changed my mind")
    OTHER = "other", _("Other")


class ReturnCondition(models.TextChoices):
    """How the warehouse finds a returned parcel."""

    INTACT = "intact", _("Intact, resellable")
    USED = "used", _("Used")
    DAMAGED = "damaged", _("Damaged")
    MISSING_PARTS = "missing_parts", _("Parts missing")


class Team(models.TextChoices):
    """Back-office teams a ticket can be handed to; its agent keeps the chat with the buyer."""

    FINANCE = "finance", _("Finance")
    WAREHOUSE = "warehouse", _("Warehouse")


class PayoutMethod(models.TextChoices):
    """Where a refund goes: back the way the order was paid, or to an account the buyer names."""

    ORIGINAL = "", _("Original payment method")
    BANK_CARD = "bank_card", _("Bank card")
    ALIPAY = "alipay", _("Alipay")
    WECHAT = "wechat", _("WeChat Pay")


class RefundTicket(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("order"))
    # Denormalised from the order so that permission checks and queues need no join.
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="refund_tickets",
        verbose_name=_("buyer"),
    )
    kind = models.CharField(_("type"), max_length=32, choices=RefundKind.choices)
    reason = models.CharField(_("reason"), max_length=32, choices=RefundReason.choices)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    status = models.CharField(_("status"), max_length=32, choices=TicketStatus.choices, default=TicketStatus.REQUESTED)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("assigned agent"),
    )
    requested_amount_cents = models.PositiveIntegerField(_("requested amount (cents)"))
    # Set on approval (and possibly reduced when the return arrives); counted in Order.refund_committed_cents.
    approved_amount_cents = models.PositiveIntegerField(_("approved amount (cents)"), null=True, blank=True)
    refund_shipping_fee = models.BooleanField(_("refund the shipping fee"), default=False)
    return_carrier = models.CharField(_("return carrier"), max_length=16, blank=True)
    return_tracking_no = models.CharField(_("return tracking number"), max_length=32, blank=True)
    return_shipped_at = models.DateTimeField(_("return shipped at"), null=True, blank=True)
    return_received_at = models.DateTimeField(_("return received at"), null=True, blank=True)
    return_condition = models.CharField(
        _("condition of the returned items"), max_length=16, choices=ReturnCondition.choices, blank=True
    )
    # The buyer's language when the ticket was opened: emails and bot replies use it.
    language = models.CharField(_("language"), max_length=10, default="zh-hans")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    first_response_due_at = models.DateTimeField(_("first response due"))
    first_responded_at = models.DateTimeField(_("first responded at"), null=True, blank=True)
    # Set by the timer when the first-response promise ran out with no answer.
    sla_breached_at = models.DateTimeField(_("first-response promise broken at"), null=True, blank=True)
    # Set by the timer while a buyer message has waited past the next-response promise with no staff
    # reply after it; the timer clears it once staff answered (tickets/timers.py).
    next_response_breached_at = models.DateTimeField(_("next-response promise broken at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Handed to a back-office team (finance, warehouse) for an answer; the agent keeps the chat.
    team = models.CharField(_("handed to team"), max_length=16, choices=Team.choices, blank=True, default="")
    # Where the buyer wants the money (issue #9): the account is encrypted (refundchat/crypto.py) and
    # decrypted only to pay (tickets/payouts.py); every other place shows the masked form. db_default: rows written
    # without naming these columns (seed_bulk's COPY) get the empty value.
    payout_method = models.CharField(
        _("refund to"),
        max_length=16,
        choices=PayoutMethod.choices,
        blank=True,
        default=PayoutMethod.ORIGINAL,
        db_default=PayoutMethod.ORIGINAL,
    )
    payout_account_encrypted = models.TextField(
        _("payout account (encrypted)"), blank=True, editable=False, default="", db_default=""
    )
    payout_account_masked = models.CharField(
        _("payout account"), max_length=40, blank=True, editable=False, default="", db_default=""
    )
    labels: models.ManyToManyField[Label, TicketLabel] = models.ManyToManyField(
        "Label", through="TicketLabel", blank=True, related_name="tickets", verbose_name=_("labels")
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("refund ticket")
        verbose_name_plural = _("refund tickets")
        permissions = [
            ("use_console", _("Can open the agent console")),
            ("handle_ticket", _("Can claim and answer refund tickets")),
            ("receive_return", _("Can confirm returned parcels")),
            ("manage_payout", _("Can pay out refunds")),
            ("arbitrate", _("Can decide escalated tickets")),
            # Reports (issue #8): the managers' report pages in the admin (tickets/reports/).
            ("view_reports", _("Can see the reports")),
        ]
        indexes = [
            models.Index(fields=["status", "first_response_due_at"], name="ticket_status_due_idx"),
            models.Index(fields=["buyer", "-created_at"], name="ticket_buyer_created_idx"),
            models.Index(fields=["assigned_agent", "status"], name="ticket_agent_status_idx"),
            models.Index(fields=["team", "status"], condition=~Q(team=""), name="ticket_team_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"RC-{self.pk:06d}" if self.pk else "RC-new"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class RefundTicketItem(models.Model):
    """Which order items, and how many of each, a ticket asks money back for."""

    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="items", verbose_name=_("ticket"))
    order_item = models.ForeignKey(
        OrderItem, on_delete=models.PROTECT, related_name="ticket_items", verbose_name=_("order item")
    )
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("ticket item")
        verbose_name_plural = _("ticket items")
        constraints = [
            models.UniqueConstraint(fields=["ticket", "order_item"], name="ticketitem_unique_per_ticket"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="ticketitem_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_item.title} × {self.quantity}"


class TicketEventKind(models.TextChoices):
    CREATED = "created", _("Ticket created")
    STATUS_CHANGED = "status_changed", _("Status changed")
    ASSIGNED = "assigned", _("Assigned")
    FIRST_RESPONSE = "first_response", _("First response")
    PAYOUT = "payout", _("Payout")
    TIMER = "timer", _("Timer")
    LABELS = "labels", _("Labels changed")
    TEAM = "team", _("Handed to a team")
    RATING = "rating", _("Satisfaction rated")
    # The triage assistant handed the case to a human (`reason` holds the hand-off reason code) or got it back.
    ASSISTANT_HANDOFF = "assistant_handoff", _("Handed off by the assistant")
    ASSISTANT_HANDBACK = "assistant_handback", _("Handed back to the assistant")
    # A voice or video call attempt; `data` holds the outcome, the media and the duration.
    CALL = "call", _("Call")


class TicketEvent(models.Model):
    """An append-only timeline entry: who did what to a ticket, and why."""

    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="events", verbose_name=_("ticket"))
    kind = models.CharField(_("kind"), max_length=32, choices=TicketEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    from_status = models.CharField(_("from status"), max_length=32, choices=TicketStatus.choices, blank=True)
    to_status = models.CharField(_("to status"), max_length=32, choices=TicketStatus.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    # Whether the buyer sees this entry in their history (assignments are internal).
    visible_to_buyer = models.BooleanField(_("visible to buyer"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        # Reports (issue #8): reopened, handed-off and assigned tickets, without reading every event.
        indexes = [
            models.Index(
                fields=["ticket"],
                condition=Q(kind="status_changed", from_status__in=["cancelled", "closed", "refunded", "rejected"]),
                name="ticketevent_reopened_idx",
            ),
            models.Index(
                fields=["ticket", "reason"], condition=Q(kind="assistant_handoff"), name="ticketevent_handoff_idx"
            ),
            models.Index(fields=["ticket"], condition=Q(kind="assigned"), name="ticketevent_assigned_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="status_changed", to_status__gt="") | ~Q(kind="status_changed"),
                name="ticketevent_status_change_has_target",
            ),
            models.CheckConstraint(
                condition=~Q(from_status=F("to_status")) | Q(to_status=""),
                name="ticketevent_status_change_changes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} {self.get_kind_display()}"


class OutboxKind(models.TextChoices):
    CHAT = "chat", _("Chat message")
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Webhook")
    PAYOUT = "payout", _("Payout request")


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class OutboxMessage(models.Model):
    """A notification written in the transaction of the change it tells about, delivered after commit.

    A broker that is down at commit time only delays it: a beat task dispatches
    whatever is still pending once its time has come (tickets/outbox.py).
    """

    ticket = models.ForeignKey(
        RefundTicket, on_delete=models.CASCADE, related_name="outbox_messages", verbose_name=_("ticket")
    )
    event = models.ForeignKey(
        TicketEvent, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("event")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=OutboxKind.choices)
    payload = models.JSONField(_("payload"), default=dict)
    # Sent with webhooks and used as the chat message key, so receivers can drop a repeat.
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, default=uuid.uuid4, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"), name="outbox_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"


class PayoutStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting finance approval")
    REQUESTED = "requested", _("Requested from the gateway")
    SUCCEEDED = "succeeded", pgettext_lazy("payout status", "Paid")
    FAILED = "failed", pgettext_lazy("payout status", "Failed")


class Payout(models.Model):
    """The money going back to the buyer: one per ticket, so a refund can never be paid twice."""

    ticket = models.OneToOneField(
        RefundTicket, on_delete=models.PROTECT, related_name="payout", verbose_name=_("ticket")
    )
    amount_cents = models.PositiveIntegerField(_("amount (cents)"))
    status = models.CharField(_("status"), max_length=20, choices=PayoutStatus.choices)
    # Sent to the gateway with every request of this payout; attempt n uses "<key>:<n>".
    idempotency_key = models.UUIDField(_("idempotency key"), unique=True, default=uuid.uuid4, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    provider = models.CharField(_("provider"), max_length=32)
    provider_reference = models.CharField(_("gateway reference"), max_length=64, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(status="succeeded", paid_at__isnull=False) | ~Q(status="succeeded"),
                name="payout_paid_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} {self.get_status_display()}"


class AgentProfile(models.Model):
    """How many open tickets an agent takes at once; managers set it in the admin."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="agent_profile",
        verbose_name=_("agent"),
    )
    max_open_tickets = models.PositiveSmallIntegerField(_("most open tickets at once"), default=8)
    # Ties between equally loaded agents go to whoever waited longest for a ticket.
    last_assigned_at = models.DateTimeField(_("last assigned at"), null=True, blank=True)

    class Meta:
        verbose_name = _("agent profile")
        verbose_name_plural = _("agent profiles")

    def __str__(self) -> str:
        return str(self.user)


# --- The agents' workspace (issue #6): teams, labels, internal notes, canned replies, satisfaction ---------------


class Label(models.Model):
    """A tag agents put on tickets (VIP, fraud suspected, 11.11 …); managed in the admin."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    colour = models.CharField(
        _("colour"),
        max_length=7,
        default="#64748b",
        help_text=_("A hex colour such as #e11d48."),
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour such as #e11d48."))],
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        constraints = [models.CheckConstraint(condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="label_colour_hex")]

    def __str__(self) -> str:
        return self.name


class TicketLabel(models.Model):
    """A label on a ticket (the through table of RefundTicket.labels)."""

    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="+", verbose_name=_("ticket"))
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+", verbose_name=_("label"))

    class Meta:
        verbose_name = _("ticket label")
        verbose_name_plural = _("ticket labels")
        constraints = [models.UniqueConstraint(fields=["ticket", "label"], name="ticketlabel_unique")]
        indexes = [models.Index(fields=["label", "ticket"], name="ticketlabel_label_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id}:{self.label_id}"


class TicketNote(models.Model):
    """An internal note on a ticket: staff only, never shown or sent to the buyer."""

    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="notes", verbose_name=_("ticket"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("author")
    )
    body = models.TextField(_("note"), max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticketnote_ticket_idx")]
        constraints = [models.CheckConstraint(condition=~Q(body=""), name="ticketnote_body_not_empty")]

    def __str__(self) -> str:
        return f"{self.ticket} {self.body[:40]}"


class NoteMention(models.Model):
    """A staff member @mentioned in a note: their notification until they have seen it."""

    note = models.ForeignKey(TicketNote, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("note"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="note_mentions", verbose_name=_("mentioned")
    )
    seen_at = models.DateTimeField(_("seen at"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")
        constraints = [models.UniqueConstraint(fields=["note", "user"], name="notemention_unique")]
        indexes = [models.Index(fields=["user", "seen_at"], name="notemention_user_seen_idx")]

    def __str__(self) -> str:
        return f"@{self.user} {self.note.ticket}"


class ReplyLanguage(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


class CannedReply(models.Model):
    """A saved answer: personal (owner set) or shared by the team (no owner, managers edit it).

    The text may use {buyer_name}, {order_no}, {refund_amount} and {eta}, filled from the ticket.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_replies",
        verbose_name=_("owner"),
        help_text=_("Empty for a team reply that every agent can use."),
    )
    title = models.CharField(_("title"), max_length=80)
    language = models.CharField(_("language"), max_length=10, choices=ReplyLanguage.choices)
    body = models.TextField(_("text"), max_length=2000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        permissions = [("manage_team_replies", _("Can edit the team's canned replies in the console"))]
        indexes = [models.Index(fields=["owner", "language"], name="cannedreply_owner_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(body=""), name="cannedreply_body_not_empty"),
            models.CheckConstraint(condition=Q(language__in=["zh-hans", "en"]), name="cannedreply_language_known"),
        ]

    def __str__(self) -> str:
        return self.title


class SatisfactionRating(models.Model):
    """The buyer's 1–5 rating of how their ticket was handled: at most one per ticket."""

    ticket = models.OneToOneField(
        RefundTicket, on_delete=models.CASCADE, related_name="rating", verbose_name=_("ticket")
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), max_length=1000, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="rating_score_1_to_5")]

    def __str__(self) -> str:
        return f"{self.ticket} {self.score}/5"


# --- The REST API (issue #8): webhook subscriptions and integration tokens -------------------------------------


class WebhookEvent(models.TextChoices):
    """The events the outbox sends to the shop's systems (tickets/notifications.py)."""

    TICKET_CREATED = "ticket.created", _("Ticket created")
    TICKET_STATUS_CHANGED = "ticket.status_changed", _("Ticket status changed")


class WebhookSubscription(models.Model):
    """A receiver of ticket events: each matching event becomes one signed outbox message for it."""

    url = models.URLField(_("URL"), max_length=500)
    # Shared with the receiver, which recomputes the signature; never shown again after it is set.
    secret = models.CharField(_("signing secret"), max_length=128)
    # The WebhookEvent values this receiver wants.
    event_types = models.JSONField(_("event types"), default=list)
    active = models.BooleanField(_("active"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        constraints = [
            models.CheckConstraint(condition=Q(url__regex=r"^https?://"), name="webhook_url_http"),
            models.CheckConstraint(condition=~Q(secret=""), name="webhook_secret_not_empty"),
        ]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.active and event in self.event_types


class IntegrationToken(models.Model):
    """An API token for one of the shop's systems: it acts as `user` (whose role gives the rights),
    further narrowed to `scopes` ("<resource>:read" / "<resource>:write"). Only a hash is stored."""

    name = models.CharField(_("name"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="integration_tokens",
        verbose_name=_("acts as"),
    )
    # SHA-256 of the token (hex); the token itself is shown once, when it is created.
    key_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    # The token's first characters, to tell tokens apart in the admin and in logs.
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    active = models.BooleanField(_("active"), default=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("integration token")
        verbose_name_plural = _("integration tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AccessAction(models.TextChoices):
    TICKET_VIEWED = "ticket_viewed", _("Ticket opened in the console")
    ATTACHMENT_DOWNLOADED = "attachment_downloaded", _("Attachment downloaded")
    PAYOUT_ACCOUNT_DECRYPTED = "payout_account_decrypted", _("Payout account decrypted")
    DATA_EXPORTED = "data_exported", _("Personal data exported")
    DATA_ERASED = "data_erased", _("Personal data erased")


class AccessLogEntry(models.Model):
    """Who read whose personal data, and when (tickets/access_log.py). Append-only: the admin shows it
    read-only and, on PostgreSQL, a trigger refuses UPDATE and DELETE (migration 0015)."""

    # No foreign key constraints: an entry outlives what it names, and SET_NULL would be an UPDATE.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_name = models.CharField(_("who (name then)"), max_length=150, blank=True)
    action = models.CharField(_("what"), max_length=32, choices=AccessAction.choices)
    ticket = models.ForeignKey(
        RefundTicket,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ticket"),
    )
    # The attachment, payout or export concerned, as "attachment:12".
    target = models.CharField(_("object"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data access log")
        indexes = [models.Index(fields=["ticket", "-created_at"], name="accesslog_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_action_display()} {self.target}"


class ExportStatus(models.TextChoices):
    PREPARING = "preparing", _("Preparing")
    READY = "ready", _("Ready")
    FAILED = "failed", pgettext_lazy("export status", "Failed")


class DataExport(models.Model):
    """A buyer's download of all their data: a zip built by Celery (tickets/privacy.py), its link expiring."""

    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports", verbose_name=_("buyer")
    )
    status = models.CharField(_("status"), max_length=16, choices=ExportStatus.choices, default=ExportStatus.PREPARING)
    # Under MEDIA_ROOT/exports/; never served from a public URL.
    file_name = models.CharField(_("file"), max_length=200, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    ready_at = models.DateTimeField(_("ready at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
        constraints = [
            models.CheckConstraint(
                condition=Q(status="ready", ready_at__isnull=False, expires_at__isnull=False) | ~Q(status="ready"),
                name="dataexport_ready_has_times",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.buyer} {self.get_status_display()}"
