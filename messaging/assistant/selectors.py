"""Reads for the triage assistant: a ticket's dialog for the console."""

from __future__ import annotations

from messaging.models import AssistantDialog


def dialog_for_ticket(*, ticket_id: int) -> AssistantDialog | None:
    return AssistantDialog.objects.filter(conversation__ticket_id=ticket_id).first()
