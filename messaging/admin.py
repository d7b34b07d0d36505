from __future__ import annotations

from django.contrib import admin
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from messaging.models import Conversation, Message, Participant, Presence, SocketSession, TicketViewer
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
