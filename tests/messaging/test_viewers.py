"""Collision detection: who else has a ticket open, and staff typing, for the staff only (messaging/viewers.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from messaging import consumers, presence, realtime, viewers
from messaging.models import SocketSession, TicketViewer
from tests import factories
from tests.concurrency import run_concurrently
from tests.messaging.test_consumer import communicator, connect, frames_within, receive_until, subscribe
from tickets import services

STAFF_ONLY = {"ticket.viewers", "ticket.typing"}


@pytest.fixture
def case(transactional_db: None) -> dict[str, Any]:
    """alice's ticket, claimed by agent1 (李娜); agent2 (王强) is another agent."""
    alice = factories.buyer(username="alice", first_name="Alice", last_name="")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    agent1 = factories.agent(username="agent1", first_name="李娜", last_name="")
    agent2 = factories.agent(username="agent2", first_name="王强", last_name="")
    services.claim_ticket(ticket_id=ticket.pk, agent=agent1)
    return {"ticket": ticket, "alice": alice, "agent1": agent1, "agent2": agent2}


def viewers_of(ticket_id: int, *people: Any) -> dict[str, Any]:
    return {
        "type": "ticket.viewers",
        "ticket_id": ticket_id,
        "viewers": [{"user_id": person.pk, "name": person.get_full_name()} for person in people],
    }


async def next_staff(ws: Any) -> dict[str, Any]:
    """The next collision or typing frame the socket gets (others, such as presence, are skipped)."""
    while True:
        frame = await ws.receive_json_from(timeout=3)
        if frame["type"] in STAFF_ONLY | {"typing"}:
            return frame


async def staff_frames(ws: Any, seconds: float = 0.3) -> list[dict[str, Any]]:
    """The collision and typing frames a socket gets in the next moment: used to show there are none."""
    return [f for f in await frames_within(ws, seconds) if f["type"] in STAFF_ONLY | {"typing"}]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_agents_see_each_other_arrive_and_leave_and_the_buyer_gets_nothing(case):
    ticket, agent1, agent2 = case["ticket"], case["agent1"], case["agent2"]
    conversation_id = ticket.conversation.pk
    buyer_ws, agent1_ws, agent2_ws = communicator(case["alice"]), communicator(agent1), communicator(agent2)

    async def scenario() -> None:
        for ws in (buyer_ws, agent1_ws, agent2_ws):
            await connect(ws)
        buyer_frames = await subscribe(buyer_ws, conversation_id)
        assert not [f for f in buyer_frames if f["type"] in STAFF_ONLY]

        agent1_subscribe = await subscribe(agent1_ws, conversation_id)
        assert not [f for f in agent1_subscribe if f["type"] in STAFF_ONLY]  # it comes after `subscribed`
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1)

        # agent2 opens the ticket agent1 has open: both learn who is here.
        await subscribe(agent2_ws, conversation_id)
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1, agent2)
        assert await next_staff(agent2_ws) == viewers_of(ticket.pk, agent1, agent2)

        # agent2 closes it: agent1 is alone again; agent2, gone, is not told.
        await agent2_ws.send_json_to({"type": "unsubscribe", "conversation": conversation_id})
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1)
        assert await staff_frames(agent2_ws, 0.2) == []

        # Back, then the tab closes: the socket's goodbye takes agent2 off.
        await subscribe(agent2_ws, conversation_id)
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1, agent2)
        await agent2_ws.disconnect()
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1)

        # The buyer, subscribed all along, never got a viewers frame.
        assert [f for f in await frames_within(buyer_ws, 0.3) if f["type"] in STAFF_ONLY] == []
        for ws in (buyer_ws, agent1_ws):
            await ws.disconnect()

    async_to_sync(scenario)()
    assert not TicketViewer.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_a_second_tab_of_someone_already_here_changes_nothing_for_the_others(case):
    ticket, agent1, agent2 = case["ticket"], case["agent1"], case["agent2"]
    conversation_id = ticket.conversation.pk
    agent1_ws, desk, laptop = communicator(agent1), communicator(agent2), communicator(agent2)

    async def scenario() -> None:
        for ws in (agent1_ws, desk, laptop):
            await connect(ws)
        await subscribe(agent1_ws, conversation_id)
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1)
        await subscribe(desk, conversation_id)
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1, agent2)
        assert await next_staff(desk) == viewers_of(ticket.pk, agent1, agent2)
        # The second tab learns who is here; the others hear nothing (the people did not change).
        await subscribe(laptop, conversation_id)
        assert await next_staff(laptop) == viewers_of(ticket.pk, agent1, agent2)
        assert await staff_frames(agent1_ws) == []
        assert await staff_frames(desk, 0.1) == []
        await laptop.disconnect()
        assert await staff_frames(agent1_ws) == []  # agent2 still has the desk tab open
        await desk.disconnect()
        assert await next_staff(agent1_ws) == viewers_of(ticket.pk, agent1)
        await agent1_ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_staff_typing_reaches_the_other_staff_viewers_only(case, monkeypatch):
    # A slow machine must not let the throttle window close in the middle of the test.
    monkeypatch.setattr(consumers, "TYPING_THROTTLE_SECONDS", 30.0)
    ticket, agent1, agent2 = case["ticket"], case["agent1"], case["agent2"]
    conversation_id = ticket.conversation.pk
    buyer_ws, agent1_ws, agent2_ws = communicator(case["alice"]), communicator(agent1), communicator(agent2)

    def staff_typing(person: Any, draft: str) -> dict[str, Any]:
        return {
            "type": "ticket.typing",
            "ticket_id": ticket.pk,
            "conversation": conversation_id,
            "user_id": person.pk,
            "name": person.get_full_name(),
            "draft": draft,
            "expires_in": 6,
        }

    async def scenario() -> None:
        for ws in (buyer_ws, agent1_ws, agent2_ws):
            await connect(ws)
            await subscribe(ws, conversation_id)
        await frames_within(agent1_ws, 0.3)
        await frames_within(agent2_ws, 0.3)

        # agent2 (not assigned) drafts a reply it cannot send yet: agent1 sees it, the buyer does not.
        await agent2_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "reply"})
        assert await next_staff(agent1_ws) == staff_typing(agent2, "reply")
        # Throttled like typing: more within the window are dropped, whatever is drafted.
        await agent2_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "note"})
        await agent2_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "note"})
        assert await staff_frames(agent1_ws) == []

        # The assigned agent drafting a note: staff only too, never to the buyer.
        await agent1_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "note"})
        assert await next_staff(agent2_ws) == staff_typing(agent2, "reply")  # its own, from the start
        assert await next_staff(agent2_ws) == staff_typing(agent1, "note")

        # The assigned agent's reply is the conversation's ordinary typing frame, which the buyer sees.
        await agent1_ws.send_json_to({"type": "typing", "conversation": conversation_id})
        buyer_sees = await next_staff(buyer_ws)
        assert (buyer_sees["type"], buyer_sees["user_id"]) == ("typing", agent1.pk)

        # Without a draft, someone who may only watch is refused as before; the buyer has no staff typing.
        await agent2_ws.send_json_to({"type": "typing", "conversation": conversation_id})
        assert (await receive_until(agent2_ws, "error"))["code"] == "not_allowed"
        await buyer_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "note"})
        buyer_frames = [await buyer_ws.receive_json_from(timeout=3)]
        while buyer_frames[-1]["type"] != "error":
            buyer_frames.append(await buyer_ws.receive_json_from(timeout=3))
        assert buyer_frames[-1]["code"] == "not_allowed"
        assert not [f for f in buyer_frames if f["type"] in STAFF_ONLY]
        await agent2_ws.send_json_to({"type": "typing", "conversation": conversation_id, "draft": "essay"})
        assert (await receive_until(agent2_ws, "error"))["code"] == "bad_frame"
        assert [f for f in await frames_within(buyer_ws, 0.3) if f["type"] in STAFF_ONLY] == []
        for ws in (buyer_ws, agent1_ws, agent2_ws):
            await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_staff_typing_needs_the_ticket_open(case):
    ticket, agent2 = case["ticket"], case["agent2"]
    ws = communicator(agent2)

    async def scenario() -> None:
        await connect(ws)
        await ws.send_json_to({"type": "typing", "conversation": ticket.conversation.pk, "draft": "note"})
        assert (await receive_until(ws, "error"))["code"] == "not_allowed"
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db
def test_sweep_removes_the_viewers_of_dead_sockets(case, django_capture_on_commit_callbacks, published):
    ticket, agent1, agent2 = case["ticket"], case["agent1"], case["agent2"]
    presence.do_open_socket(user=agent1, channel_name="alive")
    presence.do_open_socket(user=agent2, channel_name="dead")
    viewers.do_start_viewing(user=agent1, channel_name="alive", ticket_id=ticket.pk)
    viewers.do_start_viewing(user=agent2, channel_name="dead", ticket_id=ticket.pk)
    # A row whose socket row is already gone (its process died between the two writes).
    TicketViewer.objects.create(channel_name="orphan", ticket=ticket, user=agent2, since=timezone.now())
    SocketSession.objects.filter(channel_name="dead").update(seen_at=timezone.now() - timedelta(minutes=10))
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert presence.sweep_stale_sockets() == 1

    assert list(TicketViewer.objects.values_list("channel_name", flat=True)) == ["alive"]
    announced = [(group, frame) for group, frame in published if frame["type"] == "ticket.viewers"]
    assert announced == [(realtime.ticket_staff_group(ticket.pk), viewers_of(ticket.pk, agent1))]


@pytest.mark.django_db
def test_heartbeat_brings_back_a_live_socket_swept_during_a_long_pause(
    case, django_capture_on_commit_callbacks, published
):
    ticket, agent1 = case["ticket"], case["agent1"]
    presence.do_open_socket(user=agent1, channel_name="c1")
    viewers.do_start_viewing(user=agent1, channel_name="c1", ticket_id=ticket.pk)
    TicketViewer.objects.all().delete()
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        viewers.do_keep_viewing(user=agent1, channel_name="c1", ticket_ids=[ticket.pk])
        viewers.do_keep_viewing(user=agent1, channel_name="c1", ticket_ids=[ticket.pk])  # already there: no news
    assert list(TicketViewer.objects.values_list("channel_name", "user_id")) == [("c1", agent1.pk)]
    assert [frame for _group, frame in published if frame["type"] == "ticket.viewers"] == [
        viewers_of(ticket.pk, agent1)
    ]


@pytest.mark.django_db(transaction=True)
def test_agents_arriving_at_once_are_all_announced(case, published):
    """The ticket's row lock serialises arrivals: the last announcement lists everyone, whatever the timing."""
    ticket = case["ticket"]
    people = [case["agent1"], case["agent2"]] + [factories.agent(username=f"extra{n}") for n in range(4)]
    published.clear()

    def arrive(index: int) -> Callable[[], Any]:
        return lambda: viewers.do_start_viewing(user=people[index], channel_name=f"c{index}", ticket_id=ticket.pk)

    results = run_concurrently([arrive(i) for i in range(len(people))])

    assert [r for r in results if isinstance(r, Exception)] == []
    announced = [frame for _group, frame in published if frame["type"] == "ticket.viewers"]
    assert len(announced) == len(people)  # each arrival changed who is here, and said so once
    assert sorted(len(frame["viewers"]) for frame in announced) == list(range(1, len(people) + 1))
    everyone = max(announced, key=lambda frame: len(frame["viewers"]))
    assert {v["user_id"] for v in everyone["viewers"]} == {person.pk for person in people}
