"""A protocol-v1 chat client for tests and the load harness (docs/protocol.md).

It logs in through the real login form and keeps the session cookie, then speaks the protocol over the
`websockets` library as the browser's realtime.js + chat.js do: subscribe with the last seq it holds, resubscribe
after every reconnect, resend unacknowledged messages with their original client_id until acknowledged. It keeps
the messages it received keyed by seq and counts every duplicate and every frame that is not the next seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

# The server process is stopping (refundchat/serve.py): reconnect at once, to another one.
CLOSE_SERVICE_RESTART = 1012
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LoginFailed(Exception):
    pass


class Browser:
    """Just enough of a browser for the server-rendered pages: cookies, CSRF tokens, redirects."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def get(self, path: str, timeout: float = 30) -> tuple[int, str, str]:
        """GET `path`; returns (status, final URL, body)."""
        with self.opener.open(self.base_url + path, timeout=timeout) as response:
            return response.status, response.url, response.read().decode()

    def post_form(
        self,
        path: str,
        fields: dict[str, str],
        timeout: float = 60,
        *,
        form_page: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """GET the page (`form_page`, or `path` itself) for its CSRF token, then POST the form to `path`; redirects
        are followed. Returns (status, URL, body)."""
        _status, _url, page = self.get(form_page or path, timeout=timeout)
        match = CSRF_INPUT.search(page)
        token = match.group(1) if match else (self.cookie("csrftoken") or "")
        data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **fields}).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method="POST", headers=headers or {})
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.url or path, error.read().decode(errors="replace")

    def log_in(self, username: str, password: str) -> str:
        """Log in through /accounts/login/; returns the Cookie header (sessionid, csrftoken) for sockets."""
        status, url, _body = self.post_form("/accounts/login/", {"username": username, "password": password})
        if status != 200 or "/accounts/login/" in url or self.cookie("sessionid") is None:
            raise LoginFailed(f"login of {username} failed: HTTP {status} at {url}")
        return self.cookie_header


def log_in(base_url: str, username: str, password: str) -> str:
    """A real login; returns the Cookie header to open sockets with."""
    return Browser(base_url).log_in(username, password)


@dataclass
class Stats:
    duplicates: list[object] = field(default_factory=list)  # seqs (or, without seqs, client_ids) received again
    out_of_order: list[tuple[int, int]] = field(default_factory=list)  # (seq expected, seq received)
    connects: int = 0
    disconnects: int = 0
    resends: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)  # of every socket the server closed
    # (seconds from the close to the next hello) of each reconnect after a 1012 "service restart"
    restart_reconnects: list[float] = field(default_factory=list)


class ChatClient:
    """One socket of one user, subscribed to some conversations, reconnecting until `close()`.

    `messages[conversation][seq]` holds every message frame received; `sent[client_id]` every message this client
    sent, with its seq once acknowledged.
    """

    def __init__(
        self,
        *,
        base_url: str,
        cookie: str,
        conversations: list[int],
        name: str = "client",
        reconnect_min: float = 0.05,
        reconnect_max: float = 1.0,
        resend_after: float = 5.0,
        on_message: Callable[[ChatClient, dict[str, Any], float], None] | None = None,
        on_ack: Callable[[ChatClient, dict[str, Any], float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = self.base_url.replace("http://", "ws://", 1) + "/ws/"
        self.cookie = cookie
        self.name = name
        self.conversations = list(conversations)
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.resend_after = resend_after
        self.on_message = on_message
        self.on_ack = on_ack
        self.messages: dict[int, dict[int, dict[str, Any]]] = {c: {} for c in self.conversations}
        self.last_seq: dict[int, int] = dict.fromkeys(self.conversations, 0)
        # client_id -> {conversation, body, seq, acked, sent_at (monotonic time of the last send, or None)}
        self.sent: dict[str, dict[str, Any]] = {}
        self.unsequenced: set[str] = set()  # client_ids of messages without a seq (baseline server only)
        self.stats = Stats()
        self.user_id: int | None = None
        self.ws: ClientConnection | None = None
        self.subscribed: set[int] = set()
        self.connected = asyncio.Event()
        self.caught_up = asyncio.Event()  # every conversation subscribed on the current socket
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._restarted_at: float | None = None
        self._previous_restart: float | None = None
        self.ticket_updates: list[dict[str, Any]] = []  # ticket.updated frames (refund-state pushes)
        # The X-Upstream header of each handshake: which server process nginx chose (tests/stack.py NginxServer).
        self.upstreams: list[str | None] = []

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=f"chat-{self.name}")
        return self._task

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def ping(self) -> None:
        """An application-level ping, as the browser sends to keep its presence."""
        with contextlib.suppress(ConnectionClosed):
            await self._send({"type": "ping"})

    async def drop(self) -> None:
        """Close the socket abruptly (as a lost network would); the client reconnects by itself."""
        if self.ws is not None:
            self.ws.transport.abort()

    async def _run(self) -> None:
        delay = self.reconnect_min
        while not self._closing:
            self._restarted_at = None
            try:
                await self._connection()
                delay = self.reconnect_min
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as error:
                if isinstance(error, InvalidStatus) and error.response.status_code == 403:
                    raise
            finally:
                self.ws = None
                self.subscribed.clear()
                self.connected.clear()
                self.caught_up.clear()
            if self._closing:
                return
            self.stats.disconnects += 1
            if self._restarted_at is not None:
                continue  # 1012: that server process is stopping, the others are up: at once, as realtime.js does
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.reconnect_max)

    async def _connection(self) -> None:
        origin = self.base_url
        async with connect(
            self.ws_url,
            origin=origin,  # type: ignore[arg-type]
            additional_headers={"Cookie": self.cookie} if self.cookie else None,
            open_timeout=10,
            ping_interval=None,
            max_queue=None,
            compression=None,
        ) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            if hello.get("type") != "hello":
                raise ConnectionError(f"{self.name}: expected hello, got {hello}")
            self.user_id = hello["user_id"]
            self.upstreams.append(ws.response.headers.get("X-Upstream") if ws.response is not None else None)
            if self._previous_restart is not None:
                self.stats.restart_reconnects.append(time.monotonic() - self._previous_restart)
                self._previous_restart = None
            self.ws = ws
            self.stats.connects += 1
            self.connected.set()
            for conversation in self.conversations:
                await self._send(
                    {"type": "subscribe", "conversation": conversation, "last_seq": self.last_seq[conversation]}
                )
            resender = asyncio.create_task(self._resend_loop(ws))
            try:
                async for raw in ws:
                    self._handle(json.loads(raw), time.monotonic())
            finally:
                resender.cancel()
                self.stats.close_codes.append(ws.close_code)
                if ws.close_code == CLOSE_SERVICE_RESTART:
                    self._restarted_at = self._previous_restart = time.monotonic()

    async def _resend_loop(self, ws: ClientConnection) -> None:
        """Resend what is unacknowledged once subscribed, then every `resend_after` seconds while unacknowledged."""
        await self.caught_up.wait()
        await self._resend_unacked(ws, older_than=0)
        while True:
            await asyncio.sleep(self.resend_after / 2)
            await self._resend_unacked(ws, older_than=self.resend_after)

    async def _resend_unacked(self, ws: ClientConnection, *, older_than: float) -> None:
        now = time.monotonic()
        for client_id, entry in list(self.sent.items()):
            if not entry["acked"] and (entry["sent_at"] is None or now - entry["sent_at"] >= older_than):
                if entry["sent_at"] is not None:
                    self.stats.resends += 1
                entry["sent_at"] = time.monotonic()
                await ws.send(self._send_frame(client_id, entry))

    # --- frames --------------------------------------------------------------------

    def _handle(self, frame: dict[str, Any], received_at: float) -> None:
        kind = frame.get("type")
        if kind == "message":
            self._on_message(frame["message"], received_at)
            if self.on_message is not None:
                self.on_message(self, frame["message"], received_at)
        elif kind == "message.ack":
            entry = self.sent.get(frame["client_id"])
            if entry is not None:
                entry["seq"], entry["acked"] = frame["seq"], True
                self._hold_own(frame, entry, received_at)
            if self.on_ack is not None:
                self.on_ack(self, frame, received_at)
        elif kind == "subscribed":
            self.subscribed.add(frame["conversation"])
            if self.subscribed >= set(self.conversations):
                self.caught_up.set()
        elif kind == "error":
            self.stats.errors.append(frame)
        elif kind == "ticket.updated":
            self.ticket_updates.append(frame)

    def _on_message(self, message: dict[str, Any], received_at: float) -> None:
        conversation, seq = message["conversation"], message["seq"]
        if seq is None:  # the benchmark's baseline echo server stores nothing and numbers nothing
            if message["client_id"] in self.unsequenced:
                self.stats.duplicates.append(message["client_id"])
            self.unsequenced.add(message["client_id"])
            return
        held = self.messages.setdefault(conversation, {})
        if seq in held:
            if held[seq].get("from_ack") and not held[seq].get("framed"):
                # A text message of this socket's own, held since its ack; a catch-up after the client's last
                # seq may bring it too (protocol v3 relays no own text back otherwise): not a second copy.
                held[seq]["framed"] = True
                return
            self.stats.duplicates.append(seq)
            return
        expected = self.last_seq.get(conversation, 0) + 1
        if seq != expected:
            self.stats.out_of_order.append((expected, seq))
        held[seq] = {**message, "received_at": received_at, "framed": True}
        self.last_seq[conversation] = max(self.last_seq.get(conversation, 0), seq)
        self._advance(conversation)

    def _hold_own(self, ack: dict[str, Any], entry: dict[str, Any], received_at: float) -> None:
        """The ack of a text message stands for its broadcast on this socket (protocol v3), as in the browser."""
        conversation, seq = entry["conversation"], ack.get("seq")
        held = self.messages.setdefault(conversation, {})
        if seq is None or seq in held:  # the baseline's echo server numbers nothing, and relays back
            return
        held[seq] = {
            "conversation": conversation,
            "seq": seq,
            "client_id": ack["client_id"],
            "sender_id": self.user_id,
            "kind": "text",
            "body": entry["body"],
            "received_at": received_at,
            "from_ack": True,
        }
        self._advance(conversation)

    def _advance(self, conversation: int) -> None:
        """last_seq: the end of the run without a gap, which is what a resubscribe asks to continue after."""
        held = self.messages[conversation]
        while self.last_seq.get(conversation, 0) + 1 in held:
            self.last_seq[conversation] = self.last_seq.get(conversation, 0) + 1

    def _send_frame(self, client_id: str, entry: dict[str, Any]) -> str:
        return json.dumps(
            {
                "type": "message.send",
                "conversation": entry["conversation"],
                "client_id": client_id,
                "body": entry["body"],
            },
            ensure_ascii=False,
        )

    async def _send(self, frame: dict[str, Any]) -> None:
        if self.ws is not None:
            await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def send_message(self, conversation: int, body: str, client_id: str | None = None) -> str:
        """Queue a message and send it now if the socket is up (else once it is subscribed again)."""
        client_id = client_id or str(uuid.uuid4())
        entry: dict[str, Any] = {
            "conversation": conversation,
            "body": body,
            "seq": None,
            "acked": False,
            "sent_at": None,
        }
        self.sent[client_id] = entry
        ws = self.ws
        if ws is not None and self.caught_up.is_set():
            entry["sent_at"] = time.monotonic()
            try:
                await ws.send(self._send_frame(client_id, entry))
            except ConnectionClosed:
                entry["sent_at"] = None  # resent after the reconnect
        return client_id

    # --- checks --------------------------------------------------------------------

    @property
    def unacked(self) -> list[str]:
        return [client_id for client_id, entry in self.sent.items() if not entry["acked"]]

    def seqs(self, conversation: int) -> list[int]:
        return sorted(self.messages.get(conversation, {}))

    def holds_all(self, conversation: int, last_seq: int) -> bool:
        return self.seqs(conversation) == list(range(1, last_seq + 1))
