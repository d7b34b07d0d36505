from __future__ import annotations

from typing import Any

import pytest

from tests import factories
from tickets import services as ticket_services


@pytest.fixture
def claimed_ticket() -> tuple[Any, Any]:
    """alice's ticket, claimed by `agent`: (ticket, agent)."""
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    agent = factories.agent(username="agent")
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    return ticket, agent


@pytest.fixture(params=["statement", "locked"])
def store_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through both ways a text message is stored: PostgreSQL's one statement and the ORM path."""
    from django.db import connection

    from messaging import services

    if request.param == "statement" and connection.vendor != "postgresql":
        pytest.skip("the one-statement path is PostgreSQL's")
    if request.param == "locked":
        monkeypatch.setattr(services, "_store_texts_statement", services._store_texts_locked)
    return str(request.param)
