"""The call signalling state machine (messaging/calls.py): every transition, glare, busy, timers on a frozen clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import calls, presence, realtime
from messaging.models import Call, CallState, Message, MessageKind
from messaging.tasks import end_call_if_socket_lost, expire_calls, expire_ringing_call
from tests import factories
from tickets import services as ticket_services
from tickets.models import TicketEvent, TicketEventKind

# Transactional: frames, chat messages and the (eager) timer tasks run on commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

RING = 45
GRACE = 20


@pytest.fixture(autouse=True)
def _timings(settings: Any) -> None:
    settings.REFUNDCHAT_CALL_RING_SECONDS = RING
    settings.REFUNDCHAT_CALL_GRACE_SECONDS = GRACE


@pytest.fixture
def call_setup(claimed_ticket: tuple[Any, Any]) -> tuple[Any, Any, Any]:
    """(ticket, buyer, agent) with the agent online."""
    ticket, agent = claimed_ticket
    # The chat records calls in the ticket's language; these tests read English.
    ticket.language = "en"
    ticket.save(update_fields=["language"])
    presence.do_open_socket(user=agent, channel_name="agent-socket")
    return ticket, ticket.buyer, agent


def call_events(ticket: Any) -> list[str]:
    return [e.data["outcome"] for e in TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.CALL)]


def system_messages(ticket: Any) -> list[str]:
    return list(
        Message.objects.filter(conversation__ticket=ticket, kind=MessageKind.SYSTEM)
        .order_by("seq")
        .values_list("body", flat=True)
    )


def frames_of(published: list[tuple[str, dict[str, Any]]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(group, frame) for group, frame in published if frame["type"] == kind]


def start(ticket: Any, caller: Any, media: str = "video", channel: str = "caller-socket") -> Call:
    return calls.do_start(conversation_id=ticket.conversation.pk, caller=caller, media=media, channel_name=channel)


# --- start ------------------------------------------------------------------------------------------------


def test_buyer_rings_the_assigned_agent(call_setup, published):
    ticket, buyer, agent = call_setup
    published.clear()

    call = start(ticket, buyer)

    call.refresh_from_db()
    assert (call.state, call.caller_id, call.callee_id, call.media) == ("ringing", buyer.pk, agent.pk, "video")
    assert call.caller_channel == "caller-socket"
    assert call.ring_deadline == call.created_at + timedelta(seconds=RING)
    incoming = frames_of(published, "call.incoming")
    assert [group for group, _ in incoming] == [realtime.user_group(agent.pk)]
    assert incoming[0][1]["call"]["caller_id"] == buyer.pk
    assert incoming[0][1]["call"]["expires_in"] in (RING - 1, RING)
    # The ring timer ran at once (eager Celery) and did nothing: the deadline has not come.
    assert call_events(ticket) == ["started"]


def test_agent_rings_the_buyer(call_setup, published):
    ticket, buyer, agent = call_setup
    published.clear()
    call = start(ticket, agent, media="voice")
    assert (call.callee_id, call.media) == (buyer.pk, "voice")
    assert [g for g, _ in frames_of(published, "call.incoming")] == [realtime.user_group(buyer.pk)]


@pytest.mark.parametrize("media", ["", "screen", None, 3])
def test_bad_media_is_refused(call_setup, media):
    ticket, buyer, _agent = call_setup
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, buyer, media=media)
    assert refused.value.code == "bad_media"
    assert not Call.objects.exists()


def test_only_the_buyer_and_the_assigned_agent_call(call_setup):
    ticket, _buyer, _agent = call_setup
    other_agent = factories.agent(username="other-agent")
    other_buyer = factories.buyer(username="mallory")
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, other_agent)
    assert refused.value.code == "not_allowed"
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, other_buyer)
    assert refused.value.code == "not_found"
    assert not Call.objects.exists()


def test_an_offline_agent_cannot_be_called(call_setup):
    ticket, buyer, _agent = call_setup
    presence.do_close_socket(channel_name="agent-socket")
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, buyer)
    assert refused.value.code == "callee_offline"
    assert "offline" in refused.value.message
    assert not Call.objects.exists()
    assert call_events(ticket) == []


def test_second_call_from_the_same_side_is_refused(call_setup):
    ticket, buyer, _agent = call_setup
    start(ticket, buyer)
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, buyer, channel="second-tab")
    assert refused.value.code == "call_in_progress"
    assert Call.objects.count() == 1


def test_one_live_call_per_conversation_is_a_database_constraint(call_setup):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(
            conversation=call.conversation, caller=agent, callee=buyer, media="voice", ring_deadline=timezone.now()
        )


# --- glare and busy -------------------------------------------------------------------------------------


def test_glare_the_later_caller_answers_the_earlier_call(call_setup, published):
    ticket, buyer, agent = call_setup
    first = start(ticket, buyer, channel="buyer-socket")
    published.clear()

    second = start(ticket, agent, media="voice", channel="agent-socket")

    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.state, second.caller_id, second.callee_id) == ("active", buyer.pk, agent.pk)
    assert second.media == "video"  # the call that rang first, as it was offered
    assert second.callee_channel == "agent-socket"
    assert Call.objects.count() == 1
    assert {g for g, _ in frames_of(published, "call.accepted")} == {
        realtime.user_group(buyer.pk),
        realtime.user_group(agent.pk),
    }
    assert call_events(ticket) == ["started", "answered"]


def test_busy_callee_ends_the_new_call_at_once(call_setup, published):
    ticket, buyer, agent = call_setup
    other = factories.open_ticket(
        order=factories.order_with_items(buyer=factories.buyer(username="bob"), items=[(100, 1)])
    )
    ticket_services.claim_ticket(ticket_id=other.pk, agent=agent)
    on_line = start(other, agent, channel="agent-socket")
    calls.do_accept(call_id=on_line.pk, user=other.buyer, channel_name="bob-socket")
    published.clear()

    call = start(ticket, buyer)

    call.refresh_from_db()
    assert (call.state, call.outcome, call.end_reason) == ("ended", "busy", "busy")
    assert call_events(ticket) == ["started", "busy"]
    assert system_messages(ticket)[-1] == f"Video call from {buyer.get_full_name()}: the other side was busy"
    assert [g for g, _ in frames_of(published, "call.ended")] == [
        realtime.user_group(buyer.pk),
        realtime.user_group(agent.pk),
    ]
    assert not frames_of(published, "call.incoming")


def test_caller_already_in_a_call_elsewhere_is_refused(call_setup):
    ticket, _buyer, agent = call_setup
    other = factories.open_ticket(
        order=factories.order_with_items(buyer=factories.buyer(username="bob"), items=[(100, 1)])
    )
    ticket_services.claim_ticket(ticket_id=other.pk, agent=agent)
    start(other, agent)
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, agent)
    assert refused.value.code == "already_in_call"


# --- accept, decline, hang up ---------------------------------------------------------------------------


def test_accept_then_hang_up_records_duration_and_who_hung_up(call_setup, published):
    ticket, buyer, agent = call_setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, agent, channel="agent-socket")
        clock.shift(timedelta(seconds=5))
        accepted = calls.do_accept(call_id=call.pk, user=buyer, channel_name="buyer-socket")
        assert accepted.state == CallState.ACTIVE
        published.clear()
        clock.shift(timedelta(seconds=125))
        calls.do_hang_up(call_id=call.pk, user=buyer)

    call.refresh_from_db()
    assert (call.state, call.outcome, call.end_reason, call.ended_by_id) == ("ended", "ended", "hangup", buyer.pk)
    assert call.duration_seconds == 125
    assert call_events(ticket) == ["started", "answered", "ended"]
    ended = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.CALL).last()
    assert ended is not None
    assert ended.actor_id == buyer.pk
    assert ended.visible_to_buyer
    assert {k: ended.data[k] for k in ("media", "duration", "ended_by", "ended_by_role", "reason")} == {
        "media": "video",
        "duration": 125,
        "ended_by": buyer.pk,
        "ended_by_role": "buyer",
        "reason": "hangup",
    }
    assert system_messages(ticket)[-1] == "Video call ended, duration 2:05"
    frame = frames_of(published, "call.ended")[0][1]
    assert frame["call"]["duration"] == 125
    assert frame["call"]["outcome"] == "ended"
    # The chat's system message went out to the conversation too.
    assert any(f["type"] == "message" and f["message"]["body"].startswith("Video call ended") for _, f in published)


def test_chat_records_the_call_in_the_tickets_language(call_setup):
    ticket, buyer, agent = call_setup
    ticket.language = "zh-hans"
    ticket.save(update_fields=["language"])
    call = start(ticket, buyer, media="voice")
    calls.do_decline(call_id=call.pk, user=agent)
    assert system_messages(ticket)[-1] == f"{buyer.get_full_name()} 的语音通话已被拒接"


def test_accept_by_someone_else_or_after_the_end_is_refused(call_setup):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    with pytest.raises(calls.CallRefused) as refused:
        calls.do_accept(call_id=call.pk, user=buyer, channel_name="x")
    assert refused.value.code == "call_not_found"
    with pytest.raises(calls.CallRefused):
        calls.do_accept(call_id=call.pk, user=factories.agent(username="nosy"), channel_name="x")
    calls.do_decline(call_id=call.pk, user=agent)
    with pytest.raises(calls.CallRefused) as refused:
        calls.do_accept(call_id=call.pk, user=agent, channel_name="x")
    assert refused.value.code == "call_not_found"
    with pytest.raises(calls.CallRefused):
        calls.do_accept(call_id=999_999, user=agent, channel_name="x")


def test_decline(call_setup, published):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    published.clear()
    calls.do_decline(call_id=call.pk, user=agent)
    call.refresh_from_db()
    assert (call.state, call.outcome, call.ended_by_id, call.duration_seconds) == ("ended", "declined", agent.pk, 0)
    assert call_events(ticket) == ["started", "declined"]
    assert system_messages(ticket)[-1] == f"Video call from {buyer.get_full_name()} declined"
    assert {g for g, _ in frames_of(published, "call.ended")} == {
        realtime.user_group(buyer.pk),
        realtime.user_group(agent.pk),
    }
    with pytest.raises(calls.CallRefused):
        calls.do_decline(call_id=call.pk, user=agent)


def test_only_the_callee_declines(call_setup):
    ticket, buyer, _agent = call_setup
    call = start(ticket, buyer)
    with pytest.raises(calls.CallRefused) as refused:
        calls.do_decline(call_id=call.pk, user=buyer)
    assert refused.value.code == "call_not_found"


def test_caller_hanging_up_while_ringing_leaves_a_missed_call(call_setup):
    ticket, buyer, _agent = call_setup
    call = start(ticket, buyer, media="voice")
    calls.do_hang_up(call_id=call.pk, user=buyer)
    call.refresh_from_db()
    assert (call.outcome, call.end_reason) == ("missed", "cancelled")
    assert system_messages(ticket)[-1] == f"Missed voice call from {buyer.get_full_name()}"


def test_callee_hanging_up_while_ringing_declines(call_setup):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    calls.do_hang_up(call_id=call.pk, user=agent)
    call.refresh_from_db()
    assert (call.outcome, call.end_reason) == ("declined", "declined")


def test_hang_up_twice_or_by_a_stranger(call_setup):
    ticket, buyer, _agent = call_setup
    call = start(ticket, buyer)
    with pytest.raises(calls.CallRefused):
        calls.do_hang_up(call_id=call.pk, user=factories.agent(username="stranger"))
    calls.do_hang_up(call_id=call.pk, user=buyer)
    with pytest.raises(calls.CallRefused) as refused:
        calls.do_hang_up(call_id=call.pk, user=buyer)
    assert refused.value.code == "call_not_found"
    assert len(system_messages(ticket)) == len(set(system_messages(ticket)))


def test_closed_ticket_cannot_be_called(call_setup):
    ticket, buyer, _agent = call_setup
    ticket.status = "cancelled"
    ticket.save(update_fields=["status"])
    with pytest.raises(calls.CallRefused) as refused:
        start(ticket, buyer)
    assert refused.value.code == "not_allowed"


# --- the queue ------------------------------------------------------------------------------------------


def test_buyer_calling_an_unassigned_ticket_reaches_the_queue(published):
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    assert ticket.assigned_agent_id is None
    published.clear()

    call = start(ticket, alice)

    assert call.callee_id is None
    incoming = frames_of(published, "call.incoming")
    assert {g for g, _ in incoming} == {realtime.QUEUE_GROUP, realtime.ticket_staff_group(ticket.pk)}
    assert incoming[0][1]["call"]["callee_id"] is None

    agent = factories.agent(username="agent")
    published.clear()
    accepted = calls.do_accept(call_id=call.pk, user=agent, channel_name="agent-socket")

    assert (accepted.state, accepted.callee_id) == ("active", agent.pk)
    ticket.refresh_from_db()
    assert ticket.assigned_agent_id == agent.pk
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.ASSIGNED, data__how="call").exists()
    assert {g for g, _ in frames_of(published, "call.accepted")} >= {
        realtime.QUEUE_GROUP,
        realtime.user_group(alice.pk),
        realtime.user_group(agent.pk),
    }


def test_a_buyer_cannot_take_a_queued_call(published):
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    call = start(ticket, alice)
    with pytest.raises(calls.CallRefused):
        calls.do_accept(call_id=call.pk, user=factories.buyer(username="mallory"), channel_name="x")


def test_queued_call_that_nobody_takes_is_missed_and_leaves_the_queue(published):
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    call = start(ticket, alice)
    published.clear()
    with time_machine.travel(call.ring_deadline + timedelta(seconds=1)):
        assert expire_ringing_call(call.pk) is True
    assert realtime.QUEUE_GROUP in {g for g, _ in frames_of(published, "call.ended")}


# --- timers on a frozen clock ---------------------------------------------------------------------------


def test_ringing_times_out_as_missed_after_45_seconds(call_setup, published):
    ticket, _buyer, agent = call_setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, agent)
        clock.shift(timedelta(seconds=RING - 1))
        assert calls.do_expire_ringing(call_id=call.pk) is False
        assert Call.objects.get(pk=call.pk).state == "ringing"
        clock.shift(timedelta(seconds=1))
        published.clear()
        assert expire_ringing_call(call.pk) is True
        # Idempotent: the task delivered twice, or beat after the task.
        assert calls.do_expire_ringing(call_id=call.pk) is False
        assert expire_calls() == 0

    call.refresh_from_db()
    assert (call.state, call.outcome, call.end_reason, call.ended_by_id) == ("ended", "missed", "timeout", None)
    assert call_events(ticket) == ["started", "missed"]
    assert system_messages(ticket)[-1] == f"Missed video call from {agent.get_full_name()}"
    assert len(frames_of(published, "call.ended")) == 2


def test_an_answered_call_does_not_time_out(call_setup):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    calls.do_accept(call_id=call.pk, user=agent, channel_name="agent-socket")
    with time_machine.travel(call.ring_deadline + timedelta(minutes=5)):
        assert calls.do_expire_ringing(call_id=call.pk) is False
    assert Call.objects.get(pk=call.pk).state == "active"


def test_beat_ends_a_ringing_call_whose_timer_was_never_queued(call_setup, monkeypatch):
    ticket, buyer, _agent = call_setup
    monkeypatch.setattr(calls, "queue_after_commit", lambda *args, **kwargs: None)
    call = start(ticket, buyer)
    assert expire_calls() == 0
    with time_machine.travel(call.ring_deadline + timedelta(seconds=1)):
        assert expire_calls() == 1
    assert Call.objects.get(pk=call.pk).outcome == "missed"


def test_lost_socket_ends_the_call_after_the_grace_period(call_setup, published):
    ticket, buyer, agent = call_setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, buyer, channel="buyer-socket")
        calls.do_accept(call_id=call.pk, user=agent, channel_name="agent-socket")
        clock.shift(timedelta(seconds=30))
        assert calls.do_socket_closed(channel_name="buyer-socket") == [call.pk]
        assert Call.objects.get(pk=call.pk).caller_lost_at == timezone.now()
        clock.shift(timedelta(seconds=GRACE - 1))
        assert end_call_if_socket_lost(call.pk) is False
        clock.shift(timedelta(seconds=1))
        assert end_call_if_socket_lost(call.pk) is True
        assert end_call_if_socket_lost(call.pk) is False

    call.refresh_from_db()
    assert (call.outcome, call.end_reason, call.ended_by_id) == ("ended", "connection_lost", buyer.pk)
    assert call.duration_seconds == 30 + GRACE
    assert call_events(ticket) == ["started", "answered", "ended"]


def test_resume_within_the_grace_period_keeps_the_call(call_setup):
    ticket, buyer, agent = call_setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, buyer, channel="buyer-socket")
        calls.do_accept(call_id=call.pk, user=agent, channel_name="agent-socket")
        calls.do_socket_closed(channel_name="agent-socket")
        clock.shift(timedelta(seconds=5))
        resumed = calls.do_resume(call_id=call.pk, user=agent, channel_name="agent-socket-2")
        assert (resumed.callee_channel, resumed.callee_lost_at) == ("agent-socket-2", None)
        clock.shift(timedelta(seconds=GRACE * 3))
        assert calls.do_end_if_socket_lost(call_id=call.pk) is False
        assert expire_calls() == 0
        assert Call.objects.get(pk=call.pk).state == "active"
    # A closed socket that carried nothing changes nothing.
    assert calls.do_socket_closed(channel_name="never-called") == []
    with pytest.raises(calls.CallRefused):
        calls.do_resume(call_id=call.pk, user=factories.buyer(username="mallory"), channel_name="x")


def test_ringing_call_whose_caller_left_ends_as_missed(call_setup):
    ticket, buyer, _agent = call_setup
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, buyer, channel="buyer-socket")
        calls.do_socket_closed(channel_name="buyer-socket")
        clock.shift(timedelta(seconds=GRACE))
        assert calls.do_end_if_socket_lost(call_id=call.pk) is True
    call.refresh_from_db()
    assert (call.outcome, call.end_reason) == ("missed", "connection_lost")


def test_beat_treats_a_socket_of_a_dead_process_as_lost(call_setup, monkeypatch):
    ticket, buyer, agent = call_setup
    monkeypatch.setattr(calls, "queue_after_commit", lambda *args, **kwargs: None)
    presence.do_open_socket(user=buyer, channel_name="buyer-socket")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        call = start(ticket, buyer, channel="buyer-socket")
        calls.do_accept(call_id=call.pk, user=agent, channel_name="agent-socket")
        assert expire_calls() == 0
        assert Call.objects.get(pk=call.pk).caller_lost_at is None
        # The buyer's server process died: its socket row is never refreshed, and is swept.
        clock.shift(timedelta(minutes=3))
        presence.do_heartbeat(user=agent, channel_name="agent-socket")
        assert expire_calls() == 0
        assert Call.objects.get(pk=call.pk).caller_lost_at == timezone.now()
        clock.shift(timedelta(seconds=GRACE))
        assert expire_calls() == 1
    assert Call.objects.get(pk=call.pk).end_reason == "connection_lost"


# --- signalling payloads ----------------------------------------------------------------------------------


SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    "frame",
    [
        {"kind": "offer", "sdp": SDP},
        {"kind": "answer", "sdp": SDP},
        {
            "kind": "candidate",
            "candidate": {
                "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            },
        },
        {"kind": "candidate", "candidate": {"candidate": "", "sdpMid": None, "sdpMLineIndex": None}},
        {"kind": "candidate", "candidate": None},
    ],
)
def test_valid_signals_pass_and_keep_only_their_fields(frame):
    signal = calls.check_signal({"type": "call.signal", "call": 1, "extra": "x" * 100, **frame})
    assert signal == frame


@pytest.mark.parametrize(
    "frame",
    [
        {"kind": "bye"},
        {"kind": "offer"},
        {"kind": "offer", "sdp": "not sdp"},
        {"kind": "offer", "sdp": "v=0" + "a" * calls.MAX_SDP_CHARS},
        {"kind": "answer", "sdp": 12},
        {"kind": "candidate", "candidate": "candidate:1"},
        {"kind": "candidate", "candidate": {"candidate": "x" * 20}},
        {"kind": "candidate", "candidate": {"candidate": "candidate:" + "1" * calls.MAX_CANDIDATE_CHARS}},
        {"kind": "candidate", "candidate": {"candidate": "candidate:1", "sdpMLineIndex": True}},
        {"kind": "candidate", "candidate": {"candidate": "candidate:1", "sdpMid": "m" * 100}},
    ],
)
def test_bad_signals_are_refused(frame):
    with pytest.raises(calls.CallRefused) as refused:
        calls.check_signal(frame)
    assert refused.value.code == "bad_signal"


def test_live_party_is_the_other_side_only(call_setup):
    ticket, buyer, agent = call_setup
    call = start(ticket, buyer)
    assert calls.live_party(call_id=call.pk, user=buyer).peer_id == agent.pk
    assert calls.live_party(call_id=call.pk, user=agent).peer_id == buyer.pk
    with pytest.raises(calls.CallRefused):
        calls.live_party(call_id=call.pk, user=factories.agent(username="nosy"))
    calls.do_hang_up(call_id=call.pk, user=buyer)
    with pytest.raises(calls.CallRefused):
        calls.live_party(call_id=call.pk, user=buyer)


def test_own_frame_carries_ice_servers_with_turn_credentials(call_setup, settings):
    settings.REFUNDCHAT_STUN_URLS = ["stun:stun.example.com:3478"]
    settings.REFUNDCHAT_TURN_URLS = ["turn:turn.example.com:3478?transport=udp"]
    settings.REFUNDCHAT_TURN_SECRET = "s3cret"
    ticket, buyer, _agent = call_setup
    frame = calls.own_frame(call=start(ticket, buyer), user=buyer)
    assert frame["type"] == "call.ringing"
    stun, turn = frame["ice_servers"]
    assert stun == {"urls": ["stun:stun.example.com:3478"]}
    assert turn["username"].endswith(f":{buyer.pk}")
    assert turn["credential"]


# --- over the real socket (messaging/consumers.py) -----------------------------------------------------------


@pytest.mark.usefixtures("flush_channel_layer")
def test_signalling_goes_over_the_socket_to_the_other_party_only(claimed_ticket):
    from asgiref.sync import async_to_sync

    from tests.messaging.test_consumer import communicator, connect, frames_within, receive_until, subscribe

    ticket, agent = claimed_ticket
    conversation_id = ticket.conversation.pk
    onlooker = factories.agent(username="onlooker")
    buyer_ws, agent_ws, onlooker_ws = communicator(ticket.buyer), communicator(agent), communicator(onlooker)

    async def scenario() -> None:
        for ws in (buyer_ws, agent_ws, onlooker_ws):
            await connect(ws)
            await subscribe(ws, conversation_id)
        await buyer_ws.send_json_to(
            {"type": "call.start", "conversation": conversation_id, "media": "video", "client_id": "call:start"}
        )
        ringing = await receive_until(buyer_ws, "call.ringing")
        call_id = ringing["call"]["id"]
        assert ringing["ice_servers"] == []  # no STUN/TURN configured: host candidates
        incoming = await receive_until(agent_ws, "call.incoming")
        assert incoming["call"]["id"] == call_id
        assert incoming["call"]["media"] == "video"

        await agent_ws.send_json_to({"type": "call.accept", "call": call_id})
        own = await receive_until(agent_ws, "call.accepted")
        while "ice_servers" not in own:  # the copy for all the agent's tabs comes first
            own = await receive_until(agent_ws, "call.accepted")
        assert own["call"]["state"] == "active"
        assert (await receive_until(buyer_ws, "call.accepted"))["call"]["callee_id"] == agent.pk

        await buyer_ws.send_json_to({"type": "call.signal", "call": call_id, "kind": "offer", "sdp": SDP})
        relayed = await receive_until(agent_ws, "call.signal")
        assert relayed == {"type": "call.signal", "call": call_id, "from": ticket.buyer.pk, "kind": "offer", "sdp": SDP}
        candidate = {
            "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
        }
        await agent_ws.send_json_to(
            {"type": "call.signal", "call": call_id, "kind": "candidate", "candidate": candidate}
        )
        assert (await receive_until(buyer_ws, "call.signal"))["candidate"] == candidate

        # Bad input is an error frame with a code; the socket stays open.
        await buyer_ws.send_json_to({"type": "call.signal", "call": call_id, "kind": "offer", "sdp": "hello"})
        error = await receive_until(buyer_ws, "error")
        assert error["code"] == "bad_signal"
        await onlooker_ws.send_json_to({"type": "call.signal", "call": call_id, "kind": "offer", "sdp": SDP})
        assert (await receive_until(onlooker_ws, "error"))["code"] == "call_not_found"
        await onlooker_ws.send_json_to({"type": "call.start", "conversation": conversation_id, "media": "voice"})
        assert (await receive_until(onlooker_ws, "error"))["code"] == "not_allowed"
        # Staff who only watch never see the call's signalling.
        assert not [f for f in await frames_within(onlooker_ws, 0.3) if f["type"].startswith("call.")]

        await agent_ws.send_json_to({"type": "call.hangup", "call": call_id})
        for ws in (buyer_ws, agent_ws):
            ended = await receive_until(ws, "call.ended")
            assert ended["call"]["outcome"] == "ended"
            assert ended["call"]["ended_by"] == agent.pk
        for ws in (buyer_ws, agent_ws, onlooker_ws):
            await ws.disconnect()

    presence.do_open_socket(user=agent, channel_name="agent-elsewhere")  # online before the buyer calls
    async_to_sync(scenario)()
    assert call_events(ticket) == ["started", "answered", "ended"]


@pytest.mark.usefixtures("flush_channel_layer")
def test_closing_the_socket_of_a_call_starts_its_grace_period(claimed_ticket):
    from asgiref.sync import async_to_sync

    from tests.messaging.test_consumer import communicator, connect, receive_until

    ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="agent-elsewhere")
    buyer_ws = communicator(ticket.buyer)

    async def scenario() -> None:
        await connect(buyer_ws)
        await buyer_ws.send_json_to({"type": "call.start", "conversation": ticket.conversation.pk, "media": "voice"})
        await receive_until(buyer_ws, "call.ringing")
        await buyer_ws.disconnect()

    async_to_sync(scenario)()
    call = Call.objects.get()
    assert call.state == "ringing"
    assert call.caller_lost_at is not None
    with time_machine.travel(call.caller_lost_at + timedelta(seconds=GRACE)):
        assert end_call_if_socket_lost(call.pk) is True
    assert Call.objects.get().end_reason == "connection_lost"


def test_accepting_a_second_call_while_in_one_is_refused(call_setup, monkeypatch):
    ticket, buyer, agent = call_setup
    other = factories.open_ticket(
        order=factories.order_with_items(buyer=factories.buyer(username="bob"), items=[(100, 1)])
    )
    ticket_services.claim_ticket(ticket_id=other.pk, agent=agent)
    # Both buyers ring the agent at the same moment: neither transaction saw the other's call.
    first = start(ticket, buyer, channel="alice-socket")
    with monkeypatch.context() as race:
        race.setattr(calls, "_in_live_call", lambda *args, **kwargs: False)
        second = start(other, other.buyer, channel="bob-socket")
    calls.do_accept(call_id=first.pk, user=agent, channel_name="agent-socket")
    with pytest.raises(calls.CallRefused) as refused:
        calls.do_accept(call_id=second.pk, user=agent, channel_name="agent-socket")
    assert refused.value.code == "already_in_call"
    assert Call.objects.get(pk=second.pk).state == "ringing"
