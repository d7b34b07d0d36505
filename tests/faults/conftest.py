"""Fault tests on real processes: a private redis-server, Daphne and a Celery worker on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.faults.mailbox import BACKEND, MAIL_DIR_VARIABLE
from tests.stack import LiveStack, running_stack
from tickets import services
from tickets.models import RefundTicket


@dataclass
class FaultStack:
    stack: LiveStack
    mail_dir: Path


@pytest.fixture
def fault_stack(transactional_db: None, tmp_path: Path) -> Iterator[FaultStack]:
    """Daphne and a Celery worker on the test database, with their own redis-server (channel layer and broker)."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    # The per-person send limit is not what these tests are about: they send faster than anyone types.
    extra = {"DJANGO_EMAIL_BACKEND": BACKEND, MAIL_DIR_VARIABLE: str(mail_dir), "REFUNDCHAT_SEND_BURST": "10000"}
    with running_stack(tmp_path, own_redis=True, extra_env=extra) as stack:
        yield FaultStack(stack=stack, mail_dir=mail_dir)


@dataclass
class ClaimedTicket:
    ticket: RefundTicket
    buyer: Any
    agent: Any

    @property
    def conversation_id(self) -> int:
        return int(self.ticket.conversation.pk)


@pytest.fixture
def people() -> tuple[Any, Any]:
    """A buyer and an agent whose passwords the server can check (the real login)."""
    buyer = factories.with_server_password(factories.buyer(username="alice", email="alice@example.com"))
    agent = factories.with_server_password(factories.agent(username="agent"))
    return buyer, agent


@pytest.fixture
def claimed_ticket(people: tuple[Any, Any]) -> ClaimedTicket:
    """An open ticket the agent has claimed, so both may write; its conversation starts with the system message."""
    buyer, agent = people
    order = factories.order_with_items(buyer=buyer, items=[(7900, 1)])
    ticket = factories.open_ticket(order=order)
    services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    return ClaimedTicket(ticket=ticket, buyer=buyer, agent=agent)
