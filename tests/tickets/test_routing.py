"""Routing: online agents under capacity, least loaded first, ties round-robin, handover when offline."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.models import Presence, PresenceStatus
from tests import factories
from tests.concurrency import run_concurrently
from tickets import routing, services
from tickets.models import AgentProfile, RefundTicket, TicketEvent, TicketEventKind


def online(user: Any, status: str = PresenceStatus.ONLINE) -> Any:
    Presence.objects.update_or_create(user=user, defaults={"status": status, "chosen_status": "online"})
    return user


def unassigned_ticket() -> RefundTicket:
    order = factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    RefundTicket.objects.filter(pk=ticket.pk).update(assigned_agent=None)
    return ticket


@pytest.mark.django_db
def test_least_loaded_online_agent_gets_the_ticket_and_ties_go_round_robin():
    wei, li = online(factories.agent(username="wei")), online(factories.agent(username="li"))
    factories.agent(username="away_agent")  # offline: never chosen
    first = [routing.auto_assign(ticket_id=unassigned_ticket().pk) for _ in range(4)]
    # Equal loads alternate; nobody gets two before the other has one.
    assert [agent.username for agent in first] == ["wei", "li", "wei", "li"]
    # Li finishes a ticket: the next one goes to the less loaded Li.
    done = RefundTicket.objects.filter(assigned_agent=li).first()
    RefundTicket.objects.filter(pk=done.pk).update(status="refunded")
    assert routing.auto_assign(ticket_id=unassigned_ticket().pk) == li
    event = TicketEvent.objects.filter(kind=TicketEventKind.ASSIGNED).latest("id")
    assert (event.actor, event.data["how"]) == (None, "auto")
    assert wei != li


@pytest.mark.django_db
def test_nobody_with_room_leaves_the_ticket_queued_until_someone_has_room():
    wei = online(factories.agent(username="wei"))
    AgentProfile.objects.create(user=wei, max_open_tickets=1)
    routing.auto_assign(ticket_id=unassigned_ticket().pk)
    waiting = unassigned_ticket()
    assert routing.auto_assign(ticket_id=waiting.pk) is None
    online(factories.agent(username="li"))
    assert routing.assign_waiting() == 1
    waiting.refresh_from_db()
    assert waiting.assigned_agent.username == "li"


@pytest.mark.django_db
def test_offline_agent_hands_unanswered_tickets_to_an_online_one():
    wei, li = online(factories.agent(username="wei")), factories.agent(username="li")
    unanswered, answered = unassigned_ticket(), unassigned_ticket()
    routing.auto_assign(ticket_id=unanswered.pk)
    routing.auto_assign(ticket_id=answered.pk)
    RefundTicket.objects.filter(pk=answered.pk).update(first_responded_at=answered.created_at)
    online(li)
    online(wei, PresenceStatus.OFFLINE)
    assert routing.release_tickets_of(agent_id=wei.pk) == 1
    unanswered.refresh_from_db()
    answered.refresh_from_db()
    assert unanswered.assigned_agent == li  # handed over
    assert answered.assigned_agent == wei  # a conversation in progress stays with its agent
    how = list(
        TicketEvent.objects.filter(ticket=unanswered, kind=TicketEventKind.ASSIGNED).values_list("data__how", flat=True)
    )
    assert how[-2:] == ["offline", "auto"]


@pytest.mark.django_db
def test_agent_back_within_the_grace_period_keeps_the_tickets():
    wei = online(factories.agent(username="wei"))
    ticket = unassigned_ticket()
    routing.auto_assign(ticket_id=ticket.pk)
    assert routing.release_tickets_of(agent_id=wei.pk) == 0
    ticket.refresh_from_db()
    assert ticket.assigned_agent == wei


@pytest.mark.django_db
def test_transfer_and_unassign_are_recorded_with_the_note():
    wei, li = factories.agent(username="wei"), factories.agent(username="li")
    ticket = unassigned_ticket()
    services.claim_ticket(ticket_id=ticket.pk, agent=wei)
    services.transfer_ticket(ticket_id=ticket.pk, by=wei, to_agent_id=li.pk, note="买家要英文服务")
    ticket.refresh_from_db()
    assert ticket.assigned_agent == li
    event = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.ASSIGNED).latest("id")
    assert (event.actor, event.reason, event.data["how"], event.visible_to_buyer) == (
        wei,
        "买家要英文服务",
        "transfer",
        False,
    )
    with pytest.raises(services.TicketError):
        services.transfer_ticket(ticket_id=ticket.pk, by=li, to_agent_id=factories.buyer().pk)
    services.unassign_ticket(ticket_id=ticket.pk, by=li)
    ticket.refresh_from_db()
    assert ticket.assigned_agent is None


@pytest.mark.django_db(transaction=True)
def test_tickets_arriving_at_once_never_push_an_agent_past_capacity():
    wei = online(factories.agent(username="wei"))
    AgentProfile.objects.create(user=wei, max_open_tickets=2)
    tickets = [unassigned_ticket() for _ in range(5)]

    results = run_concurrently([lambda t=t: routing.auto_assign(ticket_id=t.pk) for t in tickets])

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(r == wei for r in results) == 2
    assert RefundTicket.objects.filter(assigned_agent=wei).count() == 2


@pytest.mark.django_db
def test_agent_gone_for_less_than_the_grace_period_keeps_the_tickets():
    from django.utils import timezone

    wei = online(factories.agent(username="wei"))
    ticket = unassigned_ticket()
    routing.auto_assign(ticket_id=ticket.pk)
    Presence.objects.filter(user=wei).update(status=PresenceStatus.OFFLINE, last_seen_at=timezone.now())
    assert routing.release_tickets_of(agent_id=wei.pk) == 0  # a page reload, not a departure
    ticket.refresh_from_db()
    assert ticket.assigned_agent == wei
