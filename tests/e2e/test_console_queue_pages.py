"""The console queue's pages in a real browser: Next / Previous links walk the queue in order, and a ticket that
arrives live appears on the page it sorts into, not on a later one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, new_page, record_frames, wait_until
from tests.e2e.test_console_routing import request_refund
from tests.stack import LiveStack, running_stack
from tickets import selectors
from tickets.models import AgentProfile, RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def small_pages_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    with running_stack(tmp_path, extra_env={"REFUNDCHAT_QUEUE_PAGE_SIZE": "3"}) as stack:
        yield stack


def shown(page: Any) -> list[int]:
    return [
        int(pk) for pk in page.get_by_test_id("queue-item").evaluate_all("rows => rows.map(r => r.dataset.ticketId)")
    ]


def subscribed(page: Any) -> list[str]:
    frames = record_frames(page)
    page.reload()
    wait_until(page, lambda: any('"queue.subscribed"' in f for f in frames), "the queue socket")
    return frames


def test_next_and_previous_walk_the_queue_and_live_rows_land_on_their_own_page(small_pages_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice")
    for username in ("agent1", "agent2"):
        # No room for automatic routing: the tickets stay unassigned until agent2 claims one.
        AgentProfile.objects.create(user=factories.agent(username=username), max_open_tickets=0)
    now = timezone.now()
    tickets = []
    for minutes in (10, 20, 30, 40, 50):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000 + minutes, 1)]))
        RefundTicket.objects.filter(pk=ticket.pk).update(first_response_due_at=now + timedelta(minutes=minutes))
        tickets.append(ticket.pk)
    # The queue's order: the earliest first-response deadline on top.
    assert list(selectors.console_queue(view="open").values_list("pk", flat=True)) == tickets

    first = new_page(browser, small_pages_stack, "agent1")
    first.goto(f"{small_pages_stack.url}/console/?view=open")
    assert shown(first) == tickets[:3]
    expect(first.get_by_test_id("queue-count")).to_have_text("5")
    expect(first.get_by_test_id("queue-previous")).to_have_count(0)

    second = new_page(browser, small_pages_stack, "agent1", MOBILE)
    second.goto(f"{small_pages_stack.url}/console/?view=open")
    second.get_by_test_id("queue-next").click()
    expect(second.get_by_test_id("queue-item")).to_have_count(2)
    assert shown(second) == tickets[3:]
    expect(second.get_by_test_id("queue-next")).to_have_count(0)
    screenshot(second, "console-queue-second-page-mobile")

    subscribed(first)
    subscribed(second)
    # A new ticket (promised within the default 2 hours) sorts after every other: it appears live on the second
    # page, the last, and not on the first, whose rows end before it.
    buyer = new_page(browser, small_pages_stack, "alice", MOBILE)
    late = request_refund(buyer, small_pages_stack, factories.order_with_items(buyer=alice, items=[(998, 1)]))
    expect(second.locator(f"[data-ticket-id='{late.pk}']")).to_be_visible()
    assert shown(second) == [*tickets[3:], late.pk]

    # Another one, made due sooner than all others (and pushed when agent2 claims it): it moves to the top of the
    # first page and leaves the second.
    urgent = request_refund(buyer, small_pages_stack, factories.order_with_items(buyer=alice, items=[(999, 1)]))
    expect(second.locator(f"[data-ticket-id='{urgent.pk}']")).to_be_visible()
    RefundTicket.objects.filter(pk=urgent.pk).update(first_response_due_at=now + timedelta(minutes=1))
    agent2 = new_page(browser, small_pages_stack, "agent2")
    agent2.goto(f"{small_pages_stack.url}/console/tickets/{urgent.pk}/")
    agent2.get_by_test_id("claim-ticket").click()
    expect(first.locator(f"[data-ticket-id='{urgent.pk}']")).to_be_visible()
    assert shown(first)[0] == urgent.pk
    expect(second.locator(f"[data-ticket-id='{urgent.pk}']")).to_have_count(0)
    assert late.pk not in shown(first)
    # The heading counts the whole view, not the rows on the page: with other pages it is fetched again.
    expect(first.get_by_test_id("queue-count")).to_have_text("7")
    assert shown(second) == [*tickets[3:], late.pk]

    # "Previous" shows the three tickets before this page's first: the urgent one came in before them, so one
    # page more leads back to the start, which is a full first page.
    second.get_by_test_id("queue-previous").click()
    expect(second.get_by_test_id("queue-item")).to_have_count(3)
    assert shown(second) == tickets[:3]
    second.get_by_test_id("queue-previous").click()
    expect(second.get_by_test_id("queue-previous")).to_have_count(0)
    assert shown(second) == [urgent.pk, *tickets[:2]]
    screenshot(first, "console-queue-first-page-desktop")
    assert first.viewport_size == DESKTOP
