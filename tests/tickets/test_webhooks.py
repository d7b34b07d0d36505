"""Webhook subscriptions: the outbox fans each ticket event out to every matching receiver, signed with that
receiver's secret, retried on its own, never lost; managed in the admin and through the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from refundchat.api import tokens
from tests import factories
from tickets import outbox, workflow
from tickets.models import OutboxKind, OutboxMessage, OutboxStatus, WebhookEvent, WebhookSubscription
from tickets.roles import Role
from tickets.workflow import TransitionInput

pytestmark = pytest.mark.django_db


class Hooks(BaseHTTPRequestHandler):
    """Receivers at /<name>: every request is recorded; the names in `failing` answer 500."""

    requests: list[dict[str, Any]]
    failing: set[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        name = self.path.strip("/")
        self.requests.append({"name": name, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
        self.send_response(500 if name in self.failing else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[dict[str, Any]], set[str]]]:
    requests: list[dict[str, Any]] = []
    failing: set[str] = set()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Handler", (Hooks,), {"requests": requests, "failing": failing})
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests, failing
    server.shutdown()


def subscribe(url: str, *events: str, secret: str, active: bool = True) -> WebhookSubscription:
    return WebhookSubscription.objects.create(url=url, secret=secret, event_types=list(events), active=active)


def approve(ticket: Any) -> None:
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="approve_refund_only",
        user=factories.agent(),
        given=TransitionInput(amount_cents=7900),
    )


def verify(request: dict[str, Any], secret: str) -> bool:
    """What a receiver does (docs/api.md): recompute the signature over "<timestamp>.<body>"."""
    timestamp = request["headers"]["x-refundchat-timestamp"]
    expected = outbox.webhook_signature(secret=secret, timestamp=timestamp, body=request["body"])
    return request["headers"]["x-refundchat-signature"] == f"sha256={expected}"


def test_each_matching_subscription_gets_its_own_signed_message(
    hooks, settings, alice, django_capture_on_commit_callbacks
):
    base, requests, _failing = hooks
    settings.REFUNDCHAT_WEBHOOK_URL = f"{base}/settings"
    settings.REFUNDCHAT_WEBHOOK_SECRET = "settings-secret-0123"
    subscribe(
        f"{base}/all", WebhookEvent.TICKET_CREATED, WebhookEvent.TICKET_STATUS_CHANGED, secret="all-secret-0123456"
    )
    subscribe(f"{base}/created", WebhookEvent.TICKET_CREATED, secret="created-secret-01234")
    subscribe(f"{base}/off", WebhookEvent.TICKET_STATUS_CHANGED, secret="off-secret-0123456", active=False)

    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    with django_capture_on_commit_callbacks(execute=True):
        approve(ticket)

    received = sorted((r["name"], json.loads(r["body"])["event"]) for r in requests)
    assert received == [
        ("all", "ticket.created"),
        ("all", "ticket.status_changed"),
        ("created", "ticket.created"),
        ("settings", "ticket.created"),
        ("settings", "ticket.status_changed"),
    ]
    secrets = {"settings": "settings-secret-0123", "all": "all-secret-0123456", "created": "created-secret-01234"}
    for request in requests:
        assert verify(request, secrets[request["name"]])
        assert not verify(request, "some-other-secret-000")
        assert request["headers"]["x-refundchat-event"] == json.loads(request["body"])["event"]
    keys = [r["headers"]["idempotency-key"] for r in requests]
    assert len(set(keys)) == len(keys) == 5
    assert OutboxMessage.objects.filter(kind=OutboxKind.WEBHOOK, status=OutboxStatus.SENT).count() == 5


def test_a_receiver_that_is_down_is_retried_alone_and_loses_nothing(hooks, alice, django_capture_on_commit_callbacks):
    base, requests, failing = hooks
    subscribe(f"{base}/up", WebhookEvent.TICKET_CREATED, secret="up-secret-0123456789")
    down = subscribe(f"{base}/down", WebhookEvent.TICKET_CREATED, secret="down-secret-012345678")
    failing.add("down")

    with django_capture_on_commit_callbacks(execute=True):
        factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))

    waiting = OutboxMessage.objects.get(kind=OutboxKind.WEBHOOK, payload__subscription_id=down.pk)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, 1)
    assert OutboxMessage.objects.get(kind=OutboxKind.WEBHOOK, status=OutboxStatus.SENT).payload["url"].endswith("/up")

    failing.clear()
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        outbox.dispatch_due()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == (OutboxStatus.SENT, 2)
    tries = [r for r in requests if r["name"] == "down"]
    assert len(tries) == 2
    # The same message both times: the receiver drops the repeat by its key.
    assert tries[0]["headers"]["idempotency-key"] == tries[1]["headers"]["idempotency-key"]
    assert [r["name"] for r in requests].count("up") == 1


def test_a_deleted_subscription_is_not_sent_to_and_a_rotated_secret_applies(
    hooks, alice, django_capture_on_commit_callbacks
):
    base, requests, _failing = hooks
    gone = subscribe(f"{base}/gone", WebhookEvent.TICKET_CREATED, secret="gone-secret-0123456")
    rotated = subscribe(f"{base}/rotated", WebhookEvent.TICKET_CREATED, secret="old-secret-0123456789")
    factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))  # not delivered yet
    gone_id = gone.pk
    gone.delete()
    rotated.secret = "new-secret-0123456789"
    rotated.save(update_fields=["secret"])

    for message in OutboxMessage.objects.filter(kind=OutboxKind.WEBHOOK):
        assert outbox.deliver(message_id=message.pk) is True
    assert [r["name"] for r in requests] == ["rotated"]
    assert verify(requests[0], "new-secret-0123456789")
    assert OutboxMessage.objects.get(payload__subscription_id=gone_id).status == OutboxStatus.SENT


def test_no_receiver_means_no_webhook_message(settings, alice):
    settings.REFUNDCHAT_WEBHOOK_URL = ""
    subscribe("https://erp.example.com/h", WebhookEvent.TICKET_STATUS_CHANGED, secret="s" * 20)
    factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    assert not OutboxMessage.objects.filter(kind=OutboxKind.WEBHOOK).exists()


# --- managed through the API and the admin ----------------------------------------------------------------------


@pytest.fixture
def integrator() -> Any:
    """A service account allowed to manage webhook subscriptions (granted in the admin)."""
    user: Any = factories.UserFactory(username="erp")
    user.user_permissions.set(
        Permission.objects.filter(codename__endswith="_webhooksubscription", content_type__app_label="tickets")
    )
    return user


def test_api_creates_lists_updates_and_deletes_subscriptions(integrator):
    _token, key = tokens.do_create_token(name="ERP", user=integrator, scopes=["webhooks:read", "webhooks:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    created = client.post(
        "/api/v1/webhooks/",
        {"url": "https://erp.example.com/refunds", "event_types": ["ticket.status_changed", "ticket.created"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    subscription = WebhookSubscription.objects.get(pk=body["id"])
    # A secret was made and shown once; it is never listed again.
    assert body["secret"] == subscription.secret
    assert len(subscription.secret) >= 32
    assert subscription.event_types == ["ticket.created", "ticket.status_changed"]
    assert subscription.created_by == integrator
    listed = client.get("/api/v1/webhooks/").json()["results"]
    assert [row["id"] for row in listed] == [subscription.pk]
    assert "secret" not in listed[0]

    updated = client.put(
        f"/api/v1/webhooks/{subscription.pk}/",
        {"url": "https://erp.example.com/v2", "event_types": ["ticket.created"], "active": False},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    old_secret = subscription.secret
    subscription.refresh_from_db()
    assert (subscription.url, subscription.active, subscription.secret) == (
        "https://erp.example.com/v2",
        False,
        old_secret,
    )

    assert client.delete(f"/api/v1/webhooks/{subscription.pk}/").status_code == 204
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://erp.example.com/x", "event_types": ["ticket.created"]}, "bad_url"),
        (
            {"url": "https://erp.example.com/x", "event_types": ["ticket.created"], "secret": "short"},
            "secret_too_short",
        ),
        ({"url": "https://erp.example.com/x", "event_types": ["ticket.exploded"]}, "invalid"),
        ({"url": "https://erp.example.com/x", "event_types": []}, "invalid"),
    ],
)
def test_api_refuses_bad_subscriptions_and_saves_nothing(integrator, body, code):
    client = APIClient()
    client.force_authenticate(integrator)
    response = client.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not WebhookSubscription.objects.exists()


def test_admin_makes_a_subscription_through_the_service_and_shows_the_secret_once():
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/tickets/webhooksubscription/add/",
        {"url": "https://erp.example.com/hook", "event_types": ["ticket.created"], "secret": "", "active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.created_by == admin_user
    assert len(subscription.secret) >= 32
    assert subscription.secret in response.content.decode()
    # A secret that is too short is refused on the form; nothing is saved.
    refused = client.post(
        "/admin/tickets/webhooksubscription/add/",
        {"url": "https://erp.example.com/2", "event_types": ["ticket.created"], "secret": "short", "active": "on"},
    )
    assert refused.status_code == 200
    assert "errornote" in refused.content.decode()
    assert WebhookSubscription.objects.count() == 1


def test_manager_sees_subscriptions_in_the_api_but_cannot_change_them():
    manager = factories.staff(Role.MANAGER, username="boss")
    subscription = subscribe("https://erp.example.com/h", WebhookEvent.TICKET_CREATED, secret="s" * 20)
    client = APIClient()
    client.force_authenticate(manager)
    assert client.get(f"/api/v1/webhooks/{subscription.pk}/").json()["url"] == "https://erp.example.com/h"
    response = client.delete(f"/api/v1/webhooks/{subscription.pk}/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert WebhookSubscription.objects.exists()
