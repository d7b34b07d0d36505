"""What a page needs to show a live chat: history, permissions and the client's strings."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from messaging.models import MESSAGE_MAX_LENGTH, Conversation
from messaging.selectors import recent_messages


def chat_labels() -> dict[str, str]:
    """Strings the chat script shows, in the page's language."""
    return {
        "sending": _("Sending"),
        "sent": _("Sent"),
        "failed": _("Not sent"),
        "retry": _("Retry"),
        "empty": _("The message is empty."),
        "too_long": _("The message is too long (at most %(max)d characters).") % {"max": MESSAGE_MAX_LENGTH},
    }


def chat_context(*, conversation: Conversation, can_send: bool) -> dict[str, Any]:
    return {
        "conversation": conversation,
        "can_send": can_send,
        "chat_messages": recent_messages(conversation_id=conversation.pk),
        "chat_labels": chat_labels(),
    }
