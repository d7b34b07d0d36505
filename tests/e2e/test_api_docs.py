"""The API's interactive docs (/api/docs/) in a real browser, with every request off the site blocked: Swagger UI
comes from the drf-spectacular-sidecar package, so the page works offline, and lists the API's operations."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, MOBILE

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "api_docs"), (MOBILE, "api_docs_mobile")])
def test_api_docs_render_offline(live_stack, browser, screenshot, viewport: dict[str, int], name: str):
    context = browser.new_context(locale="zh-CN", viewport=viewport)
    page = context.new_page()
    offsite: list[str] = []

    def only_this_site(route: Any) -> None:
        if route.request.url.startswith(live_stack.url):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_site)
    page.goto(f"{live_stack.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("RefundChat API")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() >= 30
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/tickets/{id}/approve_refund_only/")).to_be_visible()
    # One operation opened: its request body and the error answers are documented.
    page.locator(".opblock-summary", has_text="/api/v1/orders/").filter(has_text="POST").first.click()
    expect(page.locator(".opblock.is-open .responses-table")).to_contain_text("409")
    screenshot(page, name)
    assert offsite == []
    context.close()
