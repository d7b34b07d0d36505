"""Template access to evidence: the console's gallery and the chat's attachment URLs."""

from __future__ import annotations

from typing import Any

from django import template

from media import selectors
from media.models import Attachment

register = template.Library()


@register.simple_tag(takes_context=True)
def ticket_evidence(context: template.Context, ticket: Any) -> list[Attachment]:
    """The ticket's attachments for the gallery, for the user the page is rendered for."""
    return selectors.ticket_evidence(user=context["request"].user, ticket=ticket)


@register.simple_tag
def attachment_url(attachment: Attachment, variant: str) -> str:
    """The permission-checked URL of a variant, or "" while it does not exist."""
    return selectors.attachment_url(attachment=attachment, variant=variant) or ""


@register.filter
def duration(milliseconds: int | None) -> str:
    """A clip's length as m:ss."""
    if not milliseconds:
        return ""
    seconds = round(milliseconds / 1000)
    return f"{seconds // 60}:{seconds % 60:02d}"
