"""What the call partials show when the page loads (live changes come over the socket)."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.auth.models import User

from messaging import calls
from messaging.models import Conversation

register = template.Library()


@register.simple_tag
def ringing_call(conversation: Conversation, user: User) -> dict[str, Any] | None:
    """The call that rings for `user` in this conversation now, as in a `call.incoming` frame."""
    call = calls.ringing_for(conversation_id=conversation.pk, user=user)
    return calls.call_payload(call) if call is not None else None


@register.simple_tag
def queued_call_requests() -> list[dict[str, Any]]:
    return [calls.call_payload(call) for call in calls.queued_requests()]
