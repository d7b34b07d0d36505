"""Voice and video calls between a ticket's buyer and its assigned agent (issue #10, docs/protocol.md).

The browsers talk WebRTC to each other; the server only keeps the call's signalling state (a `Call` row)
and relays offers, answers and ICE candidates between the two parties' sockets without storing them.

States: ringing → active → ended, or ringing → ended.

    start            ringing   (the callee is busy elsewhere: ended at once, outcome "busy")
    accept           ringing → active     (by the callee; a queued request: by any agent, who claims the ticket)
    decline          ringing → ended "declined"
    hang-up          ringing → ended "missed" (the caller gave up) / "declined" (the callee refused)
                     active  → ended "ended"
    ring timeout     ringing → ended "missed"        (REFUNDCHAT_CALL_RING_SECONDS)
    socket lost      ringing/active → ended          (after REFUNDCHAT_CALL_GRACE_SECONDS without a resume)

Glare (both press "call" at once): the second start finds the other's call ringing and answers it.

Every transition locks the conversation row, then the call, writes the call and a TicketEvent of kind
"call" in one transaction; the end of an attempt also posts a system message in the chat. Frames go out
through `realtime.publish` after commit; timers are Celery tasks queued on commit, and every timer service
is idempotent and looks at the clock itself (a task that runs early does nothing; `expire_calls` in beat
catches what was never queued).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from messaging import realtime, services
from messaging.models import (
    LIVE_CALL_STATES,
    Call,
    CallMedia,
    CallOutcome,
    CallState,
    Conversation,
    Presence,
    PresenceStatus,
    SocketSession,
)
from messaging.selectors import can_view
from refundchat.celery import queue_after_commit
from refundchat.errors import Refused
from tickets import services as ticket_services
from tickets.models import RefundTicket, TicketEvent, TicketEventKind
from tickets.roles import can_handle_tickets

RING_TIMEOUT_TASK = "messaging.tasks.expire_ringing_call"
SOCKET_LOST_TASK = "messaging.tasks.end_call_if_socket_lost"
# Namespace of the idempotency keys of the chat messages that record calls.
CALL_MESSAGE_NAMESPACE = uuid.UUID("2f7c1f0e-5a0b-4d8e-9d7e-6c1b7b0b3c10")

# Signalling payloads are relayed, never stored; these bound what one frame may carry.
MAX_SDP_CHARS = 16_000
MAX_CANDIDATE_CHARS = 1_000
MAX_MID_CHARS = 64
SIGNAL_KINDS = ("offer", "answer", "candidate")


class CallRefused(Refused):
    """A call request that was not taken; nothing changed."""


@dataclass(frozen=True)
class Party:
    """Who a socket talks to in a call: the other party's user id (frames to them go to their user group)."""

    call_id: int
    peer_id: int


# --- TURN credentials (coturn `use-auth-secret`, the "TURN REST API" scheme) ----------------------------


def turn_credentials(*, user_id: int, secret: str, ttl_seconds: int, now: float | None = None) -> dict[str, str]:
    """A TURN username valid until `now + ttl` and its password: base64(HMAC-SHA1(secret, username)).

    coturn checks the same HMAC with the shared secret and refuses the username after its expiry time."""
    expiry = int((time.time() if now is None else now) + ttl_seconds)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode("ascii")}


def ice_servers(*, user: User) -> list[dict[str, Any]]:
    """The RTCPeerConnection `iceServers` for `user`: STUN, and TURN with fresh credentials when configured."""
    servers: list[dict[str, Any]] = []
    if settings.REFUNDCHAT_STUN_URLS:
        servers.append({"urls": list(settings.REFUNDCHAT_STUN_URLS)})
    if settings.REFUNDCHAT_TURN_URLS and settings.REFUNDCHAT_TURN_SECRET:
        servers.append(
            {
                "urls": list(settings.REFUNDCHAT_TURN_URLS),
                **turn_credentials(
                    user_id=user.pk,
                    secret=settings.REFUNDCHAT_TURN_SECRET,
                    ttl_seconds=settings.REFUNDCHAT_TURN_TTL_SECONDS,
                ),
            }
        )
    return servers


# --- checks -------------------------------------------------------------------------------------------


def check_media(media: object) -> CallMedia:
    if media not in CallMedia.values:
        raise CallRefused("bad_media", _("A call is “voice” or “video”."))
    return CallMedia(str(media))


def check_signal(frame: dict[str, Any]) -> dict[str, Any]:
    """The relayable part of a `call.signal` frame, validated and bounded; anything else is dropped."""
    kind = frame.get("kind")
    if kind not in SIGNAL_KINDS:
        raise CallRefused("bad_signal", _("“kind” must be “offer”, “answer” or “candidate”."))
    if kind in ("offer", "answer"):
        sdp = frame.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP_CHARS:
            raise CallRefused("bad_signal", _("The session description is missing, malformed or too large."))
        return {"kind": kind, "sdp": sdp}
    candidate = frame.get("candidate")
    if candidate is None:  # the end of the candidates
        return {"kind": kind, "candidate": None}
    if not isinstance(candidate, dict):
        raise CallRefused("bad_signal", _("The ICE candidate is malformed or too large."))
    text, mid, index = candidate.get("candidate"), candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
    if (
        not isinstance(text, str)
        or len(text) > MAX_CANDIDATE_CHARS
        or (text and not text.startswith("candidate:"))
        or not (mid is None or (isinstance(mid, str) and len(mid) <= MAX_MID_CHARS))
        or not (index is None or (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 64))
    ):
        raise CallRefused("bad_signal", _("The ICE candidate is malformed or too large."))
    return {"kind": kind, "candidate": {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}}


def _not_found() -> CallRefused:
    return CallRefused("call_not_found", _("This call is over or is not yours."))


def _is_agent_online(user_id: int) -> bool:
    status = Presence.objects.filter(user_id=user_id).values_list("status", flat=True).first()
    return status is not None and status != PresenceStatus.OFFLINE


def _in_live_call(user_id: int, *, exclude_conversation_id: int | None = None) -> bool:
    live = Call.objects.filter(state__in=LIVE_CALL_STATES).filter(Q(caller_id=user_id) | Q(callee_id=user_id))
    if exclude_conversation_id is not None:
        live = live.exclude(conversation_id=exclude_conversation_id)
    return live.exists()


def _talking_or_calling(user_id: int, *, exclude_conversation_id: int) -> bool:
    """In an answered call, or ringing someone, elsewhere (another call merely ringing for them is no obstacle)."""
    return (
        Call.objects.exclude(conversation_id=exclude_conversation_id)
        .filter(
            Q(state=CallState.ACTIVE, caller_id=user_id)
            | Q(state=CallState.ACTIVE, callee_id=user_id)
            | Q(state=CallState.RINGING, caller_id=user_id)
        )
        .exists()
    )


# --- transitions ----------------------------------------------------------------------------------------


def do_start(*, conversation_id: int, caller: User, media: object, channel_name: str) -> Call:
    """`caller` rings the other party of the ticket (the queue, for a buyer whose ticket has no agent yet).

    Returns the ringing call, the other party's ringing call answered (glare), or a call that ended at once
    as busy."""
    chosen = check_media(media)
    now = timezone.now()
    with transaction.atomic():
        conversation = _locked_conversation(conversation_id)
        ticket = conversation.ticket
        if not can_view(user=caller, ticket=ticket):
            raise CallRefused("not_found", _("No such conversation."))
        if caller.pk not in (ticket.buyer_id, ticket.assigned_agent_id):
            raise CallRefused("not_allowed", _("Only the buyer and the ticket's agent can call each other."))
        if not ticket.is_open:
            raise CallRefused("not_allowed", _("This ticket is closed."))
        live = Call.objects.select_for_update().filter(conversation=conversation, state__in=LIVE_CALL_STATES).first()
        if live is not None:
            if live.state == CallState.RINGING and live.caller_id != caller.pk:
                # Glare: both pressed "call"; the later one answers the earlier one's call.
                return _accept_locked(call=live, ticket=ticket, by=caller, channel_name=channel_name, now=now)
            raise CallRefused("call_in_progress", _("A call is already going on in this conversation."))
        if _in_live_call(caller.pk):
            raise CallRefused("already_in_call", _("You are already in a call. Hang up first."))
        callee_id = ticket.buyer_id if caller.pk == ticket.assigned_agent_id else ticket.assigned_agent_id
        if callee_id is not None and callee_id == ticket.assigned_agent_id and not _is_agent_online(callee_id):
            raise CallRefused("callee_offline", _("The agent is offline now. Leave a message and they will answer."))
        call = Call.objects.create(
            conversation=conversation,
            caller=caller,
            callee_id=callee_id,
            media=chosen,
            caller_channel=channel_name,
            created_at=now,
            ring_deadline=now + timedelta(seconds=settings.REFUNDCHAT_CALL_RING_SECONDS),
        )
        _record(call=call, ticket=ticket, outcome="started", actor=caller, visible_to_buyer=False)
        if callee_id is not None and _in_live_call(callee_id, exclude_conversation_id=conversation.pk):
            _end_locked(call=call, ticket=ticket, outcome=CallOutcome.BUSY, reason="busy", by=None, now=now)
            return call
        frame = {"type": "call.incoming", "call": call_payload(call)}
        if callee_id is None:
            # No agent yet: any agent may take it, from the queue or the ticket page.
            realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
            realtime.publish(group=realtime.ticket_staff_group(ticket.pk), frame=frame)
        else:
            realtime.publish(group=realtime.user_group(callee_id), frame=frame)
        queue_after_commit(RING_TIMEOUT_TASK, call.pk, countdown=settings.REFUNDCHAT_CALL_RING_SECONDS + 1)
    return call


def do_accept(*, call_id: int, user: User, channel_name: str) -> Call:
    """The callee answers (on one of their sockets; their other tabs stop ringing)."""
    now = timezone.now()
    with transaction.atomic():
        call, ticket = _locked_call(call_id)
        if call.state != CallState.RINGING:
            raise _not_found()
        if call.callee_id is None:
            if not can_handle_tickets(user) or ticket.assigned_agent_id not in (None, user.pk):
                raise _not_found()
        elif call.callee_id != user.pk:
            raise _not_found()
        if _talking_or_calling(user.pk, exclude_conversation_id=call.conversation_id):
            # Two calls rang at once (neither saw the other busy): one at a time.
            raise CallRefused("already_in_call", _("You are already in a call. Hang up first."))
        return _accept_locked(call=call, ticket=ticket, by=user, channel_name=channel_name, now=now)


def do_decline(*, call_id: int, user: User) -> Call:
    with transaction.atomic():
        call, ticket = _locked_call(call_id)
        if call.state != CallState.RINGING or call.callee_id != user.pk:
            raise _not_found()
        _end_locked(call=call, ticket=ticket, outcome=CallOutcome.DECLINED, reason="declined", by=user)
    return call


def do_hang_up(*, call_id: int, user: User) -> Call:
    """Either party ends the call; a caller hanging up before the answer leaves a missed call."""
    with transaction.atomic():
        call, ticket = _locked_call(call_id)
        if not call.is_live or user.pk not in (call.caller_id, call.callee_id):
            raise _not_found()
        if call.state == CallState.ACTIVE:
            _end_locked(call=call, ticket=ticket, outcome=CallOutcome.ENDED, reason="hangup", by=user)
        elif user.pk == call.caller_id:
            _end_locked(call=call, ticket=ticket, outcome=CallOutcome.MISSED, reason="cancelled", by=user)
        else:
            _end_locked(call=call, ticket=ticket, outcome=CallOutcome.DECLINED, reason="declined", by=user)
    return call


def do_expire_ringing(*, call_id: int) -> bool:
    """Ringing past its deadline: a missed call. Idempotent; does nothing before the deadline."""
    now = timezone.now()
    with transaction.atomic():
        try:
            call, ticket = _locked_call(call_id)
        except CallRefused:
            return False
        if call.state != CallState.RINGING or now < call.ring_deadline:
            return False
        _end_locked(call=call, ticket=ticket, outcome=CallOutcome.MISSED, reason="timeout", by=None, now=now)
    return True


def do_socket_closed(*, channel_name: str) -> list[int]:
    """A socket that carried calls closed: start the grace period of each (ids of the calls concerned)."""
    now = timezone.now()
    touched: list[int] = []
    for side in ("caller", "callee"):
        calls = Call.objects.filter(state__in=LIVE_CALL_STATES, **{f"{side}_channel": channel_name})
        touched += calls.values_list("pk", flat=True)
        calls.update(**{f"{side}_lost_at": now})
    for call_id in touched:
        queue_after_commit(SOCKET_LOST_TASK, call_id, countdown=settings.REFUNDCHAT_CALL_GRACE_SECONDS + 1)
    return touched


def do_resume(*, call_id: int, user: User, channel_name: str) -> Call:
    """A party's new socket (after a reconnect) takes the call's signalling over, ending its grace period."""
    with transaction.atomic():
        call, _ticket = _locked_call(call_id)
        if user.pk not in (call.caller_id, call.callee_id):
            raise _not_found()
        if call.is_live:
            side = "caller" if user.pk == call.caller_id else "callee"
            if side == "callee" and call.state == CallState.RINGING:
                return call  # nothing to take over: the callee's sockets all ring
            setattr(call, f"{side}_channel", channel_name)
            setattr(call, f"{side}_lost_at", None)
            call.save(update_fields=[f"{side}_channel", f"{side}_lost_at"])
    return call


def do_end_if_socket_lost(*, call_id: int) -> bool:
    """End a live call whose party has had no socket for the grace period. Idempotent."""
    now = timezone.now()
    grace = timedelta(seconds=settings.REFUNDCHAT_CALL_GRACE_SECONDS)
    with transaction.atomic():
        try:
            call, ticket = _locked_call(call_id)
        except CallRefused:
            return False
        if not call.is_live:
            return False
        lost = [
            (lost_at, user_id)
            for lost_at, user_id in ((call.caller_lost_at, call.caller_id), (call.callee_lost_at, call.callee_id))
            if lost_at is not None and now >= lost_at + grace
        ]
        if not lost:
            return False
        _lost_at, user_id = min(lost)
        by = User.objects.get(pk=user_id) if user_id is not None else None
        outcome = CallOutcome.ENDED if call.state == CallState.ACTIVE else CallOutcome.MISSED
        _end_locked(call=call, ticket=ticket, outcome=outcome, reason="connection_lost", by=by, now=now)
    return True


def expire_calls() -> int:
    """Beat: end what a timer task should have ended (the task was never queued, a process died)."""
    now = timezone.now()
    ended = 0
    for call_id in Call.objects.filter(state=CallState.RINGING, ring_deadline__lte=now).values_list("pk", flat=True):
        ended += do_expire_ringing(call_id=call_id)
    # A party whose socket is gone without a close (its server process died) loses the call too.
    live_channels = SocketSession.objects.filter(seen_at__gte=now - settings.REFUNDCHAT_SOCKET_STALE_AFTER)
    for side in ("caller", "callee"):
        orphaned = (
            Call.objects.filter(state__in=LIVE_CALL_STATES, **{f"{side}_lost_at__isnull": True})
            .exclude(**{f"{side}_channel": ""})
            .exclude(**{f"{side}_channel__in": live_channels.values("channel_name")})
        )
        orphaned.update(**{f"{side}_lost_at": now})
    grace_over = now - timedelta(seconds=settings.REFUNDCHAT_CALL_GRACE_SECONDS)
    for call_id in (
        Call.objects.filter(state__in=LIVE_CALL_STATES)
        .filter(Q(caller_lost_at__lte=grace_over) | Q(callee_lost_at__lte=grace_over))
        .values_list("pk", flat=True)
    ):
        ended += do_end_if_socket_lost(call_id=call_id)
    return ended


def party_of(*, call: Call, user: User) -> Party:
    peer = call.callee_id if user.pk == call.caller_id else call.caller_id
    assert peer is not None  # an answered call has both parties
    return Party(call_id=call.pk, peer_id=peer)


def live_party(*, call_id: int, user: User) -> Party:
    """The other party of a live call `user` takes part in (for relaying signals), or call_not_found."""
    call = Call.objects.filter(pk=call_id, state__in=LIVE_CALL_STATES).first()
    if call is None or call.callee_id is None or user.pk not in (call.caller_id, call.callee_id):
        raise _not_found()
    return party_of(call=call, user=user)


# --- frames ---------------------------------------------------------------------------------------------


def call_payload(call: Call) -> dict[str, Any]:
    ticket = call.conversation.ticket
    caller = call.caller
    remaining = (call.ring_deadline - timezone.now()).total_seconds()
    return {
        "id": call.pk,
        "conversation": call.conversation_id,
        "ticket_id": ticket.pk,
        "ticket_number": ticket.number,
        "media": call.media,
        "state": call.state,
        "caller_id": call.caller_id,
        "caller_name": caller.get_full_name() or caller.get_username(),
        "callee_id": call.callee_id,
        "expires_in": max(0, int(remaining)) if call.state == CallState.RINGING else 0,
        "outcome": call.outcome,
        "reason": call.end_reason,
        "ended_by": call.ended_by_id,
        "duration": call.duration_seconds if call.state == CallState.ENDED else 0,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
    }


def own_frame(*, call: Call, user: User) -> dict[str, Any]:
    """The answer to the socket that started, accepted or resumed a call: its state and ICE servers."""
    kinds = {CallState.RINGING: "call.ringing", CallState.ACTIVE: "call.accepted", CallState.ENDED: "call.ended"}
    frame: dict[str, Any] = {"type": kinds[CallState(call.state)], "call": call_payload(call)}
    if call.is_live:
        frame["ice_servers"] = ice_servers(user=user)
    return frame


def signal_frame(*, party: Party, sender: User, signal: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call.signal", "call": party.call_id, "from": sender.pk, **signal}


# --- internals ------------------------------------------------------------------------------------------


def _locked_conversation(conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk=conversation_id).first()
    )
    if conversation is None:
        raise CallRefused("not_found", _("No such conversation."))
    # The ticket too: its agent decides who is called, and a claim must not slip in between.
    conversation.ticket = RefundTicket.objects.select_for_update().get(pk=conversation.ticket_id)
    return conversation


def _locked_call(call_id: int) -> tuple[Call, RefundTicket]:
    conversation_id = Call.objects.filter(pk=call_id).values_list("conversation_id", flat=True).first()
    if conversation_id is None:
        raise _not_found()
    conversation = _locked_conversation(conversation_id)
    call = Call.objects.select_for_update().select_related("caller").get(pk=call_id)
    call.conversation = conversation
    return call, conversation.ticket


def _accept_locked(*, call: Call, ticket: RefundTicket, by: User, channel_name: str, now: datetime) -> Call:
    was_queued = call.callee_id is None
    if was_queued and ticket.assigned_agent_id != by.pk:
        if not can_handle_tickets(by):
            raise _not_found()
        # Answering a queued call request claims the ticket: the agent who talks to the buyer handles it.
        ticket_services.set_assignee(ticket=ticket, agent=by, actor=by, how="call")
    call.callee = by
    call.callee_channel = channel_name
    call.state = CallState.ACTIVE
    call.answered_at = now
    call.save(update_fields=["callee", "callee_channel", "state", "answered_at"])
    _record(call=call, ticket=ticket, outcome="answered", actor=by, visible_to_buyer=False)
    frame = {"type": "call.accepted", "call": call_payload(call)}
    realtime.publish(group=realtime.user_group(call.caller_id), frame=frame)
    realtime.publish(group=realtime.user_group(by.pk), frame=frame)
    if was_queued:
        realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
        realtime.publish(group=realtime.ticket_staff_group(ticket.pk), frame=frame)
    return call


def _end_locked(
    *,
    call: Call,
    ticket: RefundTicket,
    outcome: CallOutcome,
    reason: str,
    by: User | None,
    now: datetime | None = None,
) -> None:
    was_queued = call.callee_id is None
    call.state = CallState.ENDED
    call.outcome = outcome
    call.end_reason = reason
    call.ended_by = by
    call.ended_at = now or timezone.now()
    call.save(update_fields=["state", "outcome", "end_reason", "ended_by", "ended_at"])
    _record(call=call, ticket=ticket, outcome=outcome, actor=by, visible_to_buyer=True)
    with translation.override(ticket.language):
        body = _chat_text(call)
    services.post_system_message(
        conversation_id=call.conversation_id, body=body, key=uuid.uuid5(CALL_MESSAGE_NAMESPACE, f"call:{call.pk}")
    )
    frame = {"type": "call.ended", "call": call_payload(call)}
    for user_id in [call.caller_id, call.callee_id]:
        if user_id is not None:
            realtime.publish(group=realtime.user_group(user_id), frame=frame)
    if was_queued:
        realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
        realtime.publish(group=realtime.ticket_staff_group(ticket.pk), frame=frame)


def _record(*, call: Call, ticket: RefundTicket, outcome: str, actor: User | None, visible_to_buyer: bool) -> None:
    ended_by_role = ""
    if call.ended_by_id is not None:
        ended_by_role = "buyer" if call.ended_by_id == ticket.buyer_id else "agent"
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.CALL,
        actor=actor,
        reason=call.end_reason,
        data={
            "call_id": call.pk,
            "outcome": str(outcome),
            "media": call.media,
            "caller_id": call.caller_id,
            "callee_id": call.callee_id,
            "duration": call.duration_seconds if call.state == CallState.ENDED else 0,
            "ended_by": call.ended_by_id,
            "ended_by_role": ended_by_role,
            "reason": call.end_reason,
        },
        visible_to_buyer=visible_to_buyer,
    )


def format_call_duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _chat_text(call: Call) -> str:
    """The chat's record of one attempt, in the ticket's language."""
    name = call.caller.get_full_name() or call.caller.get_username()
    video = call.media == CallMedia.VIDEO
    if call.outcome == CallOutcome.ENDED:
        duration = format_call_duration(call.duration_seconds)
        if video:
            return _("Video call ended, duration %(duration)s") % {"duration": duration}
        return _("Voice call ended, duration %(duration)s") % {"duration": duration}
    if call.outcome == CallOutcome.DECLINED:
        if video:
            return _("Video call from %(name)s declined") % {"name": name}
        return _("Voice call from %(name)s declined") % {"name": name}
    if call.outcome == CallOutcome.BUSY:
        if video:
            return _("Video call from %(name)s: the other side was busy") % {"name": name}
        return _("Voice call from %(name)s: the other side was busy") % {"name": name}
    if video:
        return _("Missed video call from %(name)s") % {"name": name}
    return _("Missed voice call from %(name)s") % {"name": name}


# --- reads for pages --------------------------------------------------------------------------------------


def ringing_for(*, conversation_id: int, user: User) -> Call | None:
    """The call ringing in this conversation that `user` may answer now (shown at once by the page)."""
    call = (
        Call.objects.select_related("caller", "conversation__ticket")
        .filter(conversation_id=conversation_id, state=CallState.RINGING, ring_deadline__gt=timezone.now())
        .first()
    )
    if call is None or call.caller_id == user.pk:
        return None
    if call.callee_id == user.pk:
        return call
    ticket = call.conversation.ticket
    if call.callee_id is None and can_handle_tickets(user) and ticket.assigned_agent_id in (None, user.pk):
        return call
    return None


def queued_requests() -> list[Call]:
    """Buyers' calls ringing in the queue (tickets with no agent yet), oldest first."""
    return list(
        Call.objects.select_related("caller", "conversation__ticket")
        .filter(state=CallState.RINGING, callee__isnull=True, ring_deadline__gt=timezone.now())
        .order_by("created_at")
    )
