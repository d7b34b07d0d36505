"""What a page needs to show a live chat: history, permissions and the client's strings."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from messaging.models import MESSAGE_MAX_LENGTH, Conversation
from messaging.selectors import recent_messages


def chat_labels() -> dict[str, Any]:
    """Strings the chat script shows, in the page's language."""
    return {
        "sending": _("Sending"),
        "sent": _("Sent"),
        "delivered": pgettext("message status", "Delivered"),
        "read": pgettext("message status", "Read"),
        "failed": _("Not sent"),
        "retry": _("Retry"),
        "typing": _("%(name)s is typing…"),
        "online": _("Online"),
        "away": _("Away"),
        "offline": _("Offline"),
        "last_seen": _("last seen %(time)s"),
        "agent": _("Agent"),
        "buyer": _("Buyer"),
        "empty": _("The message is empty."),
        "too_long": _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX_LENGTH},
        "order": _("Order"),
        "paid_total": _("Paid total"),
        "upload": upload_labels(),
    }


def upload_labels() -> dict[str, str]:
    """Strings of the composer's uploads and voice notes (static/js/uploads.js)."""
    return {
        "uploading": _("Uploading %(percent)s"),
        "processing": _("Processing…"),
        "paused": _("Paused"),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "cancel": _("Cancel"),
        "retry": _("Retry"),
        "interrupted": _("Interrupted: choose the same file again to continue where it stopped."),
        "choose_again": _("Choose the file"),
        "not_same_file": _("This is not the same file: choose “%(name)s”."),
        "offline": _("No connection: the upload goes on when the network is back."),
        "failed": _("The file could not be sent."),
        "too_short": _("Hold the button down to record a voice note."),
        "no_microphone": _("The microphone is not available."),
        "voice_note": _("Voice note"),
        "document": _("Document"),
        "download": _("Download original"),
    }


def chat_context(*, conversation: Conversation, viewer: User, can_send: bool) -> dict[str, Any]:
    return {
        "conversation": conversation,
        "can_send": can_send,
        # Participants report delivered/read positions; staff who only look in do not.
        "is_participant": conversation.participants.filter(user=viewer).exists(),
        "chat_messages": recent_messages(conversation_id=conversation.pk),
        "chat_labels": chat_labels(),
    }
