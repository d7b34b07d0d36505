"""The triage assistant in a real browser against a real stack (Daphne, Celery worker):

alice opens a refund for a damaged item; the assistant greets her with her order, she answers with quick replies
and one photo (from the assistant's own upload button); the case is above the express-refund limit, so the
assistant hands it off: the online agent is given the ticket and finds the assistant's summary note on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import AssistantDialog, AssistantState, Message, MessageKind
from tests import factories
from tests.e2e.conftest import MOBILE, new_page
from tests.e2e.test_evidence import photo
from tests.stack import LiveStack, running_stack
from tickets.models import RefundTicket, TicketEvent, TicketEventKind, TicketNote

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def assistant_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    """The live stack with the assistant on (tests/stack.py keeps it off for the other browser tests)."""
    with running_stack(tmp_path, extra_env={"REFUNDCHAT_ASSISTANT_ENABLED": "1"}) as stack:
        yield stack


def test_alice_is_triaged_and_the_agent_gets_the_summary(
    assistant_stack: LiveStack, browser: Any, screenshot: Any, tmp_path: Path
) -> None:
    alice = factories.buyer(username="alice", first_name="Alice")
    factories.agent(username="agent", first_name="Wei")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)], order_no="202601000777")
    order.items.update(title="手工陶瓷马克杯")

    agent = new_page(browser, assistant_stack, "agent")  # on the console: online, so routing can pick them
    expect(agent.get_by_test_id("queue-item")).to_have_count(0)

    buyer = new_page(browser, assistant_stack, "alice")
    buyer.goto(f"{assistant_stack.url}/orders/{order.order_no}/refund/")
    buyer.check("input[value=refund_only]")
    buyer.get_by_test_id("refund-item-quantity").first.fill("1")
    buyer.select_option("select[name=reason]", "damaged_in_transit")
    buyer.get_by_test_id("submit-refund").click()
    ticket = RefundTicket.objects.get(order=order)
    expect(buyer).to_have_url(f"{assistant_stack.url}/refunds/{ticket.pk}/")

    # The greeting arrives live: by name, with the order card and two quick replies.
    greeting = buyer.locator(".message.kind-assistant").first
    expect(greeting).to_contain_text("Alice")
    expect(greeting.get_by_test_id("order-card-message")).to_contain_text(order.order_no)
    greeting.get_by_test_id("quick-reply").filter(has_text="是的，就是这个订单").click()

    problems = buyer.locator(".message.kind-assistant").nth(1)
    expect(problems.get_by_test_id("quick-reply")).to_have_count(9)
    screenshot(buyer, "triage-buyer-problem-desktop")
    phone = new_page(browser, assistant_stack, "alice", viewport=MOBILE)
    phone.goto(f"{assistant_stack.url}/refunds/{ticket.pk}/")
    expect(phone.locator(".message.kind-assistant").nth(1).get_by_test_id("quick-reply")).to_have_count(9)
    phone.get_by_test_id("quick-reply").last.scroll_into_view_if_needed()
    screenshot(phone, "triage-buyer-problem-mobile")
    problems.get_by_test_id("quick-reply").filter(has_text="运输途中破损").click()

    ask = buyer.locator(".message.kind-assistant").nth(2)
    expect(ask).to_contain_text("外包装箱")
    with buyer.expect_file_chooser() as chooser:
        ask.get_by_test_id("assistant-upload").click()
    chooser.value.set_files(str(photo(tmp_path / "box.jpg")))

    # Evidence checked, policy checked, ¥79.00 is above the express limit: handed off.
    expect(buyer.locator(".message.kind-assistant").last).to_contain_text("转接人工客服", timeout=20_000)
    screenshot(buyer, "triage-buyer-desktop")

    dialog = AssistantDialog.objects.get(conversation__ticket=ticket)
    assert dialog.state == AssistantState.HANDED_OFF
    assert dialog.problem == "damaged_in_transit"
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.ASSISTANT_HANDOFF)
    assert event.reason == "needs_approval"
    texts = list(
        Message.objects.filter(conversation__ticket=ticket, sender=alice, kind=MessageKind.TEXT)
        .exclude(body="")
        .values_list("body", flat=True)
    )
    assert texts == ["是的，就是这个订单", "运输途中破损"]  # the quick replies, sent as messages

    # The agent was given the ticket and reads the assistant's summary.
    row = agent.locator(f"[data-testid=queue-item][data-ticket-id='{ticket.pk}']")
    expect(row).to_contain_text("agent", timeout=20_000)
    row.get_by_role("link").click()
    note = agent.get_by_test_id("note").first
    expect(note).to_contain_text("退款助手摘要")
    for part in (order.order_no, "手工陶瓷马克杯", "运输途中破损", "照片 × 1", "建议处理"):
        expect(note).to_contain_text(part)
    expect(agent.get_by_test_id("assistant-handback")).to_be_visible()
    note.scroll_into_view_if_needed()
    screenshot(agent, "triage-agent-summary")
    assert TicketNote.objects.get(ticket=ticket).author.username == "refund-assistant"

    # The phone got the rest live: the photo prompt, and the quick replies gone once answered.
    expect(phone.locator(".message.kind-assistant").last).to_contain_text("转接人工客服")
    expect(phone.locator("[data-testid=quick-reply]:visible")).to_have_count(0)
    phone.locator(".message.kind-assistant").last.scroll_into_view_if_needed()
    screenshot(phone, "triage-buyer-mobile")
