"""The managers' reports in a real browser: each page opens from the admin index, shows its charts, and its CSV
downloads with the numbers of the table; agents and buyers are kept out."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE, LiveStack, new_page
from tests.factories.reports import Spec, local, make
from tickets.models import FINAL_STATUSES, RefundReason
from tickets.models import TicketStatus as S
from tickets.reports.pages import PAGES
from tickets.roles import Role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


REASONS = ["quality_defect", "wrong_size", "changed_mind", "damaged_in_transit", "not_received", "colour_differs"]
STATUSES = [S.REFUNDED, S.REFUNDED, S.REJECTED, S.CLOSED, S.UNDER_REVIEW, S.CANCELLED, S.REFUNDED]
HANDOFFS = ["buyer_asked", "needs_approval", "angry", "needs_judgement"]
COMMENTS = ["处理很快，满意。", "退款太慢了。", "客服态度很好。", ""]


def some_tickets() -> str:
    """Three weeks of varied tickets in the default range (the last 30 days); returns the manager's username."""
    alice = factories.buyer(username="alice", first_name="Alice")
    agents = [factories.agent(username=name, first_name=name.title()) for name in ("wei", "lin", "fang")]
    factories.staff(Role.MANAGER, username="boss")
    today = timezone.localdate()
    number = 0
    for back in range(21, 0, -1):
        day = today - timedelta(days=back)
        for slot in range(back % 4 + 1):
            number += 1
            status = STATUSES[number % len(STATUSES)]
            agent = agents[number % 3] if number % 5 else None
            final = status in FINAL_STATUSES
            refunded = status == S.REFUNDED
            price = (number % 7 + 1) * 2900
            created = local(day, 9 + 2 * slot, number % 60)
            make(
                Spec(
                    created,
                    status,
                    reason=REASONS[number % len(REASONS)],
                    agent=agent,
                    first_response=(number * 7) % 110 + 5 if agent else None,
                    resolved=(number * 37) % 900 + 30 if final else None,
                    approved=price if refunded else None,
                    items=[(f"SKU-{number % 6:02d}", price, 1)],
                    paid_after=(number * 53) % 2000 + 120 if refunded else None,
                    handoff=HANDOFFS[number % len(HANDOFFS)] if agent and number % 2 else "",
                    rating=(number % 5 + 1, COMMENTS[number % 4], created + timedelta(days=1)) if final else None,
                ),
                buyer=alice,
            )
    return "boss"


def test_manager_opens_every_report_sees_a_chart_and_downloads_its_csv(
    live_stack: LiveStack, browser: object, screenshot: object, tmp_path: Path
) -> None:
    manager = some_tickets()
    for viewport, suffix in ((DESKTOP, "desktop"), (MOBILE, "mobile")):
        page = new_page(browser, live_stack, manager, viewport=viewport)
        page.goto(f"{live_stack.url}/admin/")
        expect(page.get_by_test_id("reports-module")).to_be_visible()
        for slug, report in PAGES.items():
            page.goto(f"{live_stack.url}/admin/")
            page.get_by_test_id("reports-module").locator(f"a[href$='/admin/reports/{slug}/']").first.click()
            expect(page.get_by_test_id("report-page")).to_have_attribute("data-report", slug)
            with translation.override("zh-hans"):  # the browser asks for Chinese
                expect(page.locator("#content h1")).to_have_text(str(report.title))
            chart = page.get_by_test_id("report-chart").first
            expect(chart).to_be_visible()
            assert chart.get_attribute("role") == "img"
            figure = page.get_by_test_id("report-figure").first
            table_rows = [
                [(cell.text_content() or "").strip() for cell in row.locator("th, td").all()]
                for row in figure.locator("tbody tr").all()
            ]
            if viewport is DESKTOP:
                with page.expect_download() as download_info:
                    figure.get_by_test_id("report-csv").click()
                download = download_info.value
                target = tmp_path / f"{slug}.csv"
                download.save_as(target)
                rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
                header = [(cell.text_content() or "").strip() for cell in figure.locator("thead th").all()]
                assert rows[0] == header
                assert table_rows
                assert rows[1:] == table_rows
            screenshot(page, f"reports-{slug}-{suffix}")  # type: ignore[operator]
        page.context.close()


def test_filters_apply_from_the_form(live_stack: LiveStack, browser: object) -> None:
    manager = some_tickets()
    page = new_page(browser, live_stack, manager)
    page.goto(f"{live_stack.url}/admin/reports/refunds/")
    page.select_option("select[name=reason]", "wrong_size")
    page.get_by_test_id("report-apply").click()
    expect(page).to_have_url(re.compile(r"reason=wrong_size"))
    expect(page.locator("select[name=reason]")).to_have_value("wrong_size")
    # Only the wrong-size refunds are left in the by-reason figure.
    with translation.override("zh-hans"):
        wrong_size = str(RefundReason.WRONG_SIZE.label)
    expect(page.locator("#figure-by-reason tbody tr")).to_have_count(1)
    expect(page.locator("#figure-by-reason tbody tr th")).to_have_text(wrong_size)
    expect(page.get_by_test_id("report-page")).to_be_visible()
    page.context.close()


@pytest.mark.parametrize("username", ["agent", "alice"])
def test_agents_and_buyers_are_kept_out(live_stack: LiveStack, browser: object, username: str) -> None:
    factories.agent(username="agent")
    factories.buyer(username="alice")
    page = new_page(browser, live_stack, username)
    response = page.goto(f"{live_stack.url}/admin/reports/volume/")
    # Not admin staff: the admin sends them to its login page, which refuses them (403), never a report and never
    # a redirect loop through the site's login.
    assert response is not None
    assert response.status == 403
    assert "/admin/login/" in page.url
    expect(page.get_by_test_id("report-page")).to_have_count(0)
    page.context.close()
