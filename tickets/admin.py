from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from refundchat.api.tokens import SCOPES, do_create_token
from tickets import outbox, webhooks
from tickets.formatting import format_cny
from tickets.models import (
    AccessLogEntry,
    AgentProfile,
    CannedReply,
    DataExport,
    IntegrationToken,
    Label,
    NoteMention,
    Order,
    OrderItem,
    OutboxMessage,
    Payout,
    RefundTicket,
    RefundTicketItem,
    SatisfactionRating,
    TicketEvent,
    TicketLabel,
    TicketNote,
    WebhookEvent,
    WebhookSubscription,
)


class ReadOnlyInlineMixin:
    """Timeline rows are append-only: nobody edits or deletes them in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0
    fields = ("sku", "title", "unit_price_cents", "quantity", "image")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("order_no", "buyer", "paid_total", "paid_at", "delivered_at")
    list_filter = ("paid_at", "delivered_at")
    search_fields = ("order_no", "buyer__username", "buyer__email", "items__sku", "items__title")
    date_hierarchy = "paid_at"
    list_select_related = ("buyer",)
    raw_id_fields = ("buyer",)
    inlines = [OrderItemInline]

    @admin.display(description=_("paid total"), ordering="paid_total_cents")
    def paid_total(self, obj: Order) -> str:
        return format_cny(obj.paid_total_cents)


class RefundTicketItemInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = RefundTicketItem
    extra = 0
    fields = ("order_item", "quantity")
    readonly_fields = fields


class TicketEventInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = TicketEvent
    extra = 0
    fields = ("created_at", "kind", "actor", "from_status", "to_status", "reason", "data")
    readonly_fields = fields
    ordering = ("created_at", "id")


@admin.register(RefundTicket)
class RefundTicketAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "order",
        "buyer",
        "kind",
        "reason",
        "status",
        "assigned_agent",
        "requested_amount",
        "created_at",
        "first_response_due_at",
        "first_responded_at",
    )
    list_filter = ("status", "kind", "reason", "assigned_agent", "language", "created_at")
    search_fields = ("=id", "order__order_no", "buyer__username", "buyer__email", "description")
    date_hierarchy = "created_at"
    list_select_related = ("order", "buyer", "assigned_agent")
    raw_id_fields = ("order", "buyer", "assigned_agent")
    # State changes go through the services (issue #5), never through a form field.
    readonly_fields = (
        "status",
        "created_at",
        "updated_at",
        "first_responded_at",
        "resolved_at",
        "team",
        # Issue #9: only the masked account is ever shown; the encrypted one is in no form.
        "payout_method",
        "payout_account_masked",
    )
    # Labels and team change in the console (services.set_labels, transfer_to_team), each with its event.
    exclude = ("labels",)
    inlines = [RefundTicketItemInline, TicketEventInline]

    @admin.display(description=_("number"), ordering="id")
    def number(self, obj: RefundTicket) -> str:
        return obj.number

    @admin.display(description=_("requested amount"), ordering="requested_amount_cents")
    def requested_amount(self, obj: RefundTicket) -> str:
        return format_cny(obj.requested_amount_cents)


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("created_at", "ticket", "kind", "actor", "from_status", "to_status", "reason")
    list_filter = ("kind", "to_status", "created_at")
    search_fields = ("=ticket__id", "reason", "actor__username")
    date_hierarchy = "created_at"
    list_select_related = ("ticket", "actor")


@admin.register(OrderItem)
class OrderItemAdmin(admin.ModelAdmin):
    list_display = ("title", "sku", "order", "unit_price", "quantity")
    search_fields = ("sku", "title", "order__order_no")
    list_select_related = ("order",)
    raw_id_fields = ("order",)

    @admin.display(description=_("unit price"), ordering="unit_price_cents")
    def unit_price(self, obj: OrderItem) -> str:
        return format_cny(obj.unit_price_cents)


@admin.register(RefundTicketItem)
class RefundTicketItemAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("ticket", "order_item", "quantity")
    search_fields = ("=ticket__id", "order_item__sku", "order_item__title")
    list_select_related = ("ticket", "order_item")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("id", "ticket", "kind", "status", "attempts", "next_attempt_at", "sent_at", "created_at")
    list_filter = ("status", "kind")
    search_fields = ("=ticket__id", "=idempotency_key")
    list_select_related = ("ticket",)
    readonly_fields = [field.name for field in OutboxMessage._meta.fields]
    actions = ["send_again"]

    @admin.action(description=_("Send the selected notifications again now"), permissions=["change"])
    def send_again(self, request: HttpRequest, queryset: Any) -> None:
        count = outbox.retry_now(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("%(count)d notifications queued again.") % {"count": count})

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The action is what staff use; the change view stays read-only.
        return bool(request.user.is_superuser)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("ticket", "amount", "status", "attempts", "provider", "provider_reference", "paid_at")
    list_filter = ("status", "provider")
    search_fields = ("=ticket__id", "provider_reference", "=idempotency_key")
    list_select_related = ("ticket",)
    readonly_fields = [field.name for field in Payout._meta.fields]

    @admin.display(description=_("amount"), ordering="amount_cents")
    def amount(self, payout: Payout) -> str:
        return format_cny(payout.amount_cents)


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    """Managers set how many open tickets each agent takes at once."""

    list_display = ("user", "max_open_tickets", "last_assigned_at")
    list_editable = ("max_open_tickets",)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    readonly_fields = ("last_assigned_at",)


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    """Managers keep the list of labels agents put on tickets."""

    list_display = ("name", "colour", "swatch")
    search_fields = ("name",)

    @admin.display(description=_("colour"))
    def swatch(self, obj: Label) -> str:
        return format_html(
            '<span style="display:inline-block;width:2.5em;height:1em;border-radius:4px;background:{}"></span>',
            obj.colour,
        )


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    """Team replies have no owner; agents' personal ones are listed too (they edit them in the console)."""

    list_display = ("title", "language", "owner", "updated_at")
    list_filter = ("language", ("owner", admin.EmptyFieldListFilter))
    search_fields = ("title", "body", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)


@admin.register(TicketLabel)
class TicketLabelAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Which ticket carries which label; set in the console, where each change is an event."""

    list_display = ("ticket", "label")
    list_filter = ("label",)
    search_fields = ("=ticket__id", "label__name")
    list_select_related = ("ticket", "label")


@admin.register(NoteMention)
class NoteMentionAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("note", "user", "seen_at")
    list_filter = ("seen_at",)
    search_fields = ("=note__ticket__id", "user__username")
    list_select_related = ("note", "note__ticket", "user")


class NoteMentionInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = NoteMention
    extra = 0
    fields = ("user", "seen_at")
    readonly_fields = fields


@admin.register(TicketNote)
class TicketNoteAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Internal notes are part of the record: read-only here."""

    list_display = ("created_at", "ticket", "author", "body")
    search_fields = ("=ticket__id", "body", "author__username")
    list_select_related = ("ticket", "author")
    inlines = [NoteMentionInline]


@admin.register(SatisfactionRating)
class SatisfactionRatingAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("ticket", "score", "comment", "created_at")
    list_filter = ("score", "created_at")
    search_fields = ("=ticket__id", "comment")
    list_select_related = ("ticket",)
    date_hierarchy = "created_at"


# --- Reports (issue #8): the managers' report pages under /admin/reports/ (tickets/reports/) -------------------
from tickets.reports import admin as reports_admin  # noqa: E402 - after the registrations it sits beside

reports_admin.install(admin.site)
# --- end of reports ----------------------------------------------------------------------------------------------


# --- The REST API (issue #8): integration tokens and webhook subscriptions ----------------------------------------


class IntegrationTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("What the token may read or change; the user's role limits it further."),
    )

    class Meta:
        model = IntegrationToken
        fields = ("name", "user", "scopes", "active", "expires_at")


@admin.register(IntegrationToken)
class IntegrationTokenAdmin(admin.ModelAdmin):
    """Tokens for the shop's systems: the token is shown once, when it is made; only its hash is kept."""

    form = IntegrationTokenForm
    list_display = ("name", "prefix", "user", "active", "expires_at", "last_used_at", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = ("prefix", "last_used_at", "created_at")

    def save_model(self, request: HttpRequest, obj: IntegrationToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = do_create_token(
            name=obj.name, user=obj.user, scopes=list(form.cleaned_data["scopes"]), expires_at=obj.expires_at
        )
        obj.pk, obj.key_hash, obj.prefix, obj.created_at = token.pk, token.key_hash, token.prefix, token.created_at
        obj._state.adding = False
        self.message_user(
            request,
            _("The token is %(key)s — copy it now: it is not stored and will not be shown again.") % {"key": key},
            messages.WARNING,
        )


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"), choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        label=_("signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("At least 16 characters. Empty: keep the current one (or make one for a new subscription)."),
    )

    class Meta:
        model = WebhookSubscription
        fields = ("url", "event_types", "secret", "active", "description")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The service's own checks, so a refusal shows on the form and nothing is saved.
        secret = data.get("secret") or self.instance.secret or webhooks.new_secret()
        try:
            webhooks.check_subscription(
                url=data.get("url") or "", secret=secret, event_types=list(data.get("event_types") or [])
            )
        except webhooks.SubscriptionRefused as refused:
            raise forms.ValidationError(refused.message, code=refused.code) from None
        return data


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """Receivers of ticket events; saved through tickets.webhooks, as the API saves them."""

    form = WebhookSubscriptionForm
    list_display = ("url", "event_list", "active", "created_by", "updated_at")
    list_filter = ("active",)
    search_fields = ("url", "description")
    list_select_related = ("created_by",)

    @admin.display(description=_("event types"))
    def event_list(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.event_types)

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            saved = webhooks.do_save_subscription(
                by=request.user,  # type: ignore[arg-type]
                url=data["url"],
                event_types=list(data["event_types"]),
                secret=data["secret"],
                active=data["active"],
                description=data["description"],
                subscription_id=obj.pk if change else None,
            )
        except webhooks.SubscriptionRefused as refused:
            self.message_user(request, refused.message, messages.ERROR)
            return
        obj.pk, obj._state.adding = saved.pk, False
        if not change and not data["secret"]:
            self.message_user(
                request,
                _("The signing secret is %(secret)s — give it to the receiver now.") % {"secret": saved.secret},
                messages.WARNING,
            )


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Issue #9: who read whose personal data. Managers read it; nobody adds, edits or deletes entries (on
    PostgreSQL a trigger refuses UPDATE and DELETE as well)."""

    list_display = ("created_at", "actor_name", "action", "ticket_id", "target")
    list_filter = ("action", "created_at")
    search_fields = ("actor_name", "=ticket__id", "target")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AccessLogEntry._meta.fields]
    actions = None


@admin.register(DataExport)
class DataExportAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Buyers' data exports (tickets/privacy.py): only their state; the file goes to its buyer alone."""

    list_display = ("created_at", "buyer", "status", "size", "expires_at")
    list_filter = ("status",)
    fields = ("buyer", "status", "size", "created_at", "ready_at", "expires_at")
    readonly_fields = fields
