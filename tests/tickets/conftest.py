"""Fixtures shared by the tickets tests: alice, her open ticket, and the agent wei. A test module may override any."""

from __future__ import annotations

from typing import Any

import pytest

from tests import factories


@pytest.fixture
def alice() -> Any:
    return factories.buyer(username="alice", first_name="Alice")


@pytest.fixture
def ticket(alice: Any) -> Any:
    """alice's open refund ticket for one ¥79.00 item."""
    return factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))


@pytest.fixture
def wei() -> Any:
    return factories.agent(username="wei")
