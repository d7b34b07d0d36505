"""The outbox against a real broker that is really down: a state change commits while the private redis-server is
stopped; once it is back and a real Celery worker runs, every notification (chat system message and its socket
frame, email, signed webhook) arrives exactly once, even with the beat re-dispatch run twice.

The machine's shared Redis is never touched: the test starts its own redis-server (tests/stack.py), and this
process's Celery producer is pointed at it for the duration of the test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from messaging.models import Message, MessageKind
from refundchat.celery import app as celery_app
from tests import factories
from tests.chat_client import ChatClient, log_in
from tests.factories import PASSWORD
from tests.faults.mailbox import BACKEND, MAIL_DIR_VARIABLE, sent_mail
from tests.stack import LiveStack, running_stack
from tickets import outbox, services, workflow
from tickets.models import OutboxKind, OutboxMessage, OutboxStatus, RefundTicket
from tickets.workflow import TransitionInput

# Sorted with the browser tests (tests/conftest.py runs `e2e` last): they start real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SETTLE_TIMEOUT = 30.0


class WebhookReceiver:
    """A local HTTP endpoint that records every POST (headers and JSON body) and answers 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(body), "raw": body}
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/refundchat"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def producer_on(broker_url: str) -> Iterator[None]:
    """This process's Celery sends real messages to `broker_url` (the test settings run tasks eagerly)."""
    names = ("broker_url", "task_always_eager")
    saved = {name: celery_app.conf[name] for name in names}

    def reset_pools() -> None:
        # The connection and producer pools are made on first use for the broker of that moment (and kept in
        # kombu's global registry): close and forget them all, so the next send connects afresh.
        kombu.pools.reset()
        # Private attributes of Celery (5.x): the cached pools of the app and of its AMQP helper.
        setattr(celery_app, "_pool", None)  # noqa: B010
        setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010

    celery_app.conf.update(broker_url=broker_url, task_always_eager=False)
    reset_pools()
    try:
        yield
    finally:
        reset_pools()
        celery_app.conf.update(saved)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = SETTLE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.1)


@contextmanager
def socket_in_background(client: ChatClient) -> Iterator[ChatClient]:
    """The client's socket runs in a thread with its own event loop while the test body stays synchronous."""
    stop, ready = threading.Event(), threading.Event()

    async def run() -> None:
        client.start()
        try:
            await asyncio.wait_for(client.caught_up.wait(), timeout=10)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await client.close()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="buyer-socket")
    thread.start()
    try:
        assert ready.wait(timeout=15), "the buyer's socket did not subscribe"
        yield client
    finally:
        stop.set()
        thread.join(timeout=15)


@pytest.fixture
def stack_and_mail(transactional_db: None, tmp_path: Path) -> Iterator[tuple[LiveStack, Path]]:
    """Daphne and a Celery worker on the test database with their own redis-server; the worker consumes the queue
    this process's Celery sends to."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    extra = {
        "DJANGO_EMAIL_BACKEND": BACKEND,
        MAIL_DIR_VARIABLE: str(mail_dir),
        "REFUNDCHAT_CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }
    with running_stack(tmp_path, own_redis=True, extra_env=extra) as stack:
        yield stack, mail_dir


def test_state_change_with_the_broker_stopped_notifies_exactly_once_when_it_is_back(
    stack_and_mail: tuple[LiveStack, Path], caplog: pytest.LogCaptureFixture
) -> None:
    stack, mail_dir = stack_and_mail
    redis = stack.redis
    assert redis is not None
    buyer = factories.with_server_password(factories.buyer(username="alice", email="alice@example.com"))
    agent = factories.agent(username="agent")
    order = factories.order_with_items(buyer=buyer, items=[(12900, 1)])
    # Opened in this process with eager tasks: its own notifications are sent before the test begins.
    ticket: RefundTicket = factories.open_ticket(order=order, kind="return_and_refund")
    services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    conversation = ticket.conversation.pk
    before = set(OutboxMessage.objects.values_list("pk", flat=True))
    assert not OutboxMessage.objects.filter(status=OutboxStatus.PENDING).exists()
    cookie = log_in(stack.url, buyer.username, PASSWORD)
    system_messages = Message.objects.filter(conversation_id=conversation, kind=MessageKind.SYSTEM)
    system_before = system_messages.count()

    client = ChatClient(base_url=stack.url, cookie=cookie, conversations=[conversation], name="buyer")
    with (
        WebhookReceiver() as receiver,
        override_settings(REFUNDCHAT_WEBHOOK_URL=receiver.url),
        socket_in_background(client),
    ):
        held_before = len(client.messages.get(conversation, {}))

        # The broker goes down: the worker stops first (so nothing is consumed), then redis-server.
        stack["worker"].stop()
        redis.stop()
        assert not redis.ping()

        # The commit succeeds; queueing the deliveries fails, and is only logged.
        with producer_on(redis.url), caplog.at_level(logging.WARNING, logger="refundchat.celery"):
            workflow.do_transition(
                ticket_id=ticket.pk, name="require_return", user=agent, given=TransitionInput(amount_cents=12900)
            )
        ticket.refresh_from_db()
        assert ticket.status == "return_required"
        assert "not queued; its beat task will pick the work up" in caplog.text
        new = OutboxMessage.objects.exclude(pk__in=before)
        assert sorted(new.values_list("kind", "status")) == [
            (OutboxKind.CHAT, OutboxStatus.PENDING),
            (OutboxKind.EMAIL, OutboxStatus.PENDING),
            (OutboxKind.WEBHOOK, OutboxStatus.PENDING),
        ]
        assert system_messages.count() == system_before
        assert sent_mail(mail_dir) == []
        assert receiver.received == []

        # The broker and the worker come back; nothing was queued, so still nothing arrives…
        redis.start()
        stack["worker"].start()
        stack.wait_until_healthy()
        time.sleep(2)
        assert new.filter(status=OutboxStatus.PENDING).count() == 3
        assert system_messages.count() == system_before

        # …until the beat re-dispatch runs, here twice in a row (as two beat runs, or a beat run racing a slow
        # worker, would): every message is queued twice and must still be delivered once.
        later = timezone.now() + outbox.FIRST_REDISPATCH_AFTER + timedelta(seconds=1)
        with producer_on(redis.url):
            assert [outbox.dispatch_due(now=later), outbox.dispatch_due(now=later)] == [3, 3]
        wait_for(lambda: not new.filter(status=OutboxStatus.PENDING).exists(), "the worker delivers them")
        wait_for(
            lambda: len(client.messages.get(conversation, {})) > held_before,
            "the system message frame reaches the buyer's socket",
        )
        time.sleep(2)  # a second delivery (the duplicate tasks) would show up now

        # A later beat run finds nothing left to send.
        with producer_on(redis.url):
            assert outbox.dispatch_due(now=timezone.now() + timedelta(hours=1)) == 0
        time.sleep(1)

    new = OutboxMessage.objects.exclude(pk__in=before)
    assert sorted(new.values_list("kind", "status", "attempts")) == [
        (OutboxKind.CHAT, OutboxStatus.SENT, 1),
        (OutboxKind.EMAIL, OutboxStatus.SENT, 1),
        (OutboxKind.WEBHOOK, OutboxStatus.SENT, 1),
    ]
    # The chat: one system message, keyed by the outbox message, and one frame of it on the buyer's socket.
    chat = new.get(kind=OutboxKind.CHAT)
    added = list(system_messages.order_by("seq")[system_before:])
    assert [m.client_id for m in added] == [chat.idempotency_key]
    held = client.messages[conversation]
    assert held[added[0].seq]["body"] == added[0].body
    assert client.stats.duplicates == []
    # The worker did get every message twice (the two beat runs) and sent each once: three deliveries that sent,
    # three that found the message sent already.
    since_restart = stack["worker"].log_path.read_text(errors="replace").rsplit("=== start #2", 1)[1]
    results = re.findall(
        r"tickets\.tasks\.deliver_outbox_message\[[^\]]+\] succeeded in \S+: (True|False)", since_restart
    )
    assert sorted(results) == ["False", "False", "False", "True", "True", "True"], since_restart[-3000:]
    # The email: once, to the buyer.
    mails = sent_mail(mail_dir)
    assert len(mails) == 1, mails
    assert "To: alice@example.com" in mails[0]
    # The webhook: once, signed, with the outbox message's idempotency key.
    assert len(receiver.received) == 1, receiver.received
    hook = receiver.received[0]
    webhook = new.get(kind=OutboxKind.WEBHOOK)
    assert hook["headers"]["idempotency-key"] == str(webhook.idempotency_key)
    signature = outbox.webhook_signature(
        secret=settings.REFUNDCHAT_WEBHOOK_SECRET, timestamp=hook["headers"]["x-refundchat-timestamp"], body=hook["raw"]
    )
    assert hook["headers"]["x-refundchat-signature"] == f"sha256={signature}"
    assert (hook["body"]["event"], hook["body"]["ticket"], hook["body"]["status"]) == (
        "ticket.status_changed",
        ticket.number,
        "return_required",
    )
