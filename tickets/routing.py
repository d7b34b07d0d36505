"""Who gets a new ticket: online agents under their capacity, least loaded first, ties round-robin.

Routing decisions are serialised by locking the profile rows of the online
agents (always in the same order), then counting their open tickets: two tickets
arriving at once can never both push an agent past their capacity.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from messaging.models import Presence, PresenceStatus
from tickets import services
from tickets.models import OPEN_STATUSES, AgentProfile, RefundTicket, TicketStatus

logger = logging.getLogger(__name__)


def agents() -> QuerySet[User]:
    """Active accounts that may handle tickets (by group or by their own permission)."""
    handle = Permission.objects.get(codename="handle_ticket", content_type__app_label="tickets")
    # Two IN subqueries rather than joins with DISTINCT: the joins walked the groups of every buyer
    # (22 ms of the ticket page with 20,000 buyers, docs/benchmarks.md).
    via_group = User.groups.through.objects.filter(group__permissions=handle).values("user_id")
    via_own = User.user_permissions.through.objects.filter(permission=handle).values("user_id")
    return User.objects.filter(Q(pk__in=via_group) | Q(pk__in=via_own), is_active=True)


def transfer_targets(*, ticket: RefundTicket) -> QuerySet[User]:
    """The agents an open ticket can be handed to: everyone who handles tickets but its current agent."""
    if not ticket.is_open:
        return User.objects.none()
    return agents().exclude(pk=ticket.assigned_agent_id or 0).order_by("username")


def online_agent_ids() -> list[int]:
    online = Presence.objects.filter(status=PresenceStatus.ONLINE).values_list("user_id", flat=True)
    return sorted(agents().filter(pk__in=online).values_list("pk", flat=True))


def open_loads(agent_ids: list[int]) -> dict[int, int]:
    rows = (
        RefundTicket.objects.filter(assigned_agent_id__in=agent_ids, status__in=OPEN_STATUSES)
        .values("assigned_agent_id")
        .annotate(n=Count("pk"))
    )
    loads = dict.fromkeys(agent_ids, 0)
    loads.update({row["assigned_agent_id"]: row["n"] for row in rows})
    return loads


def auto_assign(*, ticket_id: int) -> User | None:
    """Give an open, unassigned ticket to the fairest online agent with room; None leaves it queued."""
    candidate_ids = online_agent_ids()
    for agent_id in candidate_ids:
        AgentProfile.objects.get_or_create(user_id=agent_id)
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
        if not ticket.is_open or ticket.assigned_agent_id is not None:
            return None
        profiles = list(AgentProfile.objects.select_for_update().filter(user_id__in=candidate_ids).order_by("user_id"))
        # Counted after the locks: another routing decision that just committed is seen.
        loads = open_loads([p.user_id for p in profiles])
        with_room = [p for p in profiles if loads[p.user_id] < p.max_open_tickets]
        if not with_room:
            return None
        never = datetime.min.replace(tzinfo=timezone.get_current_timezone())
        chosen = min(with_room, key=lambda p: (loads[p.user_id], p.last_assigned_at or never, p.user_id))
        chosen.last_assigned_at = timezone.now()
        chosen.save(update_fields=["last_assigned_at"])
        agent = User.objects.get(pk=chosen.user_id)
        services.set_assignee(ticket=ticket, agent=agent, actor=None, how="auto")
    return agent


def assign_waiting() -> int:
    """Hand out queued tickets, oldest first, while online agents have room; returns how many."""
    assigned = 0
    waiting = (
        RefundTicket.objects.filter(status__in=OPEN_STATUSES - {TicketStatus.ESCALATED}, assigned_agent__isnull=True)
        # The triage assistant holds these until it hands them off (messaging/assistant).
        .exclude(conversation__assistant_active=True)
        .order_by("created_at")
    )
    for ticket_id in waiting.values_list("pk", flat=True)[:500]:
        if auto_assign(ticket_id=ticket_id) is None:
            break  # nobody has room now
        assigned += 1
    return assigned


def release_tickets_of(*, agent_id: int) -> int:
    """An agent went offline: tickets they have not answered yet go back to the queue and on to others."""
    # Checked here, not only by the task's countdown: a task run early (eager, a retry) must not
    # take tickets from an agent who is only reloading a page.
    gone_since = timezone.now() - timedelta(seconds=settings.REFUNDCHAT_AGENT_OFFLINE_GRACE_SECONDS)
    gone = Presence.objects.filter(user_id=agent_id, status=PresenceStatus.OFFLINE).filter(
        Q(last_seen_at__isnull=True) | Q(last_seen_at__lte=gone_since)
    )
    if not gone.exists():
        return 0  # back online, or not yet gone for the grace period
    released = []
    waiting = RefundTicket.objects.filter(
        assigned_agent_id=agent_id, status__in=OPEN_STATUSES, first_responded_at__isnull=True
    )
    for ticket_id in waiting.values_list("pk", flat=True):
        with transaction.atomic():
            ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
            if ticket.assigned_agent_id == agent_id and ticket.first_responded_at is None:
                services.set_assignee(ticket=ticket, agent=None, actor=None, how="offline")
                released.append(ticket_id)
    for ticket_id in released:
        auto_assign(ticket_id=ticket_id)
    return len(released)
