"""The personal data access log: who opened whose ticket, attachment or payout account, and when.

Entries are only ever added (AccessLogEntry is append-only: read-only in the admin, and a PostgreSQL
trigger refuses UPDATE and DELETE). Managers read it in the admin.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

from tickets.models import AccessAction, AccessLogEntry


def record_access(
    *,
    actor: User | AnonymousUser | None,
    action: AccessAction,
    ticket_id: int | None = None,
    target: str = "",
) -> AccessLogEntry:
    """Append one entry; `actor` None is the system (a Celery task paying out)."""
    known = actor if isinstance(actor, User) else None
    return AccessLogEntry.objects.create(
        actor=known,
        actor_name=known.get_username() if known else "system",
        action=action,
        ticket_id=ticket_id,
        target=target[:64],
    )


def is_staff_reader(user: User | AnonymousUser, *, buyer_id: int) -> bool:
    """Whether reading a ticket of `buyer_id` is a staff access to log (the buyer reading their own is not)."""
    return bool(user.is_authenticated and user.pk != buyer_id)
