"""The agent's ticket tabs in a real browser (static/js/ticket_tabs.js): opened tickets join the strip, drafts are
kept per ticket, a buyer's message on another tab shows its unread dot, tabs close, and the strip survives reloads."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import Message
from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, LiveStack, new_page, record_frames, wait_until
from tickets.models import RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DRAFT = "您好，退款金额我再核对一下，稍"


def tabs(page: Any) -> Any:
    return page.get_by_test_id("ticket-tab")


def tab_of(page: Any, ticket: RefundTicket) -> Any:
    return page.locator(f"[data-testid=ticket-tab][data-ticket-id='{ticket.pk}']")


def open_in_console(page: Any, stack: LiveStack, ticket: RefundTicket) -> None:
    page.goto(f"{stack.url}/console/tickets/{ticket.pk}/")
    # The agent coming online takes the waiting tickets (routing); reload so the composer is there.
    expect(page.get_by_test_id("assigned-agent")).to_have_text("agent")
    if not page.get_by_test_id("chat-input").count():
        page.reload()
    expect(page.get_by_test_id("chat-input")).to_be_visible()


def test_tabs_keep_drafts_show_unread_close_and_survive_reloads(live_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice", last_name="")
    factories.agent(username="agent", first_name="Wei")
    first = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    second = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(12900, 1)]))

    agent = new_page(browser, live_stack, "agent")
    frames = record_frames(agent)
    expect(tabs(agent)).to_have_count(0)
    open_in_console(agent, live_stack, first)
    expect(tabs(agent)).to_have_count(1)
    expect(tab_of(agent, first).locator("a")).to_have_attribute("aria-current", "page")

    # A half-typed reply in the first ticket, then the agent opens the second one.
    agent.get_by_test_id("chat-input").press_sequentially(DRAFT)
    open_in_console(agent, live_stack, second)
    expect(tabs(agent)).to_have_count(2)
    first_tab, second_tab = tab_of(agent, first), tab_of(agent, second)
    expect(first_tab).to_contain_text(first.number)
    expect(first_tab).to_contain_text("Alice")
    expect(first_tab.get_by_test_id("ticket-tab-status")).not_to_be_empty()
    expect(second_tab).to_have_class("ticket-tab current")
    expect(first_tab).to_have_class("ticket-tab")
    expect(agent.get_by_test_id("chat-input")).to_have_value("")

    # Alt+1 goes back to the first tab: the draft is still in its composer.
    frames.clear()
    agent.keyboard.press("Alt+1")
    expect(agent).to_have_url(f"{live_stack.url}/console/tickets/{first.pk}/")
    expect(agent.get_by_test_id("chat-input")).to_have_value(DRAFT)
    expect(tab_of(agent, first)).to_have_class("ticket-tab current")
    wait_until(agent, lambda: any('"queue.subscribed"' in f for f in frames), "the ticket page's queue subscription")

    # The buyer writes on the second ticket: its tab gets the unread dot, the current one does not.
    expect(tab_of(agent, second).get_by_test_id("ticket-tab-unread")).to_be_hidden()
    buyer = new_page(browser, live_stack, "alice", MOBILE)
    buyer.goto(f"{live_stack.url}/refunds/{second.pk}/")
    buyer.get_by_test_id("chat-input").fill("请问什么时候退款？")
    buyer.get_by_test_id("chat-send").click()
    expect(tab_of(agent, second).get_by_test_id("ticket-tab-unread")).to_be_visible()
    expect(tab_of(agent, first).get_by_test_id("ticket-tab-unread")).to_be_hidden()
    assert Message.objects.filter(conversation__ticket=second, sender=alice).count() == 1

    # On a phone the strip scrolls sideways instead of widening the page.
    for size, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        agent.set_viewport_size(viewport)
        screenshot(agent, f"console-tabs-{size}")
    strip = agent.locator("[data-ticket-tabs-list]")
    assert strip.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert strip.evaluate("el => el.scrollWidth > el.clientWidth")
    assert agent.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"]
    agent.set_viewport_size(DESKTOP)

    # A reload keeps the strip, the dot and the draft.
    agent.reload()
    expect(tabs(agent)).to_have_count(2)
    expect(tab_of(agent, second).get_by_test_id("ticket-tab-unread")).to_be_visible()
    expect(agent.get_by_test_id("chat-input")).to_have_value(DRAFT)

    # Sending the draft clears it.
    agent.get_by_test_id("chat-input").press_sequentially("。")
    agent.get_by_test_id("chat-send").click()
    wait_until(
        agent,
        lambda: Message.objects.filter(conversation__ticket=first, body=DRAFT + "。").exists(),
        "the agent's reply",
    )
    agent.reload()
    expect(agent.get_by_test_id("chat-input")).to_have_value("")

    # Opening the second tab reads it; closing the first removes it, also after a reload.
    tab_of(agent, second).locator("a").click()
    expect(agent).to_have_url(f"{live_stack.url}/console/tickets/{second.pk}/")
    expect(tab_of(agent, second).get_by_test_id("ticket-tab-unread")).to_be_hidden()
    tab_of(agent, first).get_by_test_id("ticket-tab-close").click()
    expect(tabs(agent)).to_have_count(1)
    expect(tab_of(agent, first)).to_have_count(0)
    agent.reload()
    expect(tabs(agent)).to_have_count(1)
    expect(tab_of(agent, second)).to_have_class("ticket-tab current")

    # The queue page shows the strip too, with no current tab.
    agent.goto(f"{live_stack.url}/console/")
    expect(tabs(agent)).to_have_count(1)
    expect(tab_of(agent, second)).to_have_class("ticket-tab")

    # At most ten tabs: the oldest unpinned one goes, a pinned one stays however old.
    tab_of(agent, second).get_by_test_id("ticket-tab-pin").click()
    expect(tab_of(agent, second).get_by_test_id("ticket-tab-pin")).to_have_attribute("aria-pressed", "true")
    agent.evaluate(
        """() => {
            const key = "refundchat:tabs:" + document.querySelector("[data-ticket-tabs]").dataset.userId;
            const tabs = JSON.parse(localStorage.getItem(key));
            tabs[0].openedAt = 0;
            for (let n = 1; n <= 9; n++) {
                tabs.push({id: 900000 + n, number: "RC-90000" + n, url: "/console/", buyer: "Bob", buyerId: 0,
                           status: "submitted", statusDisplay: "-", pinned: false, unread: false, openedAt: n});
            }
            localStorage.setItem(key, JSON.stringify(tabs));
        }"""
    )
    open_in_console(agent, live_stack, first)
    expect(tabs(agent)).to_have_count(10)
    expect(tab_of(agent, second)).to_have_class("ticket-tab pinned")
    expect(agent.locator("[data-testid=ticket-tab][data-ticket-id='900001']")).to_have_count(0)
    expect(agent.locator("[data-testid=ticket-tab][data-ticket-id='900002']")).to_have_count(1)
    expect(tabs(agent).last).to_have_attribute("data-ticket-id", str(first.pk))
