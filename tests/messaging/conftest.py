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
