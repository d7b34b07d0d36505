"""Script payloads in every user-supplied field stay inert text in the buyer's page, the console and the admin,
in Chromium (issue #9, docs/security.md). Escaping is checked on its own, not only the CSP's net: the payload must
show as text and make no element."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from messaging import services as messaging_services
from tests import factories
from tests.e2e.conftest import new_page, wait_until
from tickets import notes, workflow
from tickets.canned import save_reply
from tickets.models import Label
from tickets.roles import Role
from tickets.services import claim_ticket, set_labels
from tickets.workflow import TransitionInput

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAYLOAD = '<img src=x onerror=window.__xss=1><script>window.__xss=1</script>"><svg onload=window.__xss=1>'
SHORT = "<img src=x onerror=__xss=1>"  # for fields of 40 characters (labels)
# Elements a payload would make if it were markup.
INJECTED = "img[src='x'], svg[onload], img[onerror], script:not([src]):not([type='application/json'])"


def inert(page: Any, *, shows: str = "<img src=x") -> None:
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator(INJECTED).count() == 0
    assert shows in page.evaluate("document.body.innerText")


def test_payloads_in_every_field_stay_text_in_the_buyer_page_console_and_admin(live_stack: Any, browser: Any) -> None:
    alice = factories.buyer(username="alice", first_name=PAYLOAD[:150])
    wei = factories.agent(username="wei", first_name="Wei")
    factories.staff(Role.MANAGER, username="boss")
    ticket = factories.open_ticket(
        order=factories.order_with_items(buyer=alice, items=[(7900, 1)]), description=f"描述 {PAYLOAD}"
    )
    claim_ticket(ticket_id=ticket.pk, agent=wei)
    conversation = ticket.conversation.pk
    messaging_services.post_message(conversation_id=conversation, sender=alice, body=PAYLOAD, client_id=uuid.uuid4())
    messaging_services.post_product_card(
        conversation_id=conversation,
        sender=wei,
        client_id=uuid.uuid4(),
        title=PAYLOAD,
        url="https://shop.example.com/p/1",
        price_cents=100,
    )
    attachment = factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff evidence")
    type(attachment).objects.filter(pk=attachment.pk).update(filename=f"{PAYLOAD}.jpg")
    notes.add_note(ticket_id=ticket.pk, author=wei, body=f"note {PAYLOAD}")
    label = Label.objects.create(name=SHORT, colour="#e11d48")
    set_labels(ticket_id=ticket.pk, by=wei, label_ids=[label.pk])
    save_reply(user=wei, title=SHORT, language="zh-hans", body=PAYLOAD)
    rejected = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
    workflow.do_transition(ticket_id=rejected.pk, name="reject", user=wei, given=TransitionInput(reason=PAYLOAD))

    buyer = new_page(browser, live_stack, "alice")
    buyer.goto(f"{live_stack.url}/refunds/{ticket.pk}/")
    expect(buyer.get_by_test_id("message").filter(has_text="<script>window.__xss=1</script>").first).to_be_visible()
    inert(buyer)
    other = new_page(browser, live_stack, "alice")
    other.goto(f"{live_stack.url}/refunds/{rejected.pk}/")
    inert(other)
    other.goto(f"{live_stack.url}/refunds/")
    inert(other, shows="")

    agent = new_page(browser, live_stack, "wei")
    agent.goto(f"{live_stack.url}/console/tickets/{ticket.pk}/")
    expect(agent.get_by_test_id("message").first).to_be_visible()
    inert(agent)
    # A live message: built by chat.js in the buyer's page, and again from its frame in the agent's.
    buyer.get_by_test_id("chat-input").fill(f"live {PAYLOAD}")
    buyer.get_by_test_id("chat-input").press("Enter")
    expect(agent.get_by_test_id("message").filter(has_text="live <img src=x")).to_be_visible()
    inert(agent)
    inert(buyer)
    # The canned replies picker puts the reply into the composer as text.
    agent.goto(f"{live_stack.url}/console/")
    inert(agent, shows=SHORT)
    agent.goto(f"{live_stack.url}/console/replies/")
    inert(agent)

    manager = new_page(browser, live_stack, "boss")
    for path in (
        "/admin/tickets/refundticket/",
        f"/admin/tickets/refundticket/{ticket.pk}/change/",
        "/admin/messaging/message/",
        "/admin/auth/user/",
        "/admin/tickets/label/",
    ):
        manager.goto(live_stack.url + path)
        expect(manager.locator("#content")).to_be_visible()
        wait_until(manager, lambda: True, "the page")
        inert(manager, shows="")
