"""The outbox: notifications written with the change, delivered once, surviving a broker outage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from kombu.exceptions import OperationalError

from messaging.models import Message
from tests import factories
from tickets import outbox, tasks, workflow
from tickets.models import OutboxKind, OutboxMessage, OutboxStatus, RefundTicket
from tickets.workflow import TransitionInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(django_capture_on_commit_callbacks) -> RefundTicket:
    alice = factories.buyer(username="alice", email="alice@example.com")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    with django_capture_on_commit_callbacks(execute=True):
        return factories.open_ticket(order=order)


def approve(ticket: RefundTicket) -> None:
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="approve_refund_only",
        user=factories.agent(),
        given=TransitionInput(amount_cents=7900),
    )


def test_ticket_and_state_change_notifications_are_delivered_once(ticket, django_capture_on_commit_callbacks):
    assert list(OutboxMessage.objects.values_list("kind", "status")) == [("chat", "sent"), ("email", "sent")]
    with django_capture_on_commit_callbacks(execute=True):
        approve(ticket)
    assert OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 4
    assert Message.objects.filter(conversation=ticket.conversation, kind="system").count() == 2
    assert [m.subject for m in mail.outbox][1].endswith("已同意（仅退款）")
    # Dispatching again (a beat run, a redelivered task) sends nothing more.
    for message in OutboxMessage.objects.all():
        assert outbox.deliver(message_id=message.pk) is False
    assert outbox.dispatch_due(now=timezone.now() + timedelta(days=1)) == 0
    assert Message.objects.filter(conversation=ticket.conversation, kind="system").count() == 2
    assert len(mail.outbox) == 2


def test_broker_down_at_commit_delays_notifications_but_loses_none(
    ticket, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.deliver_outbox_message, "apply_async", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            approve(ticket)  # the state change commits even though nothing can be queued

    ticket.refresh_from_db()
    assert ticket.status == "approved_refund_only"
    waiting = OutboxMessage.objects.filter(status=OutboxStatus.PENDING)
    assert sorted(waiting.values_list("kind", flat=True)) == ["chat", "email"]
    assert len(mail.outbox) == 1  # only the "created" email

    # The broker is back; the beat task picks them up when their time comes, exactly once.
    assert outbox.dispatch_due() == 0  # not yet: the normal path gets its chance first
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert outbox.dispatch_due() == 2
        assert outbox.dispatch_due() == 0
    assert not waiting.exists()
    assert len(mail.outbox) == 2
    assert Message.objects.filter(conversation=ticket.conversation, body__contains="¥79.00").count() == 1


class Receiver(BaseHTTPRequestHandler):
    """The shop's order system: fails the first request, then accepts."""

    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append({"headers": self.headers, "body": body})
        self.send_response(500 if len(self.requests) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    requests: list[dict[str, Any]] = []
    handler = type("FailingFirst", (Receiver,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/refunds", requests
    server.shutdown()


def test_webhook_is_signed_retried_with_backoff_and_keeps_its_idempotency_key(
    ticket, receiver, settings, django_capture_on_commit_callbacks
):
    url, requests = receiver
    settings.REFUNDCHAT_WEBHOOK_URL = url
    settings.REFUNDCHAT_WEBHOOK_SECRET = "s3cret"
    with django_capture_on_commit_callbacks(execute=True):
        approve(ticket)

    hook = OutboxMessage.objects.get(kind=OutboxKind.WEBHOOK)
    assert (hook.status, hook.attempts) == ("pending", 1)
    assert "500" in hook.last_error
    assert hook.next_attempt_at - timezone.now() == pytest.approx(timedelta(seconds=30), abs=timedelta(seconds=5))

    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        outbox.dispatch_due()
    hook.refresh_from_db()
    assert (hook.status, hook.attempts) == ("sent", 2)

    assert len(requests) == 2
    first, second = requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"] == str(hook.idempotency_key)
    for request in requests:
        timestamp = request["headers"]["X-RefundChat-Timestamp"]
        expected = outbox.webhook_signature(secret="s3cret", timestamp=timestamp, body=request["body"])
        assert request["headers"]["X-RefundChat-Signature"] == f"sha256={expected}"
    payload = json.loads(second["body"])
    assert (payload["event"], payload["ticket"], payload["status"]) == (
        "ticket.status_changed",
        ticket.number,
        "approved_refund_only",
    )
    assert payload["approved_amount_cents"] == 7900


def test_delivery_gives_up_after_the_last_attempt(ticket, settings):
    settings.REFUNDCHAT_WEBHOOK_URL = "http://127.0.0.1:9/nobody-listens"
    approve(ticket)  # on_commit does not run here: deliver by hand
    hook = OutboxMessage.objects.get(kind=OutboxKind.WEBHOOK)
    for _attempt in range(outbox.MAX_ATTEMPTS):
        assert outbox.deliver(message_id=hook.pk) is False
    hook.refresh_from_db()
    assert (hook.status, hook.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert outbox.retry_now(message_ids=[hook.pk]) == 1
    hook.refresh_from_db()
    assert hook.status == "pending"


def test_backoff_doubles_and_is_capped():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
