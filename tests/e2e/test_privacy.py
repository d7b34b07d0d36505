"""Issue #9 in a real browser: the buyer is warned before sending a card number and sends it masked; the
refund form takes a payout card and shows it masked; the buyer downloads their data and erases it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from messaging.models import Message
from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, new_page, wait_until
from tickets import workflow
from tickets.models import AccessAction, AccessLogEntry, DataExport, RefundTicket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CARD = "6228 4800 1234 5671"
MASKED = "622848******5671"


def test_buyer_is_warned_before_sending_a_card_number_and_sends_it_masked(
    live_stack: Any, browser: Any, screenshot: Any
) -> None:
    alice = factories.buyer(username="alice", first_name="Alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    for viewport, name in ((DESKTOP, "desktop"), (MOBILE, "mobile")):
        page = new_page(browser, live_stack, "alice", viewport)
        page.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
        composer = page.get_by_test_id("chat-input")
        composer.fill(f"退款请打到我的卡 {CARD}，谢谢")
        composer.press("Enter")
        warning = page.get_by_test_id("pii-warning")
        expect(warning).to_be_visible()
        expect(page.get_by_test_id("pii-preview")).to_have_text(f"退款请打到我的卡 {MASKED}，谢谢")
        warning.scroll_into_view_if_needed()
        screenshot(page, f"privacy-chat-warning-{name}")
        if name == "mobile":
            page.context.close()
            continue
        # Edit: nothing is sent, the number is selected in the composer.
        page.get_by_test_id("pii-edit").click()
        expect(warning).to_be_hidden()
        expect(composer).to_have_value(f"退款请打到我的卡 {CARD}，谢谢")
        assert page.evaluate("document.activeElement.selectionEnd - document.activeElement.selectionStart") == len(CARD)
        assert not Message.objects.filter(conversation=ticket.conversation, sender=alice).exists()
        # Send anyway: only the masked form leaves the browser and is shown.
        composer.press("Enter")
        page.get_by_test_id("pii-send-masked").click()
        mine = page.get_by_test_id("message").filter(has_text=MASKED)
        expect(mine).to_have_attribute("data-status", "sent")
        expect(page.get_by_test_id("message").filter(has_text=CARD)).to_have_count(0)
        wait_until(
            page,
            lambda: Message.objects.filter(conversation=ticket.conversation, sender=alice).exists(),
            "the message stored",
        )
        stored = Message.objects.get(conversation=ticket.conversation, sender=alice)
        assert stored.body == f"退款请打到我的卡 {MASKED}，谢谢"
        # An ordinary message with an order number and a phone number goes straight through.
        composer.fill(f"订单 {ticket.order.order_no}，电话 13812345678")
        composer.press("Enter")
        expect(page.get_by_test_id("message").filter(has_text="13812345678")).to_have_attribute("data-status", "sent")
        expect(warning).to_be_hidden()
        page.context.close()


def test_buyer_downloads_their_data_then_erases_it(
    live_stack: Any, browser: Any, screenshot: Any, tmp_path: Path
) -> None:
    alice = factories.buyer(username="alice", first_name="Alice", email="alice@example.com")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)], order_no="202609070000050001")

    # The refund form takes the card; the page after it shows it masked.
    mobile = new_page(browser, live_stack, "alice", MOBILE)
    mobile.goto(f"{live_stack.url}/orders/{order.order_no}/refund/")
    mobile.check("input[value=refund_only]")
    mobile.get_by_test_id("refund-item-quantity").first.fill("1")
    mobile.select_option("select[name=reason]", "quality_defect")
    mobile.check("input[name=payout_method][value=bank_card]")
    mobile.get_by_test_id("payout-account").fill(CARD)
    mobile.get_by_test_id("payout-fieldset").scroll_into_view_if_needed()
    screenshot(mobile, "privacy-refund-form-mobile")
    mobile.get_by_test_id("submit-refund").click()
    expect(mobile.get_by_test_id("payout-account-masked")).to_have_text(MASKED)
    expect(mobile.locator("body")).not_to_contain_text(CARD)
    ticket = RefundTicket.objects.get(order=order)
    assert ticket.payout_account_masked == MASKED
    assert CARD.replace(" ", "") not in ticket.payout_account_encrypted
    factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff cup photo")
    mobile.get_by_test_id("nav-privacy").click()
    expect(mobile.get_by_test_id("privacy-export")).to_be_visible()
    screenshot(mobile, "privacy-page-mobile")
    mobile.context.close()

    page = new_page(browser, live_stack, "alice", DESKTOP)
    page.goto(f"{live_stack.url}/account/privacy/")
    page.get_by_test_id("export-request").click()
    # The Celery worker builds the zip; the page shows the link once it is ready.
    wait_until(page, lambda: DataExport.objects.filter(buyer=alice, status="ready").exists(), "the export", 20)
    page.reload()
    with page.expect_download() as download_info:
        page.get_by_test_id("export-download").click()
    saved = tmp_path / "export.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        data = json.loads(archive.read("data.json"))
        assert data["account"]["email"] == "alice@example.com"
        assert data["refunds"][0]["payout_account"] == MASKED
        assert any(name.startswith("attachments/") for name in archive.namelist())
    screenshot(page, "privacy-page-desktop")

    # An open refund keeps the account: the buyer is told why.
    page.get_by_test_id("erase-password").fill("refundchat")
    page.get_by_test_id("erase-submit").click()
    expect(page.get_by_test_id("erase-error")).to_be_visible()
    workflow.do_transition(ticket_id=ticket.pk, name="cancel", user=alice)

    page.get_by_test_id("erase-password").fill("wrong")
    page.get_by_test_id("erase-submit").click()
    expect(page.get_by_test_id("erase-password-error")).to_be_visible()
    screenshot(page, "privacy-erase-refused-desktop")
    page.get_by_test_id("erase-password").fill("refundchat")
    page.get_by_test_id("erase-submit").click()
    expect(page).to_have_url(f"{live_stack.url}/accounts/login/")
    screenshot(page, "privacy-erased-desktop")

    alice.refresh_from_db()
    assert (alice.username, alice.email, alice.is_active) == (f"erased-{alice.pk}", "", False)
    ticket = RefundTicket.objects.get(pk=ticket.pk)
    assert (ticket.payout_account_masked, ticket.requested_amount_cents) == ("", 7900)
    assert not ticket.attachments.exists()
    assert AccessLogEntry.objects.filter(action=AccessAction.DATA_ERASED).count() == 1
    # The old session is gone.
    page.goto(f"{live_stack.url}/account/privacy/")
    expect(page).to_have_url(f"{live_stack.url}/accounts/login/?next=/account/privacy/")
