"""Voice and video calls in two real Chromium contexts (buyer on a phone, agent on a desktop), with fake camera
and microphone (`--use-fake-device-for-media-stream --use-fake-ui-for-media-stream`, tests/e2e/conftest.py):
host ICE candidates on the loopback, no STUN or TURN."""

from __future__ import annotations

import os
import re
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import Call, Message, MessageKind, Presence
from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, new_page, wait_until
from tests.stack import LiveStack, running_stack
from tickets import services as ticket_services
from tickets.models import TicketEvent, TicketEventKind

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RING_SECONDS = 6
GRACE_SECONDS = 3


@pytest.fixture
def call_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    """The live stack with a short ring and grace period, so that "missed" and a lost socket take seconds."""
    env = {"REFUNDCHAT_CALL_RING_SECONDS": str(RING_SECONDS), "REFUNDCHAT_CALL_GRACE_SECONDS": str(GRACE_SECONDS)}
    with running_stack(tmp_path, extra_env=env) as stack:
        yield stack


def claimed_ticket() -> tuple[Any, Any, Any]:
    alice = factories.buyer(username="alice", first_name="Alice")
    wei = factories.agent(username="wei", first_name="Wei")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=wei)
    return ticket, alice, wei


def open_both(browser: Any, stack: LiveStack, ticket: Any) -> tuple[Any, Any]:
    """The agent's console page (desktop) and the buyer's ticket page (phone), the agent online."""
    agent = new_page(browser, stack, "wei", DESKTOP)
    agent.goto(f"{stack.url}/console/tickets/{ticket.pk}/")
    buyer = new_page(browser, stack, "alice", MOBILE)
    buyer.goto(f"{stack.url}/refunds/{ticket.pk}/")
    expect(buyer.get_by_test_id("calls")).to_have_attribute("data-agent-status", "online")
    return agent, buyer


def peer_state(page: Any) -> str | None:
    return page.evaluate("() => { const pc = window.RefundChat.call.peer(); return pc ? pc.connectionState : null; }")


INBOUND = """async () => {
  const pc = window.RefundChat.call.peer();
  const out = {audio: 0, video: 0, audio_packets: 0, video_packets: 0, frames: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    out[s.kind] += s.bytesReceived || 0;
    out[s.kind + "_packets"] += s.packetsReceived || 0;
    if (s.kind === "video") out.frames += s.framesDecoded || 0;
  });
  return out;
}"""


def inbound(page: Any) -> dict[str, int]:
    return dict(page.evaluate(INBOUND))


def call_messages(ticket: Any) -> list[str]:
    return list(
        Message.objects.filter(conversation__ticket=ticket, kind=MessageKind.SYSTEM, body__contains="通话")
        .order_by("seq")
        .values_list("body", flat=True)
    )


def test_video_call_connects_media_flows_mute_and_hang_up(call_stack, browser, screenshot):
    ticket, alice, wei = claimed_ticket()
    agent, buyer = open_both(browser, call_stack, ticket)

    agent.get_by_test_id("call-video").click()
    banner = buyer.get_by_test_id("call-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Wei")
    expect(banner).to_contain_text("视频")
    expect(agent.get_by_test_id("call-status")).to_have_text("正在呼叫…")
    screenshot(buyer, "call-incoming-mobile")
    screenshot(agent, "call-calling-desktop")

    buyer.get_by_test_id("call-accept").click()
    expect(banner).to_be_hidden()
    wait_until(buyer, lambda: peer_state(buyer) == "connected" and peer_state(agent) == "connected", "both connected")

    # Media flows both ways: inbound audio and video packets arrive, and keep arriving, on each side.
    wait_until(
        buyer,
        lambda: all(inbound(page)[kind] > 0 for page in (buyer, agent) for kind in ("audio", "video")),
        "inbound audio and video on both sides",
    )
    first = {"buyer": inbound(buyer), "agent": inbound(agent)}
    buyer.wait_for_timeout(1500)
    second = {"buyer": inbound(buyer), "agent": inbound(agent)}
    for side in ("buyer", "agent"):
        for kind in ("audio", "video"):
            assert second[side][kind] > first[side][kind] > 0, (side, kind, first, second)
            assert second[side][f"{kind}_packets"] > first[side][f"{kind}_packets"], (side, kind)
        assert second[side]["frames"] > 0
    expect(buyer.get_by_test_id("call-timer")).to_be_visible()
    # The quality indicator comes from getStats after a couple of samples.
    expect(agent.get_by_test_id("call-quality")).to_be_visible(timeout=8000)
    expect(agent.get_by_test_id("call-quality")).to_have_attribute("data-level", "good")
    # Audio goes first on the wire: the encoding parameters are set on both senders.
    encodings = agent.evaluate(
        """() => Object.fromEntries(window.RefundChat.call.peer().getSenders().filter((s) => s.track)
             .map((s) => [s.track.kind, s.getParameters()]))"""
    )
    assert encodings["audio"]["encodings"][0]["maxBitrate"] == 64000
    assert encodings["audio"]["encodings"][0]["networkPriority"] == "high"
    assert encodings["video"]["encodings"][0]["maxBitrate"] == 1200000
    assert encodings["video"]["degradationPreference"] == "maintain-framerate"

    # Mute: the buyer's microphone track is off, and the button says so.
    buyer.get_by_test_id("call-mute").click()
    expect(buyer.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "true")
    mic_on = "() => window.RefundChat.call.peer().getSenders().find((s) => s.track?.kind === 'audio').track.enabled"
    assert buyer.evaluate(mic_on) is False
    buyer.get_by_test_id("call-camera").click()
    expect(buyer.get_by_test_id("call-camera")).to_have_attribute("aria-pressed", "true")
    buyer.get_by_test_id("call-camera").click()
    expect(agent.get_by_test_id("call-timer")).to_have_text(re.compile(r"^0:0[2-9]$"), timeout=8000)
    screenshot(buyer, "call-in-call-mobile")
    screenshot(agent, "call-in-call-desktop")

    buyer.get_by_test_id("call-hangup").click()
    expect(buyer.get_by_test_id("call-view")).to_be_hidden()
    expect(agent.get_by_test_id("call-view")).to_be_hidden()
    expect(agent.get_by_test_id("call-notice")).to_contain_text("通话已结束")

    call = Call.objects.get()
    assert (call.state, call.outcome, call.ended_by_id, call.media) == ("ended", "ended", alice.pk, "video")
    assert call.duration_seconds >= 2
    events = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.CALL).order_by("pk")
    assert [e.data["outcome"] for e in events] == ["started", "answered", "ended"]
    assert events.last().data["ended_by_role"] == "buyer"
    assert events.last().data["duration"] == call.duration_seconds
    # Both chats show the call with its duration, live.
    duration = f"{call.duration_seconds // 60}:{call.duration_seconds % 60:02d}"
    assert call_messages(ticket) == [f"视频通话已结束，时长 {duration}"]
    for page in (agent, buyer):
        expect(page.get_by_test_id("message").filter(has_text="视频通话已结束")).to_contain_text(duration)
    assert wei.pk == call.caller_id


def test_decline_then_missed(call_stack, browser, screenshot):
    ticket, alice, wei = claimed_ticket()
    agent, buyer = open_both(browser, call_stack, ticket)

    # The buyer calls (voice); the agent sees the banner on the desktop and declines.
    buyer.get_by_test_id("call-voice").click()
    banner = agent.get_by_test_id("call-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Alice")
    expect(agent.get_by_test_id("call-accept-voice")).to_be_hidden()
    screenshot(agent, "call-incoming-desktop")
    expect(buyer.get_by_test_id("call-view")).to_be_visible()
    expect(buyer.get_by_test_id("call-view")).to_have_attribute("data-media", "voice")
    agent.get_by_test_id("call-decline").click()
    expect(banner).to_be_hidden()
    expect(buyer.get_by_test_id("call-view")).to_be_hidden()
    expect(buyer.get_by_test_id("call-notice")).to_have_text("对方拒绝了通话。")
    declined = Call.objects.get()
    assert (declined.outcome, declined.ended_by_id, declined.media) == ("declined", wei.pk, "voice")
    for page in (agent, buyer):
        expect(page.get_by_test_id("message").filter(has_text="语音通话已被拒接")).to_be_visible()

    # Again, and nobody answers: after the ring time it is a missed call on both sides.
    buyer.get_by_test_id("call-video").click()
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden(timeout=(RING_SECONDS + 10) * 1000)
    expect(buyer.get_by_test_id("call-view")).to_be_hidden()
    expect(buyer.get_by_test_id("call-notice")).to_contain_text("无人接听")
    missed = Call.objects.exclude(pk=declined.pk).get()
    assert (missed.outcome, missed.end_reason, missed.ended_by_id) == ("missed", "timeout", None)
    outcomes = [
        e.data["outcome"] for e in TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.CALL).order_by("pk")
    ]
    assert outcomes == ["started", "declined", "started", "missed"]
    for page in (agent, buyer):
        expect(page.get_by_test_id("message").filter(has_text="未接视频通话")).to_be_visible()
    assert alice.pk == missed.caller_id


DENY_CAMERA = """(() => {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => (constraints && constraints.video)
    ? Promise.reject(new DOMException("Permission denied", "NotAllowedError"))
    : window.__denyMicrophone
      ? Promise.reject(new DOMException("Requested device not found", "NotFoundError"))
      : real(constraints);
})();"""


def test_denied_camera_falls_back_to_voice_then_no_microphone_to_chat(call_stack, browser, screenshot):
    ticket, _alice, _wei = claimed_ticket()
    agent, buyer = open_both(browser, call_stack, ticket)
    buyer.context.add_init_script(DENY_CAMERA)
    buyer.reload()
    expect(buyer.get_by_test_id("calls")).to_have_attribute("data-agent-status", "online")

    buyer.get_by_test_id("call-video").click()
    expect(buyer.get_by_test_id("call-notice")).to_contain_text("摄像头")
    expect(agent.get_by_test_id("call-banner")).to_be_visible()
    call = Call.objects.get()
    assert call.media == "voice"  # the video call became a voice call
    agent.get_by_test_id("call-accept").click()
    wait_until(
        buyer, lambda: peer_state(buyer) == "connected" and peer_state(agent) == "connected", "voice call connected"
    )
    expect(buyer.get_by_test_id("call-view")).to_have_attribute("data-media", "voice")
    screenshot(buyer, "call-camera-denied-mobile")
    agent.get_by_test_id("call-hangup").click()
    expect(buyer.get_by_test_id("call-view")).to_be_hidden()

    # No microphone either: no call at all, a message that points to the chat.
    buyer.evaluate("() => { window.__denyMicrophone = true; }")
    buyer.get_by_test_id("call-voice").click()
    expect(buyer.get_by_test_id("call-notice")).to_contain_text("麦克风")
    expect(buyer.get_by_test_id("call-notice")).to_contain_text("聊天")
    assert Call.objects.count() == 1

    # An agent who goes offline cannot be called: the buttons say so.
    agent.context.close()
    expect(buyer.get_by_test_id("calls")).to_have_attribute("data-agent-status", "offline", timeout=10000)
    expect(buyer.get_by_test_id("call-voice")).to_be_disabled()
    # The page answers with the Permissions-Policy that lets only this origin use camera and microphone.
    response = buyer.request.get(f"{call_stack.url}/refunds/{ticket.pk}/")
    assert response.headers["permissions-policy"].startswith("camera=(self), microphone=(self)")


def test_buyer_call_on_unassigned_ticket_reaches_the_queue(call_stack, browser):
    alice = factories.buyer(username="alice", first_name="Alice")
    wei = factories.agent(username="wei", first_name="Wei")
    # Away: routing hands no ticket to them, so the ticket stays in the queue; they still watch it.
    Presence.objects.create(user=wei, chosen_status="away")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    agent = new_page(browser, call_stack, "wei", DESKTOP)
    agent.goto(f"{call_stack.url}/console/?view=unassigned")
    buyer = new_page(browser, call_stack, "alice", MOBILE)
    buyer.goto(f"{call_stack.url}/refunds/{ticket.pk}/")

    buyer.get_by_test_id("call-voice").click()
    expect(buyer.get_by_test_id("call-status")).to_have_text("正在等待客服接听…")
    request = agent.get_by_test_id("call-request")
    expect(request).to_contain_text(ticket.number)
    request.get_by_role("link").click()
    expect(agent.get_by_test_id("call-banner")).to_be_visible()
    agent.get_by_test_id("call-accept").click()
    wait_until(
        agent, lambda: peer_state(buyer) == "connected" and peer_state(agent) == "connected", "queued call connected"
    )
    ticket.refresh_from_db()
    assert ticket.assigned_agent.username == "wei"
    # The buyer closes the tab mid-call: the call ends for the agent too, with the buyer as the one who left.
    buyer.context.close()
    expect(agent.get_by_test_id("call-view")).to_be_hidden(timeout=(GRACE_SECONDS + 10) * 1000)
    call = Call.objects.get()
    assert (call.outcome, call.ended_by_id) == ("ended", alice.pk)
    assert call.end_reason in ("hangup", "connection_lost")


@pytest.mark.skipif(
    not os.environ.get("REFUNDCHAT_CALL_BENCH"), reason="the benchmark runs with REFUNDCHAT_CALL_BENCH=1"
)
def test_bench_accept_to_first_video_frame(call_stack, browser):
    """docs/benchmarks.md: time from the click on "answer" to the first frame of the caller's video shown, 10 calls."""
    ticket, _alice, _wei = claimed_ticket()
    agent, buyer = open_both(browser, call_stack, ticket)
    timings: list[float] = []
    for _ in range(10):
        agent.get_by_test_id("call-video").click()
        expect(buyer.get_by_test_id("call-banner")).to_be_visible()
        buyer.evaluate(
            """() => {
              const video = document.querySelector("[data-call-remote]");
              window.__firstFrame = null;
              document.querySelector("[data-call-accept]").addEventListener("click", () => {
                window.__accepted = performance.now();
              }, {once: true, capture: true});
              const wait = () => video.requestVideoFrameCallback(() => { window.__firstFrame = performance.now(); });
              wait();
            }"""
        )
        buyer.get_by_test_id("call-accept").click()
        wait_until(buyer, lambda: buyer.evaluate("() => window.__firstFrame !== null"), "first video frame")
        timings.append(buyer.evaluate("() => window.__firstFrame - window.__accepted"))
        agent.get_by_test_id("call-hangup").click()
        expect(buyer.get_by_test_id("call-view")).to_be_hidden()
        buyer.wait_for_timeout(300)
    median = statistics.median(timings)
    # The figure goes to docs/benchmarks.md; -s shows it.
    sys.stdout.write(
        f"accept → first inbound video frame, 10 calls: median {median:.0f} ms, "
        f"min {min(timings):.0f}, max {max(timings):.0f}\n"
    )
    assert median < 2000, timings
