"""Collision detection: which staff members have a ticket open right now.

A staff socket that subscribes to a ticket's conversation views the ticket; one row per socket and ticket,
keyed by the socket's channel name like SocketSession, so every server process agrees. When the set of
people viewing a ticket changes, a `ticket.viewers` frame goes to the ticket's staff-only group
(realtime.ticket_staff_group), which the buyer's sockets never join. Rows of sockets that died with their
process are removed by the presence sweep (presence.sweep_stale_sockets calls forget_dead_sockets).

Changes to one ticket's viewers are serialised by locking the ticket's row, so two sockets arriving at once
cannot both announce a list that misses the other.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from messaging import realtime
from messaging.models import SocketSession, TicketViewer
from tickets.models import RefundTicket


def display_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def viewers_frame(*, ticket_id: int) -> dict[str, Any]:
    """`ticket.viewers`: the people viewing the ticket, once each however many tabs they have, first come first."""
    firsts = (
        TicketViewer.objects.filter(ticket_id=ticket_id)
        .values("user_id")
        .annotate(first=Min("since"))
        .order_by("first", "user_id")
    )
    order = [row["user_id"] for row in firsts]
    users = User.objects.in_bulk(order)
    return {
        "type": "ticket.viewers",
        "ticket_id": ticket_id,
        "viewers": [{"user_id": user_id, "name": display_name(users[user_id])} for user_id in order],
    }


def typing_frame(*, user: User, ticket_id: int, conversation_id: int, draft: str, expires_in: int) -> dict[str, Any]:
    """`ticket.typing`: a staff member drafts a note, or a reply they cannot send yet; for the staff group only
    (never the text, never the conversation group the buyer is in)."""
    return {
        "type": "ticket.typing",
        "ticket_id": ticket_id,
        "conversation": conversation_id,
        "user_id": user.pk,
        "name": display_name(user),
        "draft": draft,
        "expires_in": expires_in,
    }


def do_start_viewing(*, user: User, channel_name: str, ticket_id: int) -> dict[str, Any] | None:
    """The socket opened the ticket. Publishes `ticket.viewers` to the staff group when the set of people
    changed; otherwise (another tab of someone already there) returns the frame for this socket alone."""
    with transaction.atomic():
        if not _lock_ticket(ticket_id):
            return None
        before = _viewer_ids(ticket_id)
        TicketViewer.objects.get_or_create(
            ticket_id=ticket_id, channel_name=channel_name, defaults={"user": user, "since": timezone.now()}
        )
        frame = viewers_frame(ticket_id=ticket_id)
        if user.pk in before:
            return frame
        realtime.publish(group=realtime.ticket_staff_group(ticket_id), frame=frame)
    return None


def do_stop_viewing(*, channel_name: str, ticket_ids: list[int]) -> None:
    """The socket closed these tickets (or closed itself): announce each ticket whose set of people shrank."""
    for ticket_id in sorted(set(ticket_ids)):
        with transaction.atomic():
            if not _lock_ticket(ticket_id):
                continue
            before = _viewer_ids(ticket_id)
            TicketViewer.objects.filter(ticket_id=ticket_id, channel_name=channel_name).delete()
            _announce_if_changed(ticket_id=ticket_id, before=before)


def do_keep_viewing(*, user: User, channel_name: str, ticket_ids: list[int]) -> None:
    """A live socket's heartbeat: bring back rows the sweep removed while the socket lived (a long pause)."""
    present = set(
        TicketViewer.objects.filter(channel_name=channel_name, ticket_id__in=ticket_ids).values_list(
            "ticket_id", flat=True
        )
    )
    for ticket_id in sorted(set(ticket_ids) - present):
        do_start_viewing(user=user, channel_name=channel_name, ticket_id=ticket_id)


def forget_dead_sockets() -> int:
    """Remove the rows of sockets that are no longer live (closed without a goodbye, or of a process that
    died) and announce the tickets whose viewers changed; returns how many rows went."""
    live_since = timezone.now() - settings.REFUNDCHAT_SOCKET_STALE_AFTER
    live = SocketSession.objects.filter(seen_at__gte=live_since).values("channel_name")
    dead = TicketViewer.objects.exclude(channel_name__in=live)
    removed = 0
    for ticket_id in sorted(set(dead.values_list("ticket_id", flat=True))):
        with transaction.atomic():
            if not _lock_ticket(ticket_id):
                continue
            before = _viewer_ids(ticket_id)
            removed += dead.filter(ticket_id=ticket_id).delete()[0]
            _announce_if_changed(ticket_id=ticket_id, before=before)
    return removed


def _lock_ticket(ticket_id: int) -> bool:
    return bool(list(RefundTicket.objects.select_for_update().filter(pk=ticket_id).values_list("pk", flat=True)))


def _viewer_ids(ticket_id: int) -> set[int]:
    return set(TicketViewer.objects.filter(ticket_id=ticket_id).values_list("user_id", flat=True))


def _announce_if_changed(*, ticket_id: int, before: set[int]) -> None:
    if _viewer_ids(ticket_id) != before:
        realtime.publish(group=realtime.ticket_staff_group(ticket_id), frame=viewers_frame(ticket_id=ticket_id))
