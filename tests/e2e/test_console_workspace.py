"""The agents' workspace in real browsers: internal notes stay internal, canned replies with "/", CSAT."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, LiveStack, new_page, record_frames
from tickets.models import CannedReply, Label, RefundTicket, SatisfactionRating, TicketNote

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "内部：疑似职业退款人 check-7731"


@pytest.fixture(autouse=True)
def _quick_fake_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's fake payout gateway answers within a second and never fails."""
    monkeypatch.setenv("REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS", "0.5")
    monkeypatch.setenv("REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE", "0")
    monkeypatch.setenv("REFUNDCHAT_PAYOUT_CALLBACK_URL", "")


def take(page: Any, name: str, fields: dict[str, str] | None = None) -> None:
    action = page.get_by_test_id(f"action-{name}")
    if not action.evaluate("details => details.open"):
        action.locator("summary").click()
    for field, value in (fields or {}).items():
        action.locator(f"[name='{name}-{field}']").fill(value)
    page.get_by_test_id(f"submit-{name}").click()


def both_sizes(page: Any, screenshot: Any, name: str, focus: Any = None) -> None:
    """A desktop and a 390 px wide screenshot of the page as it is now (scrolled to `focus`, a locator)."""
    for size, viewport in (("desktop", DESKTOP), ("mobile", MOBILE)):
        page.set_viewport_size(viewport)
        if focus is not None:
            focus.scroll_into_view_if_needed()
        screenshot(page, f"{name}-{size}")
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def case(transactional_db: None) -> dict[str, Any]:
    alice = factories.buyer(username="alice", first_name="Alice")
    agent = factories.agent(username="agent", first_name="Wei")
    lin = factories.agent(username="lin", first_name="Lin")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)], order_no="202611110777")
    ticket = factories.open_ticket(order=order)
    return {"alice": alice, "agent": agent, "lin": lin, "ticket": ticket}


def open_ticket_as_agent(browser: Any, stack: LiveStack, ticket: RefundTicket) -> Any:
    agent = new_page(browser, stack, "agent")
    agent.goto(f"{stack.url}/console/tickets/{ticket.pk}/")
    # The agent coming online takes the waiting ticket (routing); reload so the composer is there.
    expect(agent.get_by_test_id("assigned-agent")).to_have_text("agent")
    if not agent.get_by_test_id("chat-input").count():
        agent.reload()
    expect(agent.get_by_test_id("chat-input")).to_be_visible()
    return agent


def test_internal_note_never_reaches_alices_open_page(live_stack, browser, screenshot, case):
    ticket = case["ticket"]
    Label.objects.create(name="VIP", colour="#7c3aed")
    Label.objects.create(name="疑似欺诈", colour="#111827")
    alice = new_page(browser, live_stack, "alice", MOBILE)
    alice_frames = record_frames(alice)
    alice.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(alice.get_by_test_id("chat")).to_be_visible()

    agent = open_ticket_as_agent(browser, live_stack, ticket)
    lin = new_page(browser, live_stack, "lin")
    lin.goto(f"{live_stack.url}/console/")
    expect(lin.get_by_test_id("mentions-badge")).to_be_hidden()

    agent.get_by_test_id("note-input").fill(f"{SECRET} @lin 请帮忙核实")
    agent.get_by_test_id("note-submit").click()
    expect(agent.get_by_test_id("note").filter(has_text=SECRET)).to_be_visible()
    both_sizes(agent, screenshot, "workspace-notes", focus=agent.get_by_test_id("notes"))
    # lin is told live: the mentions badge on the queue page goes up without a reload.
    expect(lin.get_by_test_id("mentions-badge")).to_have_text("1")
    # A chat message after the note proves alice's socket is live and caught up.
    agent.get_by_test_id("chat-input").fill("您好，正在为您处理")
    agent.get_by_test_id("chat-input").press("Enter")
    expect(alice.get_by_test_id("message").filter(has_text="正在为您处理")).to_be_visible()

    assert TicketNote.objects.filter(ticket=ticket).count() == 1
    assert SECRET not in alice.content()
    assert "check-7731" not in alice.content()
    assert alice_frames, "alice's page received no frames at all"
    assert not [frame for frame in alice_frames if "check-7731" in frame or "ticket.note" in frame]
    alice.reload()
    expect(alice.get_by_test_id("chat")).to_be_visible()
    assert "check-7731" not in alice.content()

    # Labels and the team hand-over, for the screenshots of the workspace.
    agent.get_by_test_id("labels-tools").locator("summary").click()
    agent.get_by_test_id("label-choice").first.check()
    agent.get_by_test_id("labels-submit").click()
    expect(agent.get_by_test_id("ticket-label")).to_have_text("VIP")
    agent.get_by_test_id("team-tools").locator("summary").click()
    agent.get_by_test_id("team-select").select_option("finance")
    agent.get_by_test_id("team-note").fill("请确认支付渠道")
    agent.get_by_test_id("team-submit").click()
    expect(agent.get_by_test_id("ticket-team")).to_be_visible()
    both_sizes(agent, screenshot, "workspace-ticket")

    lin.get_by_test_id("nav-mentions").click()
    expect(lin.get_by_test_id("mention")).to_contain_text(SECRET)
    both_sizes(lin, screenshot, "workspace-mentions")
    lin.goto(f"{live_stack.url}/console/")
    expect(lin.get_by_test_id("row-label")).to_have_text("VIP")
    both_sizes(lin, screenshot, "workspace-queue-labels")
    lin.keyboard.press("/")
    expect(lin.get_by_test_id("console-search")).to_be_focused()
    lin.keyboard.type("202611110777")
    lin.keyboard.press("Enter")
    expect(lin.get_by_test_id("search-ticket")).to_have_count(1)
    both_sizes(lin, screenshot, "workspace-search")
    lin.get_by_test_id("console-search").fill("正在为您处理")
    lin.get_by_test_id("console-search").press("Enter")
    lin.get_by_test_id("search-in-messages").click()
    expect(lin.get_by_test_id("search-message")).to_have_count(1)
    for page in (alice, agent, lin):
        page.context.close()


def test_canned_reply_inserted_with_slash_and_received_filled(live_stack, browser, screenshot, case):
    ticket = case["ticket"]
    CannedReply.objects.create(
        owner=case["agent"],
        title="退款进度",
        language="zh-hans",
        body="{buyer_name}您好，订单 {order_no} 的退款 {refund_amount} 正在处理。{unknown}",
    )
    CannedReply.objects.create(owner=None, title="Greeting", language="en", body="Hello {buyer_name}!")
    alice = new_page(browser, live_stack, "alice", MOBILE)
    alice.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(alice.get_by_test_id("chat")).to_be_visible()
    agent = open_ticket_as_agent(browser, live_stack, ticket)

    composer = agent.get_by_test_id("chat-input")
    composer.click()
    composer.press_sequentially("/tkjd")  # fuzzy: no exact substring of the title
    expect(agent.get_by_test_id("canned-picker")).to_be_visible()
    composer.fill("/")
    composer.press_sequentially("退款")
    expect(agent.get_by_test_id("canned-option").first).to_contain_text("退款进度")
    both_sizes(agent, screenshot, "workspace-canned-picker")
    composer.press("Enter")
    filled = "Alice您好，订单 202611110777 的退款 ¥79.00 正在处理。{unknown}"
    expect(composer).to_have_value(filled)
    expect(agent.get_by_test_id("canned-picker")).to_be_hidden()
    composer.press("Enter")
    expect(alice.get_by_test_id("message").filter(has_text="订单 202611110777 的退款 ¥79.00")).to_be_visible()
    expect(composer).to_have_value("")

    agent.get_by_test_id("nav-canned").click()
    expect(agent.get_by_test_id("canned-reply")).to_have_count(2)
    both_sizes(agent, screenshot, "workspace-canned-list")
    agent.get_by_test_id("canned-new").click()
    both_sizes(agent, screenshot, "workspace-canned-form")
    for page in (alice, agent):
        page.context.close()


def test_alice_rates_five_after_the_refund_and_the_agent_sees_it(live_stack, browser, screenshot, case):
    ticket = case["ticket"]
    alice = new_page(browser, live_stack, "alice", MOBILE)
    alice_frames = record_frames(alice)
    alice.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(alice.get_by_test_id("chat")).to_be_visible()
    agent = open_ticket_as_agent(browser, live_stack, ticket)

    take(agent, "approve_refund_only", {"amount": "79.00"})
    expect(agent.get_by_test_id("ticket-status")).to_have_attribute("data-ticket-status", "approved_refund_only")
    take(agent, "request_payout")
    # The fake gateway pays; alice's page turns to the rating widget and the chat asks for it, live.
    expect(alice.get_by_test_id("csat-score-5")).to_be_attached(timeout=15000)
    expect(alice.get_by_test_id("message").filter(has_text="请在下方为我们打 1 到 5 星")).to_be_visible()
    alice.get_by_test_id("csat").scroll_into_view_if_needed()
    screenshot(alice, "workspace-csat-widget-mobile")
    alice.set_viewport_size(DESKTOP)
    screenshot(alice, "workspace-csat-widget-desktop")
    alice.set_viewport_size(MOBILE)

    alice.locator("label.star-choice", has=alice.get_by_test_id("csat-score-5")).click()
    alice.get_by_test_id("csat-comment").fill("很快，谢谢！")
    alice.get_by_test_id("csat-submit").click()
    expect(alice.get_by_test_id("csat-done")).to_be_visible()
    # The agent's page shows the rating without a reload.
    expect(agent.get_by_test_id("ticket-rating")).to_contain_text("5/5")
    expect(agent.get_by_test_id("ticket-rating-comment")).to_have_text("很快，谢谢！")
    both_sizes(agent, screenshot, "workspace-rating")
    rating = SatisfactionRating.objects.get(ticket=ticket)
    assert (rating.score, rating.comment) == (5, "很快，谢谢！")
    # Once only: the widget does not come back.
    alice.reload()
    expect(alice.get_by_test_id("csat-done")).to_be_visible()
    expect(alice.get_by_test_id("csat-score-5")).to_have_count(0)
    assert all("ticket.note" not in frame for frame in alice_frames)
    assert any(json.loads(frame).get("type") == "ticket.updated" for frame in alice_frames if frame.startswith("{"))
    for page in (alice, agent):
        page.context.close()
