"""The one WebSocket per browser tab, at `/ws/`. Protocol: docs/protocol.md.

The consumer only parses frames, asks the services and selectors, and forwards
published frames; every rule lives in those modules. Channels hands a consumer
one event at a time, so the per-connection state below needs no locking.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
import uuid
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import trans_real

from messaging import calls, lag_checks, presence, realtime, selectors, send_batches, services, viewers
from messaging.models import Call, Conversation
from refundchat import metrics
from refundchat.errors import Refused
from tickets.models import TicketStatus
from tickets.roles import can_use_console
from tickets.selectors import queue_row

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 3
# Text messages of one socket waiting to be stored at once; past that, the socket reads its next frame only when one
# is (the per-person send rate refuses long before, but a socket must not queue without end).
MAX_SENDS_PENDING = 64
# The close code when the server could not store a message (the database failed): reconnect and resend.
CLOSE_SERVER_ERROR = 1011
MAX_FRAME_BYTES = 64 * 1024
CLOSE_UNAUTHENTICATED = 4401
# A typing frame is relayed at most this often per socket and conversation; clients
# hide the indicator by themselves after TYPING_EXPIRES_SECONDS.
TYPING_THROTTLE_SECONDS = 2.0
TYPING_EXPIRES_SECONDS = 6
# What a typing frame says is being drafted: a chat reply (the default) or an internal note.
TYPING_DRAFTS = ("reply", "note")


class FrameError(Refused):
    """A frame this protocol version cannot take."""


def language_from_scope(scope: dict[str, Any]) -> str:
    cookie = scope.get("cookies", {}).get(settings.LANGUAGE_COOKIE_NAME)
    candidates = [cookie] if cookie else []
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            candidates += [lang for lang, _q in trans_real.parse_accept_lang_header(value.decode("latin-1"))]
    for candidate in candidates:
        try:
            return translation.get_supported_language_variant(candidate)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class RealtimeConsumer(AsyncWebsocketConsumer):
    user: User

    async def connect(self) -> None:
        scope: dict[str, Any] = dict(self.scope)
        self.language = language_from_scope(scope)
        # Once for the connection's life: each connection runs in its own task, and Django keeps the active
        # language in a context variable, so every frame handled here (and every database_sync_to_async call,
        # which copies the context) speaks it. A switch per frame cost about 5 % of a busy event loop.
        translation.activate(self.language)
        await self.accept()
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        # conversation id -> highest seq this socket has been sent
        self.sent_seq: dict[int, int] = {}
        # conversation id -> {client_id: state} of the text messages sent on this socket whose broadcast it has not
        # seen yet: the ack stands for the broadcast here (its other tabs and devices get it), a third of the frames
        # per message. Whichever comes first, the stored result or the broadcast, sends the ack.
        self.own_texts: dict[int, dict[str, OwnText]] = {}
        # The text messages of this socket waiting to be stored (messaging/send_batches.py), each with its ack.
        self.acks_due: set[asyncio.Task[None]] = set()
        # The pings' checks for dropped messages waiting for their shared query (messaging/lag_checks.py).
        self.lag_checks: set[asyncio.Task[None]] = set()
        self.in_queue = False
        # Permissions are read once per connection; a changed role takes effect on reconnect.
        self.is_console_user = await database_sync_to_async(can_use_console)(self.user)
        # Conversations this socket may write in, and when it last relayed typing in each.
        self.writable: set[int] = set()
        self.typing_sent_at: dict[int, float] = {}
        # Staff only: conversation id -> ticket id of the tickets this socket has open (collision detection),
        # and when it last relayed staff-only typing in each.
        self.viewing: dict[int, int] = {}
        self.staff_typing_sent_at: dict[int, float] = {}
        self.groups_joined: set[str] = set()
        # Calls this socket started, answered or resumed, and the other party of each (signals are relayed there).
        self.calls_here: set[int] = set()
        self.call_parties: dict[int, calls.Party] = {}
        await self._join(realtime.user_group(self.user.pk))
        await realtime.call_service(presence.do_open_socket, user=self.user, channel_name=self.channel_name)
        self.last_heartbeat = time.monotonic()
        await self._send_frame({"type": "hello", "protocol": PROTOCOL_VERSION, "user_id": self.user.pk})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first closes stale database connections, through a hop to the database thread, for
        # every event: each relayed frame too. Every database call here goes through database_sync_to_async,
        # which does that itself; the hop cost about a tenth of Daphne's event loop under load (docs/benchmarks.md).
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        for task in (*getattr(self, "acks_due", ()), *getattr(self, "lag_checks", ())):
            task.cancel()  # the messages are stored all the same; no socket left to ack them on
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)
        if hasattr(self, "user"):
            # Not through realtime.call_service: a closing consumer must not leave a send behind it.
            if self.viewing:
                await database_sync_to_async(viewers.do_stop_viewing)(
                    channel_name=self.channel_name, ticket_ids=list(self.viewing.values())
                )
            await database_sync_to_async(presence.do_close_socket)(channel_name=self.channel_name)
            if self.calls_here:  # its calls end unless the party comes back within the grace period
                await database_sync_to_async(calls.do_socket_closed)(channel_name=self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = self._parse(text_data, bytes_data)
            handler = self.HANDLERS.get(frame["type"])
            if handler is None:
                raise FrameError("unknown_type", _("Unknown frame type."))
            await handler(self, frame)
        except Refused as error:
            retry_after = getattr(error, "retry_after", None)
            await self._send_error(error.code, error.message, ref=_ref_of(text_data), retry_after=retry_after)

    # --- client frames ---------------------------------------------------------

    async def on_ping(self, frame: dict[str, Any]) -> None:
        if time.monotonic() - self.last_heartbeat >= presence.HEARTBEAT_EVERY_SECONDS:
            self.last_heartbeat = time.monotonic()
            await realtime.call_service(presence.do_heartbeat, user=self.user, channel_name=self.channel_name)
            if self.viewing:
                await realtime.call_service(
                    viewers.do_keep_viewing,
                    user=self.user,
                    channel_name=self.channel_name,
                    ticket_ids=list(self.viewing.values()),
                )
        if self.sent_seq:
            # The layer may have dropped a conversation's newest frame, and no later frame will show
            # the gap: the browser's regular ping is when this socket checks (messaging/lag_checks.py).
            check = asyncio.ensure_future(self._check_lag(list(self.sent_seq)))
            self.lag_checks.add(check)
            check.add_done_callback(self.lag_checks.discard)
        await self._send_frame({"type": "pong"})

    async def _check_lag(self, conversation_ids: list[int]) -> None:
        try:
            newest = await lag_checks.checks().newest_seqs(conversation_ids)
        except Exception:
            logger.warning("the ping's check for dropped messages failed", exc_info=True)
            return
        behind = [c for c, last_seq in newest.items() if last_seq > self.sent_seq.get(c, last_seq)]
        if behind:
            # Caught up in the consumer's own turn, as an event like any other, never beside a relay.
            await self.channel_layer.send(self.channel_name, {"type": "seq.behind", "conversations": behind})

    async def seq_behind(self, event: dict[str, Any]) -> None:
        for conversation_id in event["conversations"]:
            if conversation_id in self.sent_seq:
                await self._catch_up(conversation_id)

    async def on_subscribe(self, frame: dict[str, Any]) -> None:
        conversation_id = _int_field(frame, "conversation")
        last_seq = _int_field(frame, "last_seq", default=0)
        conversation = await database_sync_to_async(selectors.visible_conversation)(
            user=self.user, conversation_id=conversation_id
        )
        if conversation is None:
            raise FrameError("not_found", _("No such conversation."))
        # Join before reading, so nothing committed in between is missed; the
        # seq bookkeeping drops what arrives twice.
        await self._join(realtime.conversation_group(conversation_id))
        self.sent_seq[conversation_id] = max(last_seq, 0)
        self.own_texts.pop(conversation_id, None)  # the client says what it holds: send all after that
        await self._catch_up(conversation_id)
        if selectors.can_send(user=self.user, ticket=conversation.ticket):
            self.writable.add(conversation_id)
        else:
            self.writable.discard(conversation_id)
        # Where the others have read up to, and whether they are here, as of now.
        for state_frame in await database_sync_to_async(_conversation_state)(conversation):
            await self._send_frame(state_frame)
        await self._send_frame(
            {"type": "subscribed", "conversation": conversation_id, "last_seq": self.sent_seq[conversation_id]}
        )
        if self.is_console_user and conversation.ticket.buyer_id != self.user.pk:
            await self._start_viewing(conversation_id, conversation.ticket_id)

    async def on_unsubscribe(self, frame: dict[str, Any]) -> None:
        conversation_id = _int_field(frame, "conversation")
        self.sent_seq.pop(conversation_id, None)
        self.own_texts.pop(conversation_id, None)
        self.writable.discard(conversation_id)
        group = realtime.conversation_group(conversation_id)
        if group in self.groups_joined:
            self.groups_joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)
        if conversation_id in self.viewing:
            await self._stop_viewing(conversation_id)

    async def on_message_send(self, frame: dict[str, Any]) -> None:
        conversation_id = _int_field(frame, "conversation")
        try:
            client_id = uuid.UUID(str(frame.get("client_id")))
        except ValueError:
            raise FrameError("bad_frame", _("A message needs a client_id (UUID).")) from None
        card = frame.get("card")
        if "attachments" in frame or card is not None:
            await self._wait_for_texts_in_flight()
        if "attachments" in frame:
            raw_ids = frame["attachments"]
            if not isinstance(raw_ids, list) or len(raw_ids) > services.MAX_ATTACHMENTS_PER_MESSAGE:
                raise FrameError("bad_frame", _("“attachments” must be a list of upload ids."))
            try:
                upload_ids = [uuid.UUID(str(raw)) for raw in raw_ids]
            except ValueError:
                raise FrameError("bad_frame", _("“attachments” must be a list of upload ids.")) from None
            posted = await realtime.call_chat_write(
                services.post_message_with_attachments,
                conversation_id=conversation_id,
                sender=self.user,
                body=frame.get("body"),
                client_id=client_id,
                upload_ids=upload_ids,
            )
        elif isinstance(card, dict) and card.get("kind") == "order":
            posted = await realtime.call_chat_write(
                services.share_order_card, conversation_id=conversation_id, sender=self.user, client_id=client_id
            )
        elif isinstance(card, dict) and card.get("kind") == "product":
            posted = await realtime.call_chat_write(
                services.post_product_card,
                conversation_id=conversation_id,
                sender=self.user,
                client_id=client_id,
                title=card.get("title"),
                url=card.get("url"),
                image_url=card.get("image_url", ""),
                price_cents=card.get("price_cents"),
            )
        elif card is not None:
            raise FrameError("bad_frame", _("Unknown card kind."))
        else:
            await self._submit_text(conversation_id, client_id, frame.get("body"), ref=_ref_of_frame(frame))
            return
        await self._send_frame(_ack_frame(posted))

    async def _submit_text(self, conversation_id: int, client_id: uuid.UUID, body: object, *, ref: str | None) -> None:
        """Queue a text message for this process' next batch and go on with the socket's next frame: the ack (or
        the refusal) follows once it is stored. A socket that types fast, or an agent with many chats, is not held
        to one message per batch, and frames to it keep flowing meanwhile. Order holds: the batches keep each
        conversation's messages in the order they were submitted."""
        if len(self.acks_due) >= MAX_SENDS_PENDING:
            await asyncio.wait(self.acks_due, return_when=asyncio.FIRST_COMPLETED)
        stored = send_batches.submit(
            services.TextSend(
                conversation_id=conversation_id,
                sender=self.user,
                body=body,
                client_id=client_id,
                language=self.language,
            )
        )
        key = str(client_id)
        if conversation_id in self.sent_seq:
            self.own_texts.setdefault(conversation_id, {})[key] = OwnText.PENDING
        task = asyncio.ensure_future(self._ack_when_stored(conversation_id, key, stored, ref=ref))
        self.acks_due.add(task)
        task.add_done_callback(self.acks_due.discard)

    async def _ack_when_stored(
        self, conversation_id: int, key: str, stored: asyncio.Future[services.PostedMessage], *, ref: str | None
    ) -> None:
        try:
            posted = await stored
        except Refused as error:
            self.own_texts.get(conversation_id, {}).pop(key, None)  # nothing stored: nothing to hold back
            await self._send_error(error.code, error.message, ref=ref, retry_after=getattr(error, "retry_after", None))
            return
        except Exception:
            # Not stored, and no answer to give: the client reconnects and resends with the same client_id.
            self.own_texts.get(conversation_id, {}).pop(key, None)
            logger.exception("storing a message failed")
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        own = self.own_texts.get(conversation_id, {})  # after the wait: a resubscribe may have started afresh
        if own.get(key) is OwnText.ECHOED:
            del own[key]  # its broadcast came first and sent the ack
            return
        if own.get(key) is OwnText.PENDING and posted.message.seq > self.sent_seq.get(conversation_id, 0):
            own[key] = OwnText.ACKED  # its broadcast is yet to come: it is not relayed here
        else:
            own.pop(key, None)  # a resend of what this socket has relayed already
        await self._send_frame(_ack_frame(posted))

    async def _wait_for_texts_in_flight(self) -> None:
        """Before a message that is stored at once (files, cards): the earlier text messages of this socket first."""
        if self.acks_due:
            await asyncio.gather(*self.acks_due, return_exceptions=True)

    async def on_receipt(self, frame: dict[str, Any]) -> None:
        conversation_id = _int_field(frame, "conversation")
        positions = {name: _int_field(frame, name, default=0) for name in ("delivered_seq", "read_seq")}
        if conversation_id not in self.sent_seq:
            raise FrameError("not_subscribed", _("Subscribe to the conversation first."))
        await realtime.call_chat_write(services.mark_seen, conversation_id=conversation_id, user=self.user, **positions)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        conversation_id = _int_field(frame, "conversation")
        draft = frame.get("draft")
        if draft is not None and draft not in TYPING_DRAFTS:
            raise FrameError("bad_frame", _("“draft” must be “reply” or “note”."))
        if draft == "note" or (draft == "reply" and conversation_id not in self.writable):
            # A note, or a reply someone not assigned is drafting: for the other staff viewers only.
            await self._staff_typing(conversation_id, str(draft))
            return
        if conversation_id not in self.writable:
            raise FrameError("not_allowed", _("You cannot write in this conversation."))
        now = time.monotonic()
        if now - self.typing_sent_at.get(conversation_id, -TYPING_THROTTLE_SECONDS) < TYPING_THROTTLE_SECONDS:
            return
        self.typing_sent_at[conversation_id] = now
        await realtime.publish_ephemeral(
            group=realtime.conversation_group(conversation_id),
            frame={
                "type": "typing",
                "conversation": conversation_id,
                "user_id": self.user.pk,
                "name": self.user.get_full_name() or self.user.get_username(),
                "expires_in": TYPING_EXPIRES_SECONDS,
            },
        )

    async def on_presence_set(self, frame: dict[str, Any]) -> None:
        if not self.is_console_user:
            raise FrameError("not_allowed", _("Only staff set a presence status."))
        await realtime.call_service(presence.do_set_chosen_status, user=self.user, status=frame.get("status"))

    async def on_queue_subscribe(self, frame: dict[str, Any]) -> None:
        if not self.is_console_user:
            raise FrameError("not_allowed", _("You cannot watch the ticket queue."))
        self.in_queue = True
        await self._join(realtime.QUEUE_GROUP)
        await self._send_frame({"type": "queue.subscribed"})

    async def on_lists_subscribe(self, frame: dict[str, Any]) -> None:
        # Anyone may watch the list of their own tickets: the group carries only their tickets' activity.
        await self._join(realtime.activity_group(self.user.pk))
        await self._send_frame({"type": "lists.subscribed"})

    # --- calls (messaging/calls.py; docs/protocol.md#calls) ------------------------------------------------

    async def on_call_start(self, frame: dict[str, Any]) -> None:
        call = await realtime.call_service(
            calls.do_start,
            conversation_id=_int_field(frame, "conversation"),
            caller=self.user,
            media=frame.get("media"),
            channel_name=self.channel_name,
        )
        await self._answer_call_frame(call)

    async def on_call_accept(self, frame: dict[str, Any]) -> None:
        call = await realtime.call_service(
            calls.do_accept, call_id=_int_field(frame, "call"), user=self.user, channel_name=self.channel_name
        )
        await self._answer_call_frame(call)

    async def on_call_decline(self, frame: dict[str, Any]) -> None:
        await realtime.call_service(calls.do_decline, call_id=_int_field(frame, "call"), user=self.user)

    async def on_call_hangup(self, frame: dict[str, Any]) -> None:
        await realtime.call_service(calls.do_hang_up, call_id=_int_field(frame, "call"), user=self.user)

    async def on_call_resume(self, frame: dict[str, Any]) -> None:
        call = await realtime.call_service(
            calls.do_resume, call_id=_int_field(frame, "call"), user=self.user, channel_name=self.channel_name
        )
        await self._answer_call_frame(call)

    async def on_call_signal(self, frame: dict[str, Any]) -> None:
        # The hot path of call set-up: relayed to the other party without a database write, never stored.
        call_id = _int_field(frame, "call")
        signal = calls.check_signal(frame)
        party = self.call_parties.get(call_id)
        if party is None:
            party = await database_sync_to_async(calls.live_party)(call_id=call_id, user=self.user)
            self.call_parties[call_id] = party
        await realtime.publish_ephemeral(
            group=realtime.user_group(party.peer_id),
            frame=calls.signal_frame(party=party, sender=self.user, signal=signal),
        )

    async def _answer_call_frame(self, call: Call) -> None:
        """This socket now carries the call: tell it the state and its ICE servers."""
        self.calls_here.add(call.pk)
        if call.is_live and call.callee_id is not None:
            self.call_parties[call.pk] = calls.party_of(call=call, user=self.user)
        await self._send_frame(await database_sync_to_async(calls.own_frame)(call=call, user=self.user))

    HANDLERS = {
        "call.start": on_call_start,
        "call.accept": on_call_accept,
        "call.decline": on_call_decline,
        "call.hangup": on_call_hangup,
        "call.resume": on_call_resume,
        "call.signal": on_call_signal,
        "ping": on_ping,
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "message.send": on_message_send,
        "receipt": on_receipt,
        "typing": on_typing,
        "presence.set": on_presence_set,
        "queue.subscribe": on_queue_subscribe,
        "lists.subscribe": on_lists_subscribe,
    }

    # --- published frames ------------------------------------------------------

    async def relay_frame(self, event: dict[str, Any]) -> None:
        # The event is shared by every socket of this process (refundchat/channel_layer.py): never change it.
        frame: dict[str, Any] = event["frame"]
        if frame["type"] == "message":
            await self._relay_message(frame)
        elif frame["type"] == "ticket.updated":
            await self._relay_ticket(frame)
        else:
            await self._send_frame(frame)

    async def _relay_message(self, frame: dict[str, Any]) -> None:
        conversation_id = frame["message"]["conversation"]
        sent = self.sent_seq.get(conversation_id)
        if sent is None or frame["message"]["seq"] <= sent:
            return  # not subscribed, or already sent during catch-up
        if frame["message"]["seq"] > sent + 1:
            # The layer lost something in between: fill the gap from the database.
            await self._catch_up(conversation_id)
            return
        self.sent_seq[conversation_id] = frame["message"]["seq"]
        await self._send_message_frame(conversation_id, frame)

    async def _send_message_frame(self, conversation_id: int, frame: dict[str, Any]) -> None:
        """A message frame, unless the message is a text this socket sent: then its ack, if not sent yet."""
        message = frame["message"]
        client_id = message.get("client_id")
        own = self.own_texts.get(conversation_id)
        if own is None or client_id not in own or message.get("sender_id") != self.user.pk:
            await self._send_frame(frame)
        elif own[client_id] is OwnText.ACKED:
            del own[client_id]
        elif own[client_id] is OwnText.PENDING:
            # Stored and broadcast before the batch told its senders: the ack goes now, before any later frame.
            own[client_id] = OwnText.ECHOED
            await self._send_frame(
                {
                    "type": "message.ack",
                    "conversation": conversation_id,
                    "client_id": client_id,
                    "seq": message["seq"],
                    "created_at": message["created_at"],
                    "duplicate": False,
                }
            )

    async def _relay_ticket(self, frame: dict[str, Any]) -> None:
        enriched = {**frame, "status_display": str(TicketStatus(frame["status"]).label)}
        if self.in_queue:
            enriched["queue_row"] = await database_sync_to_async(self._render_queue_row)(frame["ticket_id"])
        await self._send_frame(enriched)

    def _render_queue_row(self, ticket_id: int) -> str:
        with translation.override(self.language):
            ticket = queue_row(ticket_id=ticket_id, user=self.user)
            if ticket is None:
                return ""
            return render_to_string("console/_queue_row.html", {"ticket": ticket, "user": self.user})

    # --- collision detection (messaging/viewers.py) ------------------------------

    async def _start_viewing(self, conversation_id: int, ticket_id: int) -> None:
        # Join first: the frame announcing this socket's arrival goes to the group it is now in.
        await self._join(realtime.ticket_staff_group(ticket_id))
        self.viewing[conversation_id] = ticket_id
        own = await realtime.call_service(
            viewers.do_start_viewing, user=self.user, channel_name=self.channel_name, ticket_id=ticket_id
        )
        if own is not None:
            await self._send_frame(own)

    async def _stop_viewing(self, conversation_id: int) -> None:
        ticket_id = self.viewing.pop(conversation_id)
        self.staff_typing_sent_at.pop(conversation_id, None)
        group = realtime.ticket_staff_group(ticket_id)
        if group in self.groups_joined:
            self.groups_joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)
        await realtime.call_service(viewers.do_stop_viewing, channel_name=self.channel_name, ticket_ids=[ticket_id])

    async def _staff_typing(self, conversation_id: int, draft: str) -> None:
        ticket_id = self.viewing.get(conversation_id)
        if ticket_id is None:
            raise FrameError("not_allowed", _("Only staff viewing the ticket show as typing to each other."))
        now = time.monotonic()
        if now - self.staff_typing_sent_at.get(conversation_id, -TYPING_THROTTLE_SECONDS) < TYPING_THROTTLE_SECONDS:
            return
        self.staff_typing_sent_at[conversation_id] = now
        await realtime.publish_ephemeral(
            group=realtime.ticket_staff_group(ticket_id),
            frame=viewers.typing_frame(
                user=self.user,
                ticket_id=ticket_id,
                conversation_id=conversation_id,
                draft=draft,
                expires_in=TYPING_EXPIRES_SECONDS,
            ),
        )

    # --- helpers ---------------------------------------------------------------

    async def _catch_up(self, conversation_id: int) -> None:
        sent = 0
        while True:
            after = self.sent_seq[conversation_id]
            batch = await database_sync_to_async(_serialized_messages_after)(conversation_id, after)
            for message in batch:
                self.sent_seq[conversation_id] = message["seq"]
                await self._send_message_frame(conversation_id, {"type": "message", "message": message})
            sent += len(batch)
            if len(batch) < selectors.CATCH_UP_BATCH:
                metrics.observe_catch_up(sent)  # catch-up sizes (refundchat/metrics.py)
                return

    async def _join(self, group: str) -> None:
        if group not in self.groups_joined:
            self.groups_joined.add(group)
            await self.channel_layer.group_add(group, self.channel_name)

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        if text_data is None:
            raise FrameError("bad_json", _("Frames must be JSON text."))
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            raise FrameError("frame_too_large", _("The frame is too large."))
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes (tests/security)
            raise FrameError("bad_json", _("The frame is not valid JSON.")) from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise FrameError("bad_frame", _("A frame must be a JSON object with a type."))
        return frame

    async def _send_error(self, code: str, message: str, *, ref: str | None, retry_after: float | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message, "ref": ref}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self._send_frame(frame)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))


class OwnText(enum.Enum):
    """Where a text message sent on a socket stands, between its stored result and its broadcast."""

    PENDING = "pending"  # neither has come
    ACKED = "acked"  # the result came and was acked: the broadcast is not relayed to this socket
    ECHOED = "echoed"  # the broadcast came first and was sent as the ack


def _ack_frame(posted: services.PostedMessage) -> dict[str, Any]:
    message = posted.message
    return {
        "type": "message.ack",
        "conversation": message.conversation_id,
        "client_id": str(message.client_id),
        "seq": message.seq,
        "created_at": message.created_at.isoformat(),
        "duplicate": not posted.created,
    }


def _serialized_messages_after(conversation_id: int, after_seq: int) -> list[dict[str, Any]]:
    return [
        selectors.serialize_message(m)
        for m in selectors.messages_after(conversation_id=conversation_id, after_seq=after_seq)
    ]


def _conversation_state(conversation: Conversation) -> list[dict[str, Any]]:
    """Receipt frames of every participant and presence frames of the buyer and the assigned agent."""
    frames = [services.receipt_frame(p) for p in conversation.participants.order_by("pk")]
    people = [conversation.ticket.buyer_id]
    if conversation.ticket.assigned_agent_id:
        people.append(conversation.ticket.assigned_agent_id)
    return frames + presence.presence_frames(user_ids=people)


def _int_field(frame: dict[str, Any], name: str, default: int | None = None) -> int:
    value = frame.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FrameError("bad_frame", _("Field “%(name)s” must be a whole number.") % {"name": name})
    return value


def _ref_of_frame(frame: dict[str, Any]) -> str | None:
    client_id = frame.get("client_id")
    return client_id[:64] if isinstance(client_id, str) else None


def _ref_of(text_data: str | None) -> str | None:
    """The client_id of the frame an error answers, when it had one, so the client can match it."""
    try:
        frame = json.loads(text_data or "")
    except (ValueError, RecursionError):
        return None
    if isinstance(frame, dict) and isinstance(frame.get("client_id"), str):
        return frame["client_id"][:64]
    return None
