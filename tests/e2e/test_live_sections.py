"""Live ticket sections (static/js/lists.js) refresh around the user: a form they are typing in survives.

A change to the ticket (here, a colleague labelling it) makes every page open on it fetch itself again and
replace its live sections. The buyer typing a return's tracking number and the agent writing a hand-over note must
keep what they typed, their choices and their caret, and submit it, while the rest of the section updates.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import MOBILE, new_page, record_frames, wait_until
from tickets import services as ticket_services
from tickets.models import Label, RefundTicket, TicketEventKind, TicketStatus
from tickets.workflow import TransitionInput, do_transition

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def open_with_socket(page: Any, url: str) -> None:
    """Load `url` and wait until its socket is up and the refetch that follows the first connection is done."""
    frames = record_frames(page)
    with page.expect_response(lambda response: response.request.resource_type == "fetch" and response.url == url):
        page.goto(url)
    wait_until(page, lambda: any('"hello"' in frame for frame in frames), "the page's socket")


def mark_stale(page: Any, test_id: str) -> None:
    """Tag the element now on the page, so that a test can tell when a refresh has replaced it."""
    page.get_by_test_id(test_id).first.evaluate("element => { element.dataset.stale = 'yes'; }")


def test_a_live_refresh_keeps_the_forms_the_buyer_and_the_agent_are_typing_in(live_stack, browser, screenshot):
    alice = factories.buyer(username="alice", first_name="Alice")
    agent1 = factories.agent(username="agent1", first_name="李娜", last_name="")
    agent2 = factories.agent(username="agent2", first_name="王强", last_name="")
    ticket = factories.open_ticket(
        order=factories.order_with_items(buyer=alice, items=[(12900, 1)]), kind="return_and_refund"
    )
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent1)
    do_transition(ticket_id=ticket.pk, name="require_return", user=agent1, given=TransitionInput(amount_cents=12900))
    Label.objects.create(name="易碎品", colour="#c0392b")

    buyer = new_page(browser, live_stack, "alice", MOBILE)
    open_with_socket(buyer, f"{live_stack.url}/refunds/{ticket.pk}/")
    agent = new_page(browser, live_stack, "agent1")
    open_with_socket(agent, f"{live_stack.url}/console/tickets/{ticket.pk}/")

    # The buyer is halfway through the return form, the caret in the number.
    buyer.get_by_test_id("action-ship_return").locator("summary").click()
    buyer.locator("[name='ship_return-carrier']").select_option("SF")
    tracking = buyer.locator("[name='ship_return-tracking_no']")
    tracking.fill("SF12345")
    # The agent has the hand-over form open, an agent chosen and a note begun.
    agent.get_by_test_id("transfer").locator("summary").click()
    agent.get_by_test_id("transfer-agent").select_option(str(agent2.pk))
    note = agent.get_by_test_id("transfer-note")
    note.fill("买家")
    tracking.focus()
    for page in (buyer, agent):
        mark_stale(page, "ticket-status")
    # Meanwhile a colleague labels the ticket from their console.
    colleague = new_page(browser, live_stack, "agent2")
    colleague.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")
    colleague.get_by_test_id("labels-tools").locator("summary").click()
    colleague.get_by_test_id("label-choice").check()
    colleague.get_by_test_id("labels-submit").click()
    expect(colleague.get_by_test_id("ticket-label")).to_have_text("易碎品")

    # Both sections were replaced: the agent sees the new label...
    expect(agent.get_by_test_id("ticket-label")).to_have_text("易碎品")
    for page in (buyer, agent):
        expect(page.locator("[data-testid=ticket-status][data-stale]")).to_have_count(0)
    # ...and nobody lost anything: values, the open forms, the buyer's focus and caret.
    expect(buyer.get_by_test_id("action-ship_return")).to_have_attribute("open", "")
    expect(buyer.locator("[name='ship_return-carrier']")).to_have_value("SF")
    expect(tracking).to_have_value("SF12345")
    expect(tracking).to_be_focused()
    assert tracking.evaluate("input => input.selectionStart") == len("SF12345")
    expect(agent.get_by_test_id("transfer")).to_have_attribute("open", "")
    expect(agent.get_by_test_id("transfer-agent")).to_have_value(str(agent2.pk))
    expect(note).to_have_value("买家")
    screenshot(buyer, "buyer-return-form-kept-across-refresh")

    # They finish typing where they were and submit what they typed.
    buyer.keyboard.type("67890123")
    buyer.get_by_test_id("submit-ship_return").click()
    expect(buyer.get_by_test_id("tracker-current")).to_have_attribute("data-status", "return_in_transit")
    note.press("End")
    note.type("要求男同事处理")
    agent.get_by_test_id("transfer-submit").click()
    expect(agent.get_by_test_id("assigned-agent")).to_have_text("agent2")
    ticket = RefundTicket.objects.get(pk=ticket.pk)
    assert (ticket.status, ticket.return_carrier, ticket.return_tracking_no) == (
        TicketStatus.RETURN_IN_TRANSIT,
        "SF",
        "SF1234567890123",
    )
    assert ticket.assigned_agent == agent2
    assert ticket.events.filter(kind=TicketEventKind.ASSIGNED, reason="买家要求男同事处理").exists()
