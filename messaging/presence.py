"""Who is reachable now: sockets open and close, people choose online or away.

A person is offline when no socket of theirs is live, whatever they chose;
otherwise their chosen status. Only changes are broadcast, after commit, to the
open conversations the person takes part in (and, for staff, to the consoles).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging import realtime, viewers
from messaging.models import Conversation, Presence, PresenceStatus, SocketSession
from refundchat.celery import queue_after_commit
from refundchat.errors import Refused
from tickets.models import OPEN_STATUSES
from tickets.roles import can_handle_tickets, can_use_console

# A live socket refreshes its row at most this often (the browser pings every 30 s).
HEARTBEAT_EVERY_SECONDS = 60
CHOOSABLE = (PresenceStatus.ONLINE, PresenceStatus.AWAY)


class PresenceRejected(Refused):
    pass


def do_open_socket(*, user: User, channel_name: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        presence = _locked_presence(user_id=user.pk)
        SocketSession.objects.update_or_create(channel_name=channel_name, defaults={"user": user, "seen_at": now})
        presence.last_seen_at = now
        _settle(presence=presence, now=now)


def do_close_socket(*, channel_name: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        user_id = SocketSession.objects.filter(channel_name=channel_name).values_list("user_id", flat=True).first()
        if user_id is None:
            return
        presence = _locked_presence(user_id=user_id)
        SocketSession.objects.filter(channel_name=channel_name).delete()
        presence.last_seen_at = now
        _settle(presence=presence, now=now)


def do_heartbeat(*, user: User, channel_name: str) -> None:
    """Keep a socket's row fresh; a row swept while the socket lived comes back."""
    refreshed = SocketSession.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())
    if not refreshed:
        do_open_socket(user=user, channel_name=channel_name)


def check_chosen_status(status: object) -> PresenceStatus:
    if status not in CHOOSABLE:
        raise PresenceRejected("bad_status", _("Choose online or away."))
    return PresenceStatus(str(status))


def do_set_chosen_status(*, user: User, status: object) -> Presence:
    chosen = check_chosen_status(status)
    now = timezone.now()
    with transaction.atomic():
        presence = _locked_presence(user_id=user.pk)
        presence.chosen_status = chosen
        _settle(presence=presence, now=now)
    return presence


def sweep_stale_sockets() -> int:
    """Forget sockets of server processes that died, and the tickets they viewed; returns how many sockets went."""
    now = timezone.now()
    stale = SocketSession.objects.filter(seen_at__lt=now - settings.REFUNDCHAT_SOCKET_STALE_AFTER)
    swept = 0
    for user_id in set(stale.values_list("user_id", flat=True)):
        with transaction.atomic():
            presence = _locked_presence(user_id=user_id)
            mine = stale.filter(user_id=user_id)
            newest = max(mine.values_list("seen_at", flat=True), default=None)
            swept += mine.delete()[0]
            if newest is not None and (presence.last_seen_at is None or newest > presence.last_seen_at):
                presence.last_seen_at = newest
            _settle(presence=presence, now=now)
    # Their sockets viewed tickets too: no ghost stays in another agent's "also here" bar.
    viewers.forget_dead_sockets()
    return swept


def presence_frame(presence: Presence) -> dict[str, Any]:
    return {
        "type": "presence",
        "user_id": presence.user_id,
        "status": presence.status,
        "last_seen_at": presence.last_seen_at.isoformat() if presence.last_seen_at else None,
    }


def presence_frames(*, user_ids: list[int]) -> list[dict[str, Any]]:
    """The announced presence of each person (offline for someone never seen)."""
    known = {p.user_id: p for p in Presence.objects.filter(user_id__in=user_ids)}
    return [presence_frame(known.get(user_id) or Presence(user_id=user_id)) for user_id in user_ids]


def _locked_presence(*, user_id: int) -> Presence:
    presence, _created = Presence.objects.select_for_update().get_or_create(user_id=user_id)
    return presence


def _settle(*, presence: Presence, now: datetime) -> None:
    """Work out the effective status of a locked presence row, save it, announce a change."""
    live = SocketSession.objects.filter(
        user_id=presence.user_id, seen_at__gte=now - settings.REFUNDCHAT_SOCKET_STALE_AFTER
    ).exists()
    effective = presence.chosen_status if live else PresenceStatus.OFFLINE
    changed = effective != presence.status
    presence.status = effective
    presence.save(update_fields=["chosen_status", "status", "last_seen_at"])
    if changed:
        _announce(presence)


def _announce(presence: Presence) -> None:
    frame = presence_frame(presence)
    conversations = Conversation.objects.filter(ticket__status__in=OPEN_STATUSES).filter(
        Q(ticket__buyer_id=presence.user_id) | Q(ticket__assigned_agent_id=presence.user_id)
    )
    for conversation_id in conversations.values_list("pk", flat=True):
        realtime.publish(group=realtime.conversation_group(conversation_id), frame=frame)
    realtime.publish(group=realtime.user_group(presence.user_id), frame=frame)
    if can_use_console(presence.user):
        realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
    if can_handle_tickets(presence.user):
        # An agent arrived (queued tickets may go to them) or left (theirs go back after a grace period).
        if presence.status == PresenceStatus.ONLINE:
            queue_after_commit("tickets.tasks.assign_waiting")
        elif presence.status == PresenceStatus.OFFLINE:
            queue_after_commit(
                "tickets.tasks.release_agent_tickets",
                presence.user_id,
                countdown=settings.REFUNDCHAT_AGENT_OFFLINE_GRACE_SECONDS,
            )
