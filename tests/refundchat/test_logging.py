"""Structured logs (refundchat/logging.py): one JSON object a line, each with the id of its request, and that id
carried from the HTTP request into the Celery task it queued; no personal data."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refundchat.logging import ContextFilter, JsonFormatter, bound
from tests.chat_client import Browser
from tests.e2e.test_scale_out import ask_for_evidence
from tests.factories import PASSWORD
from tests.faults.conftest import ClaimedTicket, claimed_ticket, people  # noqa: F401 (fixtures)
from tests.stack import LiveStack, running_stack


def formatted(message: str, *args: Any) -> dict[str, Any]:
    record = logging.LogRecord("refundchat.test", logging.INFO, __file__, 1, message, args, None)
    ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_a_line_carries_the_ids_of_its_context():
    with bound(request_id="req-0123456789", ticket_id=42, user_id=7):
        line = formatted("refund %s approved", "RC-000042")
    assert line["message"] == "refund RC-000042 approved"
    assert (line["request_id"], line["ticket_id"], line["user_id"]) == ("req-0123456789", 42, 7)
    assert line["level"] == "INFO"
    assert line["logger"] == "refundchat.test"
    assert "time" in line
    outside = formatted("no request here")
    assert outside["request_id"] == "-"
    assert outside["ticket_id"] is None


def test_card_and_resident_id_numbers_never_reach_a_log():
    line = formatted("payout to %s failed", "6228480012345671")
    assert line["message"] == "payout to 622848******5671 failed"


@pytest.fixture
def json_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    # Mail goes out over SMTP in production; the development backend's whole point is to print it (with the
    # buyer's address) to the output, so it is not the one for a test about what the logs hold.
    extra = {"REFUNDCHAT_LOG_FORMAT": "json", "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    with running_stack(tmp_path, extra_env=extra) as stack:
        yield stack


def lines_with(stack: LiveStack, service: str, request_id: str) -> list[dict[str, Any]]:
    found = []
    for raw in stack[service].log_path.read_text(errors="replace").splitlines():
        if request_id in raw:
            found.append(json.loads(raw))  # a line that names the request is a JSON object
    return found


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_lines_of_one_request_share_its_id_across_daphne_and_the_worker(
    json_stack: LiveStack,
    claimed_ticket: ClaimedTicket,  # noqa: F811
):
    stack = json_stack
    ticket, agent, buyer = claimed_ticket.ticket, claimed_ticket.agent, claimed_ticket.buyer
    browser = Browser(stack.url)
    browser.log_in(agent.username, PASSWORD)
    request_id = f"test-{uuid.uuid4().hex}"

    # A refund-state change: Daphne answers it, and the worker delivers the notifications it queued.
    ask_for_evidence(browser, ticket.pk, headers={"X-Request-ID": request_id})

    deadline = time.monotonic() + 20
    while not any("succeeded" in line["message"] for line in lines_with(stack, "worker", request_id)):
        assert time.monotonic() < deadline, f"no task logged with the request's id:\n{stack.logs()}"
        time.sleep(0.2)
    web = lines_with(stack, "daphne", request_id)
    tasks = lines_with(stack, "worker", request_id)
    assert any(line["logger"] == "refundchat.access" and line["status"] == 302 for line in web)
    assert {line["task"] for line in tasks} >= {"tickets.tasks.deliver_outbox_message"}
    for line in web + tasks:
        assert line["request_id"] == request_id
        assert line["user_id"] == agent.pk
        assert line["ticket_id"] == ticket.pk
    # Other requests have ids of their own (urllib repeats the header on the redirect it follows: left out).
    access = [
        json.loads(raw) for raw in stack["daphne"].log_path.read_text().splitlines() if "refundchat.access" in raw
    ]
    other = [line for line in access if line["request_id"] != request_id]
    assert len(other) >= 3  # the login form, the login, the console page
    assert len({line["request_id"] for line in other}) == len(other)
    # Nothing personal: the buyer's name and address are in no log.
    logs = stack.logs()
    for personal in (buyer.email, buyer.username):
        assert personal not in logs
