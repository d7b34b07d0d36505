"""The Content-Security-Policy in a real browser: the buyer's chat, the console's ticket page, the admin and
the API docs load and work with it, and Chromium reports no violation (issue #9, docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import new_page
from tickets.roles import Role
from tickets.services import claim_ticket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Recorded before any script of the page runs (an init script is the browser's, not the page's: CSP spares it).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber);
});
"""


def watch(page: Any) -> list[str]:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)
    return console


def violations(page: Any, console: list[str]) -> list[str]:
    page.wait_for_timeout(300)  # late violations (a socket, a lazy image) are reported asynchronously
    found = list(page.evaluate("window.__cspViolations || []"))
    return found + [text for text in console if "Content Security Policy" in text]


def test_pages_run_under_the_csp_without_a_violation(live_stack: Any, browser: Any) -> None:
    alice = factories.buyer(username="alice", first_name="Alice")
    wei = factories.agent(username="wei")
    factories.staff(Role.MANAGER, username="boss")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    claim_ticket(ticket_id=ticket.pk, agent=wei)

    buyer = new_page(browser, live_stack, "alice")
    console = watch(buyer)
    response = buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    # The chat's scripts run: the socket connects and a message goes out.
    buyer.get_by_test_id("chat-input").fill("你好")
    buyer.get_by_test_id("chat-input").press("Enter")
    expect(buyer.get_by_test_id("message").filter(has_text="你好")).to_have_attribute("data-status", "sent")
    assert violations(buyer, console) == []

    agent = new_page(browser, live_stack, "wei")
    console = watch(agent)
    agent.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")
    expect(agent.get_by_test_id("message").filter(has_text="你好")).to_be_visible()
    agent.goto(f"{live_stack.url}/console/")
    assert violations(agent, console) == []

    manager = new_page(browser, live_stack, "boss")
    console = watch(manager)
    for path in ("/admin/", f"/admin/tickets/refundticket/{ticket.pk}/change/", "/admin/tickets/refundticket/"):
        manager.goto(live_stack.url + path)
        expect(manager.locator("#content")).to_be_visible()
    manager.goto(live_stack.url + "/api/docs/")
    expect(manager.locator(".swagger-ui .info")).to_be_visible(timeout=15_000)
    assert violations(manager, console) == []

    # The listener works: an inline script is blocked and reported.
    manager.evaluate(
        "var s = document.createElement('script'); s.textContent = 'window.__ran = 1'; document.body.append(s)"
    )
    assert any("script-src" in found for found in violations(manager, console))
    assert manager.evaluate("typeof window.__ran") == "undefined"
