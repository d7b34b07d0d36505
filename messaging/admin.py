from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from messaging.models import (
    AssistantDialog,
    AssistantStep,
    Call,
    Conversation,
    Message,
    Participant,
    Presence,
    SocketSession,
    TicketViewer,
)
from tickets.admin import ReadOnlyInlineMixin


class ParticipantInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Participant
    extra = 0
    fields = ("user", "role", "delivered_seq", "read_seq", "joined_at")
    readonly_fields = fields


class MessageInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Message
    extra = 0
    fields = ("seq", "created_at", "kind", "sender", "body")
    readonly_fields = fields
    ordering = ("seq",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("ticket", "last_seq", "last_message_at", "created_at")
    search_fields = ("=ticket__id", "ticket__order__order_no")
    list_select_related = ("ticket",)
    readonly_fields = ("ticket", "last_seq", "last_message_at", "created_at")
    inlines = [ParticipantInline, MessageInline]


@admin.register(Message)
class MessageAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    list_display = ("conversation", "seq", "kind", "sender", "preview", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("body", "=conversation__ticket__id", "sender__username")
    date_hierarchy = "created_at"
    list_select_related = ("conversation__ticket", "sender")

    @admin.display(description=_("message"))
    def preview(self, obj: Message) -> str:
        return Truncator(obj.body).chars(80)


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("conversation", "user", "role", "delivered_seq", "read_seq", "joined_at")
    list_filter = ("role",)
    search_fields = ("user__username", "=conversation__ticket__id")
    list_select_related = ("conversation__ticket", "user")
    readonly_fields = ("conversation", "user", "role", "delivered_seq", "read_seq", "joined_at")


class ReadOnlyAdmin(ReadOnlyInlineMixin, admin.ModelAdmin):
    """Rows the server keeps by itself: staff look, nobody edits."""


@admin.register(Presence)
class PresenceAdmin(ReadOnlyAdmin):
    list_display = ("user", "status", "chosen_status", "last_seen_at")
    list_filter = ("status",)
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(SocketSession)
class SocketSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "channel_name", "connected_at", "seen_at")
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(TicketViewer)
class TicketViewerAdmin(ReadOnlyAdmin):
    list_display = ("ticket", "user", "since", "channel_name")
    search_fields = ("user__username", "=ticket__id")
    list_select_related = ("ticket", "user")


# --- The triage assistant (issue #7): per ticket, its dialog steps and why it handed off; read-only ------------


class AssistantStepInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = AssistantStep
    extra = 0
    fields = ("created_at", "seq", "text", "intent", "confidence", "state_before", "state_after", "action", "detail")
    readonly_fields = fields
    ordering = ("id",)


@admin.register(AssistantDialog)
class AssistantDialogAdmin(ReadOnlyAdmin):
    list_display = ("conversation", "state", "handoff_reason_display", "problem", "language", "updated_at")
    list_filter = ("state", "handoff_reason", "problem", "language")
    search_fields = ("=conversation__ticket__id", "conversation__ticket__order__order_no")
    list_select_related = ("conversation__ticket",)
    inlines = [AssistantStepInline]

    @admin.display(description=_("hand-off reason"), ordering="handoff_reason")
    def handoff_reason_display(self, obj: AssistantDialog) -> str:
        return obj.handoff_reason_label


@admin.register(AssistantStep)
class AssistantStepAdmin(ReadOnlyAdmin):
    list_display = ("dialog", "created_at", "action", "intent", "state_before", "state_after")
    list_filter = ("action", "intent")
    search_fields = ("=dialog__conversation__ticket__id", "text")
    list_select_related = ("dialog__conversation__ticket",)


# --- Calls (issue #10): the signalling state and outcome of each attempt; read-only ------------------------


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = (
        "conversation",
        "media",
        "state",
        "outcome",
        "caller",
        "callee",
        "created_at",
        "answered_at",
        "ended_at",
    )
    list_filter = ("media", "state", "outcome")
    search_fields = ("=conversation__ticket__id", "caller__username", "callee__username")
    list_select_related = ("conversation__ticket", "caller", "callee")
