"""Presence: derived from live sockets, changes announced once, stale sockets swept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging import presence, realtime
from messaging.models import Presence, SocketSession
from messaging.presence import PresenceRejected

pytestmark = pytest.mark.django_db


def announcements(published, user_id):
    """(group, status) of every presence frame published about `user_id`."""
    return [
        (group, frame["status"])
        for group, frame in published
        if frame["type"] == "presence" and frame["user_id"] == user_id
    ]


def test_first_socket_announces_online_to_conversations_own_sockets_and_consoles(
    claimed_ticket, django_capture_on_commit_callbacks, published
):
    ticket, agent = claimed_ticket
    with django_capture_on_commit_callbacks(execute=True):
        presence.do_open_socket(user=agent, channel_name="c1")
        presence.do_open_socket(user=agent, channel_name="c2")  # a second tab: no news

    assert announcements(published, agent.pk) == [
        (realtime.conversation_group(ticket.conversation.pk), "online"),
        (realtime.user_group(agent.pk), "online"),
        (realtime.QUEUE_GROUP, "online"),
    ]


def test_buyer_presence_is_not_sent_to_the_consoles(claimed_ticket, django_capture_on_commit_callbacks, published):
    ticket, _agent = claimed_ticket
    with django_capture_on_commit_callbacks(execute=True):
        presence.do_open_socket(user=ticket.buyer, channel_name="b1")
    assert announcements(published, ticket.buyer.pk) == [
        (realtime.conversation_group(ticket.conversation.pk), "online"),
        (realtime.user_group(ticket.buyer.pk), "online"),
    ]


def test_offline_only_when_the_last_socket_closes(claimed_ticket, django_capture_on_commit_callbacks, published):
    _ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="c1")
    presence.do_open_socket(user=agent, channel_name="c2")
    with django_capture_on_commit_callbacks(execute=True):
        presence.do_close_socket(channel_name="c1")
        assert Presence.objects.get(user=agent).status == "online"
        presence.do_close_socket(channel_name="c2")
        presence.do_close_socket(channel_name="c2")  # closing twice is harmless

    record = Presence.objects.get(user=agent)
    assert record.status == "offline"
    assert record.last_seen_at is not None
    assert [status for _group, status in announcements(published, agent.pk)] == ["offline"] * 3
    offline = next(frame for _group, frame in published if frame["type"] == "presence")
    assert offline["last_seen_at"] == record.last_seen_at.isoformat()


def test_agent_chooses_away_and_stays_away_across_reconnects(claimed_ticket):
    _ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="c1")
    presence.do_set_chosen_status(user=agent, status="away")
    assert Presence.objects.get(user=agent).status == "away"
    presence.do_close_socket(channel_name="c1")
    assert Presence.objects.get(user=agent).status == "offline"
    presence.do_open_socket(user=agent, channel_name="c2")
    assert Presence.objects.get(user=agent).status == "away"


@pytest.mark.parametrize("status", ["offline", "busy", None, 3])
def test_only_online_or_away_can_be_chosen(claimed_ticket, status):
    _ticket, agent = claimed_ticket
    with pytest.raises(PresenceRejected) as refused:
        presence.do_set_chosen_status(user=agent, status=status)
    assert refused.value.code == "bad_status"
    assert not Presence.objects.filter(user=agent).exclude(chosen_status="online").exists()


def test_sweep_forgets_sockets_of_a_dead_process(claimed_ticket, django_capture_on_commit_callbacks, published):
    _ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="dead")
    long_ago = timezone.now() - timedelta(minutes=10)
    SocketSession.objects.filter(channel_name="dead").update(seen_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert presence.sweep_stale_sockets() == 1
    record = Presence.objects.get(user=agent)
    assert record.status == "offline"
    assert {status for _group, status in announcements(published, agent.pk)} == {"offline"}


def test_heartbeat_of_a_swept_socket_brings_it_back(claimed_ticket):
    _ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="c1")
    SocketSession.objects.all().delete()
    presence.do_heartbeat(user=agent, channel_name="c1")
    assert SocketSession.objects.filter(channel_name="c1").exists()
    assert Presence.objects.get(user=agent).status == "online"


def test_presence_frames_for_someone_never_seen_say_offline(claimed_ticket):
    ticket, agent = claimed_ticket
    presence.do_open_socket(user=agent, channel_name="c1")
    frames = presence.presence_frames(user_ids=[ticket.buyer.pk, agent.pk])
    assert [(f["user_id"], f["status"]) for f in frames] == [(ticket.buyer.pk, "offline"), (agent.pk, "online")]
