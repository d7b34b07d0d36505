"""The photos a timeline event links to (data["photos"]: attachment ids of the same ticket)."""

from __future__ import annotations

from typing import Any

from django import template

from media.models import Attachment

register = template.Library()


@register.simple_tag
def event_photos(event: Any) -> list[Attachment]:
    """The event's photos, in the order they were attached; only attachments of the event's own ticket.

    Who may open them is checked by the attachment view (media.views.attachment_file), not here.
    """
    data = event.data if isinstance(event.data, dict) else {}
    ids = [pk for pk in data.get("photos") or [] if isinstance(pk, int)]
    if not ids:
        return []
    found = {a.pk: a for a in Attachment.objects.filter(ticket_id=event.ticket_id, pk__in=ids)}
    return [found[pk] for pk in ids if pk in found]
