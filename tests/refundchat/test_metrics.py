"""/metrics (refundchat/metrics.py): who may read it, and that a short chat on a real stack moves the counters by
exactly what happened."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from refundchat.celery import app as celery_app
from tests.chat_client import ChatClient, log_in
from tests.factories import PASSWORD
from tests.faults.conftest import ClaimedTicket, claimed_ticket, people  # noqa: F401 (fixtures)
from tests.faults.test_faults import settled, wait_for
from tests.stack import LiveStack, running_stack

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_answer_the_allow_list_and_the_token_only(settings):
    settings.REFUNDCHAT_METRICS_TOKEN = "s3cret-scrape-token"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 404
    assert outsider.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    response = outsider.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert response.status_code == 200
    samples = parse(response.content.decode())
    # Read from the broker and the database when scraped.
    assert ("refundchat_outbox_backlog", ()) in samples
    assert ("refundchat_celery_queue_depth", (("queue", settings.CELERY_TASK_DEFAULT_QUEUE),)) in samples
    assert ("refundchat_sla_breached_tickets", (("rule", "first_response"),)) in samples


@celery_app.task(bind=True, max_retries=1, name="tests.refundchat.test_metrics.flaky")
def flaky(self: Any) -> None:
    """Fails once with a retry, then for good."""
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    raise ValueError("still broken")


def test_task_failures_and_retries_are_counted(monkeypatch):
    labels = {"task": flaky.name}
    failures = REGISTRY.get_sample_value("refundchat_celery_task_failures_total", labels) or 0
    retries = REGISTRY.get_sample_value("refundchat_celery_task_retries_total", labels) or 0
    # Eager, as the test settings run tasks (the retry runs at once); a failure is recorded, not raised, as in a worker.
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)
    result = flaky.apply()
    assert isinstance(result.result, ValueError)
    assert REGISTRY.get_sample_value("refundchat_celery_task_failures_total", labels) == failures + 1
    assert REGISTRY.get_sample_value("refundchat_celery_task_retries_total", labels) == retries + 1


@pytest.fixture
def metrics_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    with running_stack(tmp_path, extra_env={"REFUNDCHAT_SEND_BURST": "10000"}) as stack:
        yield stack


def scrape(stack: LiveStack) -> Samples:
    with urllib.request.urlopen(stack.url + "/metrics", timeout=10) as response:
        return parse(response.read().decode())


MESSAGES = 7


@pytest.mark.e2e
def test_a_short_chat_moves_the_counters_by_what_happened(metrics_stack: LiveStack, claimed_ticket: ClaimedTicket):  # noqa: F811
    stack = metrics_stack
    conversation = claimed_ticket.conversation_id
    before = scrape(stack)
    buyer = ChatClient(
        base_url=stack.url,
        cookie=log_in(stack.url, claimed_ticket.buyer.username, PASSWORD),
        conversations=[conversation],
        name="buyer",
    )
    agent = ChatClient(
        base_url=stack.url,
        cookie=log_in(stack.url, claimed_ticket.agent.username, PASSWORD),
        conversations=[conversation],
        name="agent",
    )
    during: Samples = {}

    async def chat() -> None:
        nonlocal during
        for client in (buyer, agent):
            client.start()
        try:
            await asyncio.wait_for(asyncio.gather(buyer.caught_up.wait(), agent.caught_up.wait()), timeout=10)
            for n in range(MESSAGES):
                await (buyer, agent)[n % 2].send_message(conversation, f"message {n}")
            await wait_for(lambda: settled((buyer, agent), conversation), 15, "every message is held")
            during = await asyncio.to_thread(scrape, stack)
        finally:
            await buyer.close()
            await agent.close()

    asyncio.run(chat())
    deadline = time.monotonic() + 10
    after = scrape(stack)
    while value(after, "refundchat_websocket_connections") != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        after = scrape(stack)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("refundchat_messages_total") == MESSAGES
    assert moved("refundchat_message_delivery_seconds_count") == MESSAGES
    assert moved("refundchat_message_delivery_seconds_bucket", le="+Inf") == MESSAGES
    assert value(during, "refundchat_websocket_connections") == 2
    assert value(after, "refundchat_websocket_connections") == 0
    # One catch-up per subscribe; the system message "ticket created" was waiting for both.
    assert moved("refundchat_catch_up_messages_count") == 2
    assert moved("refundchat_catch_up_messages_sum") == 2
    # Two logins: each a GET of the form and a POST that redirects.
    assert moved("refundchat_http_request_duration_seconds_count", view="login", method="GET", status="200") == 2
    assert moved("refundchat_http_request_duration_seconds_count", view="login", method="POST", status="302") == 2
