"""The chat in a real browser when the network fails, with receipts, typing, presence and two tabs."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from messaging.models import Message
from tests import factories
from tests.e2e.conftest import LiveStack, log_in
from tickets import services as ticket_services
from tickets.models import RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def claimed_ticket() -> RefundTicket:
    alice = factories.buyer(username="alice", first_name="Alice")
    agent = factories.agent(username="agent", first_name="Wei")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    return ticket


def open_chat(browser: Any, stack: LiveStack, username: str, path: str, **context_args: Any) -> Any:
    context = browser.new_context(locale="zh-CN", **context_args)
    page = context.new_page()
    log_in(page, stack, username)
    page.goto(stack.url + path)
    expect(page.get_by_test_id("connection-state")).to_be_hidden()
    return page


def texts(ticket: RefundTicket) -> list[str]:
    return list(
        Message.objects.filter(conversation=ticket.conversation, kind="text")
        .order_by("seq")
        .values_list("body", flat=True)
    )


def test_messages_typed_offline_survive_a_reload_and_arrive_once_in_order(
    live_stack, browser, claimed_ticket, screenshot
):
    ticket = claimed_ticket
    buyer = open_chat(browser, live_stack, "alice", f"/refunds/{ticket.pk}/", viewport={"width": 390, "height": 844})
    agent = open_chat(browser, live_stack, "agent", f"/console/tickets/{ticket.pk}/")

    buyer.context.set_offline(True)
    expect(buyer.get_by_test_id("connection-state")).to_be_visible()
    for text in ("第一条：包装破了", "第二条：里面的杯子也碎了"):
        buyer.get_by_test_id("chat-input").fill(text)
        buyer.get_by_test_id("chat-input").press("Enter")
    pending = buyer.get_by_test_id("message").filter(has_text="条：")
    expect(pending).to_have_count(2)
    expect(pending.first).to_have_attribute("data-status", "sending")
    expect(pending.first.get_by_test_id("message-status")).to_have_text("发送中")
    screenshot(buyer, "buyer-chat-offline")
    assert texts(ticket) == []

    # Reloading while offline loses the page, not the messages.
    with pytest.raises(PlaywrightError):
        buyer.reload()
    buyer.context.set_offline(False)
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")

    mine = buyer.get_by_test_id("message").filter(has_text="条：")
    expect(mine).to_have_count(2)
    expect(mine.nth(0)).to_contain_text("第一条")
    expect(mine.nth(1)).to_contain_text("第二条")
    expect(mine.nth(1)).not_to_have_attribute("data-status", "sending")
    theirs = agent.get_by_test_id("message").filter(has_text="条：")
    expect(theirs).to_have_count(2)
    expect(theirs.nth(0)).to_contain_text("第一条")
    assert texts(ticket) == ["第一条：包装破了", "第二条：里面的杯子也碎了"]
    # Nothing is left in the outbox to be sent a second time.
    buyer.reload()
    expect(buyer.get_by_test_id("message").filter(has_text="条：")).to_have_count(2)
    assert buyer.evaluate("Object.keys(localStorage).filter(k => k.startsWith('refundchat:outbox'))") == []
    buyer.context.close()
    agent.context.close()


def test_receipts_typing_and_presence_between_buyer_and_agent(live_stack, browser, claimed_ticket, screenshot):
    ticket = claimed_ticket
    buyer = open_chat(browser, live_stack, "alice", f"/refunds/{ticket.pk}/", viewport={"width": 390, "height": 844})
    presence = buyer.get_by_test_id("peer-presence")
    expect(presence).to_contain_text("离线")

    buyer.get_by_test_id("chat-input").fill("请问什么时候退款？")
    buyer.get_by_test_id("chat-input").press("Enter")
    mine = buyer.get_by_test_id("message").filter(has_text="什么时候退款")
    expect(mine.get_by_test_id("message-status")).to_have_text("已发送")

    # The agent opens the chat: the buyer sees them arrive and read the message.
    agent = open_chat(browser, live_stack, "agent", f"/console/tickets/{ticket.pk}/")
    expect(presence).to_contain_text("在线")
    expect(mine.get_by_test_id("message-status")).to_have_text("已读")
    expect(mine).to_have_attribute("data-status", "read")

    agent.get_by_test_id("chat-input").type("正在为您查询")
    expect(buyer.get_by_test_id("typing")).to_have_text("Wei 正在输入…")
    agent.get_by_test_id("chat-input").press("Enter")
    expect(buyer.get_by_test_id("message").filter(has_text="正在为您查询")).to_be_visible()
    expect(buyer.get_by_test_id("typing")).to_be_hidden()
    screenshot(buyer, "buyer-chat-receipts")

    agent.context.close()
    expect(presence).to_contain_text("离线")
    expect(presence).to_contain_text("最后在线")
    buyer.context.close()


def test_second_tab_of_the_same_buyer_shows_the_conversation_live(live_stack, browser, claimed_ticket):
    ticket = claimed_ticket
    first = open_chat(browser, live_stack, "alice", f"/refunds/{ticket.pk}/")
    second = first.context.new_page()
    second.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    agent = open_chat(browser, live_stack, "agent", f"/console/tickets/{ticket.pk}/")

    first.get_by_test_id("chat-input").fill("从第一个标签页发送")
    first.get_by_test_id("chat-input").press("Enter")
    expect(second.get_by_test_id("message").filter(has_text="从第一个标签页发送")).to_have_count(1)
    agent.get_by_test_id("chat-input").fill("客服回复")
    agent.get_by_test_id("chat-input").press("Enter")
    for page in (first, second):
        expect(page.get_by_test_id("message").filter(has_text="客服回复")).to_have_count(1)
    # The message from the first tab is the sender's own in the second tab too.
    expect(second.locator(".message.mine").filter(has_text="从第一个标签页发送")).to_have_count(1)

    # The buyer's open tabs read the reply: the agent sees it.
    expect(agent.locator(".message.mine").filter(has_text="客服回复")).to_have_attribute("data-status", "read")

    # With the chat closed, the ticket list counts the agent's new message as unread, live.
    first.close()
    second.goto(f"{live_stack.url}/refunds/")
    badge = second.locator(f"[data-ticket-id='{ticket.pk}'] [data-testid=unread-count]")
    expect(badge).to_be_hidden()
    agent.get_by_test_id("chat-input").fill("请补充一张照片")
    agent.get_by_test_id("chat-input").press("Enter")
    expect(badge).to_have_text("1")
    second.context.close()
    agent.context.close()
