"""alice asks for a refund; the agent sees it arrive live, claims it, and they chat both ways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.models import Message
from tests import factories
from tests.e2e.conftest import log_in
from tickets.models import RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_buyer_requests_refund_and_chats_live_with_agent(live_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice", email="alice@example.com")
    factories.agent(username="agent", first_name="Wei")
    order = factories.order_with_items(buyer=alice, items=[(7900, 2), (42900, 1)], order_no="202601000042")

    agent_context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    buyer_context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    agent_page, buyer_page = agent_context.new_page(), buyer_context.new_page()

    log_in(agent_page, live_stack, "agent")
    expect(agent_page).to_have_url(live_stack.url + "/console/")
    expect(agent_page.get_by_test_id("queue-item")).to_have_count(0)

    log_in(buyer_page, live_stack, "alice")
    expect(buyer_page).to_have_url(live_stack.url + "/orders/")
    screenshot(buyer_page, "buyer-orders")
    buyer_page.get_by_text(order.order_no).click()
    buyer_page.get_by_test_id("request-refund").click()
    buyer_page.check("input[value=return_and_refund]")
    buyer_page.get_by_test_id("refund-item-quantity").first.fill("1")
    buyer_page.select_option("select[name=reason]", "colour_differs")
    buyer_page.fill("textarea[name=description]", "颜色和商品图片差别很大")
    screenshot(buyer_page, "buyer-refund-form")
    buyer_page.get_by_test_id("submit-refund").click()

    ticket = RefundTicket.objects.get(order=order)
    expect(buyer_page).to_have_url(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(buyer_page.get_by_test_id("order-card")).to_contain_text(order.order_no)
    expect(buyer_page.get_by_test_id("ticket-status")).to_have_text("已申请")
    # The Celery worker's system message arrives over the socket, no reload.
    expect(buyer_page.get_by_test_id("message").first).to_contain_text(ticket.number)

    # The agent's queue shows the new ticket without a reload.
    row = agent_page.locator(f"[data-testid=queue-item][data-ticket-id='{ticket.pk}']")
    expect(row).to_be_visible()
    # The view counts follow too.
    expect(agent_page.get_by_test_id("view-open").locator(".count")).to_have_text("1")
    expect(row).to_contain_text(order.order_no)
    screenshot(agent_page, "agent-queue")
    # The only agent online, with room: the ticket was routed to them, no claiming needed.
    expect(row).to_contain_text("agent")
    row.get_by_role("link").click()
    expect(agent_page.get_by_test_id("assigned-agent")).to_have_text("agent")
    expect(agent_page.get_by_test_id("claim-ticket")).to_have_count(0)

    agent_page.get_by_test_id("chat-input").fill("您好，我是客服小张，请问颜色差别在哪里？")
    agent_page.get_by_test_id("chat-send").click()
    reply = buyer_page.get_by_test_id("message").filter(has_text="我是客服小张")
    expect(reply).to_be_visible(timeout=5000)

    buyer_page.get_by_test_id("chat-input").fill("实物偏橙色，图片是红色")
    buyer_page.get_by_test_id("chat-input").press("Enter")
    mine = buyer_page.get_by_test_id("message").filter(has_text="实物偏橙色")
    expect(mine).to_have_attribute("data-status", "sent")
    expect(mine).to_have_attribute("data-seq", re.compile(r"^\d+$"))
    expect(agent_page.get_by_test_id("message").filter(has_text="实物偏橙色")).to_be_visible(timeout=5000)

    screenshot(buyer_page, "buyer-chat")
    screenshot(agent_page, "agent-ticket")

    bodies = list(Message.objects.filter(conversation=ticket.conversation).order_by("seq").values_list("seq", "kind"))
    assert bodies == [(1, "system"), (2, "text"), (3, "text")]

    # History is there after a reload, in order.
    buyer_page.reload()
    expect(buyer_page.get_by_test_id("message")).to_have_count(3)
    buyer_page.goto(live_stack.url + "/refunds/")
    expect(buyer_page.get_by_test_id("ticket-row")).to_contain_text(ticket.number)
    # The list asks for its tickets' activity (lists.subscribe): the agent's next reply counts as unread, live.
    unread = buyer_page.get_by_test_id("ticket-row").get_by_test_id("unread-count")
    expect(unread).to_be_hidden()
    agent_page.get_by_test_id("chat-input").fill("已收到，马上为您处理")
    agent_page.get_by_test_id("chat-send").click()
    expect(unread).to_have_text("1", timeout=5000)
    screenshot(buyer_page, "buyer-refunds")
    agent_context.close()
    buyer_context.close()
