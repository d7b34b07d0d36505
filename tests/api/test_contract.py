"""Contract tests: the OpenAPI schema validates, and the live API keeps to it.

schemathesis loads /api/schema/ from the WSGI app and sends generated requests to every operation, as a
buyer and as an agent (integration tokens bound to them), with a bounded, derandomised number of examples.
No answer may be a 5xx, and every answer must match its documented status, content type and body schema.
Another buyer's data (bob's order number, name, address, message, file name), planted next to the buyer's own and
aimed at with its real ids, never appears in an answer to the buyer (issue #9, "Attacks tried in CI").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from messaging import services as messaging_services
from refundchat.api import tokens
from refundchat.wsgi import application
from tests import factories
from tickets.canned import save_reply
from tickets.models import WebhookEvent, WebhookSubscription
from tickets.services import claim_ticket

pytestmark = pytest.mark.django_db

# Examples per run and role, spread over every operation; enough to reach each one several times.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 300, GenerationMode.NEGATIVE: 150}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# What only bob's answers may contain; his order number is added by the test that plants it.
BOB_MARKS = ["Bobby-Secret", "Bob Recipient-Secret", "bob-secret-message", "bob-secret-file.jpg"]


class CrossBuyerLeak(AssertionError):
    pass


@schemathesis.check
def no_other_buyers_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """The answer carries nothing of bob's: names, address, messages, files, order numbers."""
    text = response.content.decode(errors="replace")
    leaked = [mark for mark in BOB_MARKS if mark in text]
    if leaked:
        raise CrossBuyerLeak(f"{case.method} {case.formatted_path} answered with bob's {leaked}")
    return None


def test_schema_validates_without_warnings(tmp_path: Path) -> None:
    """What CI runs as `manage.py spectacular --validate --fail-on-warn`: it raises on any warning."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "openapi: 3." in text
    assert "/api/v1/tickets/{id}/approve_refund_only/" in text


def test_schema_and_docs_are_served_offline(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"]["tokenAuth"]["type"] == "apiKey"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Swagger UI comes from the sidecar package under /static/, never from a CDN.
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


@pytest.fixture
def _connection_kept_across_requests() -> Iterator[None]:
    """The WSGI app closes the database connection after each request; inside the test's transaction it must
    stay (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A buyer with a claimed ticket carrying a message and a file, an agent, a reply, a subscription."""
    buyer = factories.buyer(username="alice")
    agent = factories.agent(username="wei")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(7900, 2)]))
    claim_ticket(ticket_id=ticket.pk, agent=agent)
    attachment = factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff evidence")
    save_reply(user=agent, title="Hi", language="zh-hans", body="您好 {buyer_name}")
    WebhookSubscription.objects.create(
        url="https://erp.example.com/hooks", secret="s" * 32, event_types=[WebhookEvent.TICKET_CREATED]
    )
    # bob: another buyer whose data must never reach alice.
    bob = factories.buyer(username="bob", first_name="Bobby-Secret")
    bob_order = factories.order_with_items(buyer=bob, items=[(5000, 1)], recipient_name="Bob Recipient-Secret")
    bob_ticket = factories.open_ticket(order=bob_order)
    monkeypatch.setattr("tests.api.test_contract.BOB_MARKS", [*BOB_MARKS, bob_order.order_no])
    messaging_services.post_message(
        conversation_id=bob_ticket.conversation.pk, sender=bob, body="bob-secret-message", client_id=uuid.uuid4()
    )
    bob_attachment = factories.stored_attachment(ticket=bob_ticket, content=b"\xff\xd8\xff bob")
    type(bob_attachment).objects.filter(pk=bob_attachment.pk).update(filename="bob-secret-file.jpg")
    return {
        "buyer": buyer,
        "agent": agent,
        "ticket": ticket,
        "attachment": attachment,
        "bob_ticket": bob_ticket,
        "bob_attachment": bob_attachment,
    }


@pytest.mark.parametrize("role", ["buyer", "agent"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
@pytest.mark.usefixtures("_connection_kept_across_requests")
def test_live_api_keeps_to_its_schema(role: str, mode: GenerationMode, world: dict[str, Any]) -> None:
    """Valid requests get answers that match the schema; invalid ones (negative mode) are refused, never a 5xx."""
    _token, key = tokens.do_create_token(name=role, user=world[role], scopes=list(tokens.SCOPES))
    headers = {"Authorization": f"Token {key}", "Accept-Language": "en"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    # Half the examples aim at the objects that exist (so real answers are checked), half at random ids.
    real = {
        "id": world["ticket"].pk,
        "ticket_id": world["ticket"].pk,
        "attachment_id": world["attachment"].pk,
        "order_no": world["ticket"].order.order_no,
    }
    bobs = {
        "id": world["bob_ticket"].pk,
        "ticket_id": world["bob_ticket"].pk,
        "attachment_id": world["bob_attachment"].pk,
        "order_no": world["bob_ticket"].order.order_no,
    }
    strategy = st.one_of(
        schema.as_strategy(generation_mode=mode),
        schema.as_strategy(generation_mode=mode, path_parameters=real),
        schema.as_strategy(generation_mode=mode, path_parameters=bobs),
    )
    checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
    if role == "buyer":
        checks = [*checks, no_other_buyers_data]
    seen: set[str] = set()

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        seen.add(f"{case.method} {case.operation.path}")
        case.call_and_validate(headers=headers, checks=checks)

    check()
    # Every operation has valid requests; not every one has invalid ones (a list without parameters).
    assert len(seen) >= (25 if mode is GenerationMode.POSITIVE else 15), sorted(seen)
