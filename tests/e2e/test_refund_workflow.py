"""One return-and-refund case end to end: buyer, agent, warehouse and finance, the buyer's tracker live."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from media.models import Attachment, AttachmentStatus
from tests import factories
from tests.e2e.conftest import LiveStack, log_in
from tickets.models import RefundTicket
from tickets.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _quick_fake_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's fake payout gateway answers within a second and never fails."""
    monkeypatch.setenv("REFUNDCHAT_FAKE_PAYOUT_DELAY_SECONDS", "0.5")
    monkeypatch.setenv("REFUNDCHAT_FAKE_PAYOUT_FAILURE_RATE", "0")
    # Settled inside the worker, through the same signature check as the HTTP callback.
    monkeypatch.setenv("REFUNDCHAT_PAYOUT_CALLBACK_URL", "")


def staff_page(browser: Any, stack: LiveStack, username: str, ticket: RefundTicket) -> Any:
    page = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    log_in(page, stack, username)
    page.goto(f"{stack.url}/console/tickets/{ticket.pk}/")
    return page


def take(page: Any, name: str, fields: dict[str, str | Path] | None = None) -> None:
    action = page.get_by_test_id(f"action-{name}")
    if not action.evaluate("details => details.open"):
        action.locator("summary").click()
    for field, value in (fields or {}).items():
        control = action.locator(f"[name='{name}-{field}']")
        if isinstance(value, Path):
            control.set_input_files(str(value))
        elif control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        elif control.get_attribute("type") == "checkbox":
            control.check()
        else:
            control.fill(value)
    page.get_by_test_id(f"submit-{name}").click()


def parcel_photo() -> bytes:
    """A photo-like JPEG: a brown box on a grey table."""
    image = Image.new("RGB", (640, 480), (200, 200, 196))
    draw = ImageDraw.Draw(image)
    draw.rectangle((150, 120, 490, 380), fill=(176, 128, 80), outline=(120, 80, 40), width=6)
    draw.line((150, 250, 490, 250), fill=(220, 200, 150), width=14)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def test_return_and_refund_case_end_to_end(live_stack, browser, screenshot, tmp_path):
    alice = factories.buyer(username="alice", first_name="Alice")
    factories.agent(username="agent", first_name="Wei")
    factories.staff(Role.WAREHOUSE, username="warehouse")
    factories.staff(Role.FINANCE, username="finance")
    order = factories.order_with_items(buyer=alice, items=[(12900, 1)])
    ticket = factories.open_ticket(order=order, kind="return_and_refund", reason="wrong_size")

    buyer = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
    log_in(buyer, live_stack, "alice")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    current = buyer.get_by_test_id("tracker-current")
    expect(current).to_have_attribute("data-status", "requested")

    agent = staff_page(browser, live_stack, "agent", ticket)
    # The agent coming online takes the waiting ticket (routing), so there is nothing to claim.
    expect(agent.get_by_test_id("assigned-agent")).to_have_text("agent")
    take(agent, "require_return", {"amount": "129.00", "refund_shipping_fee": "on"})
    expect(agent.get_by_test_id("ticket-status")).to_have_text("待退货")
    # The buyer's tracker moves without a reload, with the promised time and the address in the chat.
    expect(current).to_have_attribute("data-status", "return_required")
    expect(buyer.get_by_test_id("tracker-promise")).to_be_visible()
    expect(buyer.get_by_test_id("message").filter(has_text="退货仓")).to_be_visible()
    expect(buyer.get_by_test_id("approved-amount")).to_have_text("¥137.00")
    screenshot(buyer, "buyer-tracker")

    # The page the refusal leads to refreshes its sections once its socket is up (lists.js).
    with buyer.expect_response(lambda response: response.request.resource_type == "fetch") as refresh:
        take(buyer, "ship_return", {"carrier": "SF", "tracking_no": "12345"})
    expect(buyer.locator(".flash-error")).to_contain_text("不是顺丰速运的运单号")
    refresh.value.finished()
    # What they typed is still there to correct, after that refresh too.
    expect(buyer.get_by_test_id("action-ship_return")).to_have_attribute("open", "")
    expect(buyer.locator("[name='ship_return-tracking_no']")).to_have_value("12345")
    screenshot(buyer, "buyer-refused-tracking-number-kept")
    take(buyer, "ship_return", {"carrier": "SF", "tracking_no": "SF1234567890123"})
    expect(current).to_have_attribute("data-status", "return_in_transit")

    warehouse = staff_page(browser, live_stack, "warehouse", ticket)
    warehouse.get_by_test_id("nav-returns").click()
    expect(warehouse.get_by_test_id("return-row")).to_contain_text("SF1234567890123")
    screenshot(warehouse, "warehouse-returns")
    warehouse.get_by_test_id("return-row").get_by_role("link").click()
    # The warehouse photographs the parcel's content with the receipt.
    photo = tmp_path / "IMG_2041.jpg"
    photo.write_bytes(parcel_photo())
    form = warehouse.get_by_test_id("action-receive_return")
    if not form.evaluate("details => details.open"):
        form.locator("summary").click()
    form.get_by_test_id("condition-photos").set_input_files(str(photo))
    screenshot(warehouse, "warehouse-receipt-form")
    take(warehouse, "receive_return", {"condition": "intact", "photos": photo})
    expect(current).to_have_attribute("data-status", "return_received")
    attachment = Attachment.objects.get(ticket=ticket)
    assert (attachment.uploader.username, attachment.sha256) == (
        "warehouse",
        hashlib.sha256(photo.read_bytes()).hexdigest(),
    )
    # Once the worker made its thumbnail, staff and the buyer see it in the timeline, linked to the photo.
    deadline = time.monotonic() + 20
    while Attachment.objects.get(pk=attachment.pk).status != AttachmentStatus.READY:
        assert time.monotonic() < deadline, "the photo was not processed"
        time.sleep(0.2)
    warehouse.reload()
    staff_photo = warehouse.get_by_test_id("timeline-photo")
    expect(staff_photo).to_have_attribute("href", f"/attachments/{attachment.pk}/original")
    expect(staff_photo.locator("img")).to_be_visible()
    buyer.reload()
    buyer.get_by_test_id("timeline").locator("xpath=..").locator("summary").click()
    thumbnail = buyer.get_by_test_id("timeline-photo").locator("img")
    expect(thumbnail).to_be_visible()
    # The thumbnail really loads through the permission-checked attachment view.
    buyer.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    buyer.get_by_test_id("timeline").scroll_into_view_if_needed()
    screenshot(buyer, "buyer-timeline-condition-photo")
    screenshot(warehouse, "warehouse-timeline-condition-photo")

    finance = staff_page(browser, live_stack, "finance", ticket)
    screenshot(finance, "finance-ticket-actions")
    take(finance, "request_payout")
    finance.get_by_test_id("nav-payouts").click()
    expect(finance.get_by_test_id("payout-list")).to_be_visible()
    screenshot(finance, "finance-payouts")
    finance.go_back()
    # The gateway reports the payout done by itself; the buyer's tracker reaches the end.
    expect(buyer.locator("[data-status=refunded].step-done")).to_be_visible(timeout=15000)
    expect(finance.get_by_test_id("payout-status")).to_have_text("已到账")
    expect(buyer.get_by_test_id("message").filter(has_text="已到账")).to_be_visible()

    ticket.refresh_from_db()
    assert (ticket.status, ticket.approved_amount_cents, ticket.return_tracking_no) == (
        "refunded",
        13700,
        "SF1234567890123",
    )
    for page in (buyer, agent, warehouse, finance):
        page.context.close()
