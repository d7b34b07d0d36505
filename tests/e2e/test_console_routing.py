"""Routing and collision detection in real browsers: tickets spread live over two agents' queues, a transfer
moves one live, and two agents on one ticket see each other (the buyer never does)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import Presence, PresenceStatus, TicketViewer
from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, LiveStack, log_in, new_page, record_frames, wait_until
from tickets import services as ticket_services
from tickets.models import AgentProfile, Order, RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def request_refund(page: Any, stack: LiveStack, order: Order) -> RefundTicket:
    """The buyer asks for a refund of the whole order through the real form."""
    page.goto(f"{stack.url}/orders/{order.order_no}/refund/")
    page.check("input[value=refund_only]")
    page.get_by_test_id("refund-item-quantity").first.fill("1")
    page.select_option("select[name=reason]", "quality_defect")
    page.fill("textarea[name=description]", "杯子有裂纹")
    page.get_by_test_id("submit-refund").click()
    ticket = RefundTicket.objects.get(order=order)
    expect(page).to_have_url(f"{stack.url}/refunds/{ticket.pk}/")
    return ticket


def mine(page: Any) -> Any:
    return page.get_by_test_id("queue-item")


def row_of(page: Any, ticket: RefundTicket) -> Any:
    return page.locator(f"[data-testid=queue-item][data-ticket-id='{ticket.pk}']")


def test_three_tickets_are_spread_live_and_a_transfer_moves_one(live_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice")
    agent1 = factories.agent(username="agent1", first_name="李娜", last_name="")
    agent2 = factories.agent(username="agent2", first_name="王强", last_name="")
    for agent in (agent1, agent2):
        AgentProfile.objects.update_or_create(user=agent, defaults={"max_open_tickets": 2})
    orders = [
        factories.order_with_items(buyer=alice, items=[(8800 + n * 100, 1)], order_no=f"20261111000{n}")
        for n in (1, 2, 3)
    ]

    # Both agents online, each with the "mine" view of the console queue open.
    queues = {}
    for agent in (agent1, agent2):
        page = new_page(browser, live_stack, agent.username)
        frames = record_frames(page)
        page.goto(f"{live_stack.url}/console/?view=mine")
        expect(page.get_by_test_id("view-mine")).to_have_attribute("aria-current", "page")
        wait_until(
            page,
            lambda frames=frames: any('"queue.subscribed"' in f for f in frames),
            f"{agent.username}'s queue socket",
        )
        page.evaluate("window.__notReloaded = true")
        queues[agent.username] = page
    wait_until(
        page,
        lambda: Presence.objects.filter(user__in=[agent1, agent2], status=PresenceStatus.ONLINE).count() == 2,
        "both agents online",
    )
    first, second = queues["agent1"], queues["agent2"]
    expect(mine(first)).to_have_count(0)
    expect(mine(second)).to_have_count(0)

    buyer = new_page(browser, live_stack, "alice", MOBILE)
    tickets = [request_refund(buyer, live_stack, order) for order in orders]

    # The rule (tickets/routing.py): least loaded first, ties to whoever waited longest for a ticket, then the
    # lower id. #1: both at 0, neither ever assigned -> agent1. #2: agent2 has fewer. #3: 1 each, agent2 was
    # assigned more recently -> agent1, now at capacity (2).
    expect(row_of(first, tickets[0])).to_be_visible()
    expect(row_of(second, tickets[1])).to_be_visible()
    expect(row_of(first, tickets[2])).to_be_visible()
    expect(mine(first)).to_have_count(2)
    expect(mine(second)).to_have_count(1)
    expect(row_of(first, tickets[0])).to_contain_text("agent1")
    expect(row_of(second, tickets[1])).to_contain_text("agent2")
    assert list(RefundTicket.objects.order_by("pk").values_list("assigned_agent__username", flat=True)) == [
        "agent1",
        "agent2",
        "agent1",
    ]
    screenshot(first, "console-routing-mine-agent1")

    # agent1 hands #1 to agent2 through the ticket page's transfer form, in another tab.
    workspace = first.context.new_page()
    # Filled in at once: the refresh of the ticket's head that follows the socket's first connection (lists.js)
    # keeps a form being filled in (tests/e2e/test_live_sections.py).
    workspace.goto(f"{live_stack.url}/console/tickets/{tickets[0].pk}/")
    workspace.get_by_test_id("transfer").locator("summary").click()
    workspace.get_by_test_id("transfer-agent").select_option(str(agent2.pk))
    workspace.get_by_test_id("transfer-note").fill("买家要求男同事处理")
    workspace.get_by_test_id("transfer-submit").click()
    expect(workspace.get_by_test_id("assigned-agent")).to_have_text("agent2")

    # Both "mine" views follow without a reload.
    expect(row_of(first, tickets[0])).to_have_count(0)
    expect(row_of(second, tickets[0])).to_be_visible()
    expect(row_of(second, tickets[0])).to_contain_text("agent2")
    expect(mine(first)).to_have_count(1)
    expect(mine(second)).to_have_count(2)
    for page in (first, second):
        assert page.evaluate("window.__notReloaded === true")
    screenshot(second, "console-routing-mine-agent2-after-transfer")


def test_agents_on_one_ticket_see_each_other_and_the_buyer_sees_neither(live_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice")
    agent1 = factories.agent(username="agent1", first_name="李娜", last_name="")
    factories.agent(username="agent2", first_name="王强", last_name="")
    factories.agent(username="agent3", first_name="张伟", last_name="")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent1)
    path = f"/console/tickets/{ticket.pk}/"

    buyer = browser.new_context(locale="zh-CN", viewport=MOBILE).new_page()
    buyer_frames = record_frames(buyer)
    log_in(buyer, live_stack, "alice")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(buyer.get_by_test_id("connection-state")).to_be_hidden()

    first = new_page(browser, live_stack, "agent1")
    first.goto(live_stack.url + path)
    expect(first.get_by_test_id("chat-input")).to_be_visible()
    wait_until(first, lambda: TicketViewer.objects.filter(ticket=ticket).count() == 1, "agent1 viewing")
    bar1 = first.get_by_test_id("viewers")
    expect(bar1).to_be_hidden()  # alone here

    second = new_page(browser, live_stack, "agent2")
    second.goto(live_stack.url + path)
    bar2 = second.get_by_test_id("viewers")
    expect(bar1).to_be_visible()
    expect(bar1.get_by_test_id("viewer")).to_have_text(["王强（查看中）"])
    expect(bar1).to_contain_text("同时在看")
    expect(bar2.get_by_test_id("viewer")).to_have_text(["李娜（查看中）"])
    # A third, for a moment: everyone is listed once, in the order they came.
    third = new_page(browser, live_stack, "agent3")
    third.goto(live_stack.url + path)
    expect(bar1.get_by_test_id("viewer")).to_have_text(["王强（查看中）", "张伟（查看中）"])
    expect(third.get_by_test_id("viewers").get_by_test_id("viewer")).to_have_text(["李娜（查看中）", "王强（查看中）"])

    # agent2 (not assigned) drafts an internal note: agent1 sees them typing.
    second.locator("[data-notes] textarea").press_sequentially("这个买家上周也退过", delay=20)
    typing = bar1.locator("[data-testid=viewer][data-state=typing]")
    expect(typing).to_have_text("王强（正在写备注…）")
    expect(bar1.get_by_test_id("viewer")).to_have_text(["王强（正在写备注…）", "张伟（查看中）"])
    for size, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        first.set_viewport_size(viewport)
        bar1.scroll_into_view_if_needed()
        screenshot(first, f"console-collision-bar-{size}")
    first.set_viewport_size(DESKTOP)
    third.close()
    expect(bar1.get_by_test_id("viewer")).to_have_count(1)

    # agent1, assigned, types a reply: agent2 sees it in the bar (alice sees the ordinary typing line).
    first.get_by_test_id("chat-input").press_sequentially("您好，我来处理", delay=20)
    expect(bar2.locator("[data-testid=viewer][data-state=typing]")).to_have_text("李娜（正在输入…）")
    expect(buyer.get_by_test_id("typing")).to_contain_text("李娜")
    # The typing state goes by itself.
    expect(typing).to_have_count(0, timeout=10_000)
    expect(bar1.get_by_test_id("viewer")).to_have_text(["王强（查看中）"])

    # agent2 leaves: agent1 is alone again.
    second.close()
    expect(bar1).to_be_hidden()

    # alice's page never showed the bar, agent2 or anything staff only, nor received it.
    expect(buyer.get_by_test_id("viewers")).to_have_count(0)
    expect(buyer.locator("body")).not_to_contain_text("王强")
    assert buyer_frames, "the buyer's socket received frames"
    leaked = [f for f in buyer_frames if "ticket.viewers" in f or "ticket.typing" in f or "王强" in f]
    assert leaked == []
