"""Buyer pages and the console, through the real URLconf, middleware and templates."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tickets import services, workflow
from tickets.models import RefundTicket
from tickets.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(alice):
    return factories.order_with_items(buyer=alice, items=[(7900, 2), (129900, 1)], order_no="202601000001")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_require_login(order):
    for url in ("/orders/", f"/orders/{order.order_no}/", "/refunds/", "/console/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_buyer_sees_own_orders_with_prices_in_yuan(alice, order):
    other = factories.order_with_items(buyer=factories.buyer(), items=[(100, 1)], order_no="202699999999")
    response = client_for(alice).get("/orders/")
    assert response.status_code == 200
    assert order.order_no.encode() in response.content
    assert other.order_no.encode() not in response.content
    assert "¥1,465.00" in response.content.decode()  # 2 × 79.00 + 1,299.00 + 8.00 shipping


def test_pages_default_to_simplified_chinese_and_switch_to_english(alice, order):
    client = client_for(alice)
    assert "我的订单" in client.get("/orders/").content.decode()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/orders/"})
    assert response.status_code == 302
    assert "My orders" in client.get("/orders/").content.decode()


def test_refund_request_creates_ticket_and_lands_in_chat(alice, order, django_capture_on_commit_callbacks):
    first = order.items.first()
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/orders/{order.order_no}/refund/",
            {"kind": "return_and_refund", "reason": "wrong_size", f"item_{first.pk}": "1", "description": "偏小"},
        )
    ticket = RefundTicket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/refunds/{ticket.pk}/"
    page = client.get(response["Location"]).content.decode()
    for testid in ("order-card", "ticket-status", "chat-input", "chat-send", "message"):
        assert f'data-testid="{testid}"' in page
    assert "已申请" in page
    assert ticket.number in page  # the system message of the worker
    assert ticket.number in client.get("/refunds/").content.decode()


def test_refund_form_errors_change_nothing(alice, order):
    first = order.items.first()
    client = client_for(alice)
    response = client.post(f"/orders/{order.order_no}/refund/", {"kind": "refund_only", "reason": "wrong_size"})
    assert response.status_code == 400
    assert "请至少选择一件要退款的商品" in response.content.decode()
    response = client.post(
        f"/orders/{order.order_no}/refund/", {"kind": "refund_only", "reason": "wrong_size", f"item_{first.pk}": "9"}
    )
    assert response.status_code == 400
    assert not RefundTicket.objects.exists()


def test_second_ticket_for_same_item_is_refused_with_message(alice, order):
    first = order.items.first()  # two units bought
    services.create_refund_ticket(
        buyer=alice,
        order_no=order.order_no,
        kind="refund_only",
        reason="other",
        items=[services.RequestedItem(order_item_id=first.pk, quantity=1)],
    )
    client = client_for(alice)
    # The form sends the buyer to the open ticket instead of offering the item again.
    page = client.get(f"/orders/{order.order_no}/refund/").content.decode()
    ticket = RefundTicket.objects.get()
    assert f'href="/refunds/{ticket.pk}/" data-testid="open-ticket-link">退款中：{ticket.number}' in page
    response = client.post(
        f"/orders/{order.order_no}/refund/", {"kind": "refund_only", "reason": "wrong_size", f"item_{first.pk}": "1"}
    )
    assert response.status_code == 400
    assert RefundTicket.objects.count() == 1


def test_other_buyers_order_and_ticket_are_404(alice, order):
    ticket = factories.open_ticket(order=order)
    bob = client_for(factories.buyer(username="bob"))
    assert bob.get(f"/orders/{order.order_no}/").status_code == 404
    assert bob.get(f"/orders/{order.order_no}/refund/").status_code == 404
    assert bob.post(f"/orders/{order.order_no}/refund/", {"kind": "refund_only", "reason": "other"}).status_code == 404
    assert bob.get(f"/refunds/{ticket.pk}/").status_code == 404
    assert not RefundTicket.objects.exclude(pk=ticket.pk).exists()


def test_buyer_cannot_open_console(alice):
    client = client_for(alice)
    assert client.get("/console/").status_code == 403
    assert client.get("/").url == reverse("tickets:order_list")


@pytest.mark.parametrize("role", [Role.AGENT, Role.FINANCE, Role.WAREHOUSE, Role.MANAGER])
def test_staff_land_in_console(role):
    client = client_for(factories.staff(role))
    assert client.get("/").url == reverse("console:queue")
    assert client.get("/console/").status_code == 200


def test_console_queue_lists_open_tickets_with_bounded_queries(order, django_assert_max_num_queries):
    for n in range(3):
        factories.open_ticket(order=factories.order_with_items(buyer=order.buyer, items=[(100 * (n + 1), 1)]))
    client = client_for(factories.agent(username="agent"))
    client.get("/console/")  # warm the session and permission caches
    # +3 since the workspace (issue #6): the labels of the page's rows, the label filter's choices, unseen mentions.
    with django_assert_max_num_queries(10):
        response = client.get("/console/")
    assert response.content.decode().count('data-testid="queue-item"') == 3


def test_agent_claims_from_console_and_second_agent_is_told(order):
    ticket = factories.open_ticket(order=order)
    agent = client_for(factories.agent(username="agent"))
    page = agent.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="claim-ticket"' in page
    assert 'data-testid="chat-readonly"' in page
    response = agent.post(f"/console/tickets/{ticket.pk}/claim/", follow=True)
    page = response.content.decode()
    assert 'data-testid="chat-input"' in page
    assert 'data-testid="claim-ticket"' not in page

    agent2 = client_for(factories.agent(username="agent2"))
    response = agent2.post(f"/console/tickets/{ticket.pk}/claim/", follow=True)
    assert "已被 agent 领取" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.assigned_agent.username == "agent"


@pytest.mark.parametrize("role", [Role.FINANCE, Role.WAREHOUSE, Role.MANAGER])
def test_non_agents_cannot_claim(order, role):
    ticket = factories.open_ticket(order=order)
    response = client_for(factories.staff(role)).post(f"/console/tickets/{ticket.pk}/claim/", follow=True)
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert ticket.assigned_agent is None


def test_claim_is_post_only_and_404_for_missing_ticket():
    agent = client_for(factories.agent())
    assert agent.get("/console/tickets/1/claim/").status_code == 405
    assert agent.post("/console/tickets/999/claim/").status_code == 404


@pytest.fixture
def return_ticket(alice):
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    return factories.open_ticket(order=order, kind="return_and_refund")


def require_return(ticket: RefundTicket) -> None:
    """An agent asks for the items back: the buyer's next step is to ship them."""
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="require_return",
        user=factories.agent(username="agent"),
        given=workflow.TransitionInput(amount_cents=7900),
    )


def test_agent_takes_a_step_with_its_form_and_the_buyer_sees_the_tracker(alice, return_ticket):
    agent = factories.agent(username="agent")
    console = client_for(agent)
    page = console.get(f"/console/tickets/{return_ticket.pk}/").content.decode()
    assert 'data-testid="action-require_return"' in page
    assert 'data-testid="action-cancel"' not in page  # the buyer's step, not the agent's

    response = console.post(
        f"/console/tickets/{return_ticket.pk}/actions/require_return/",
        {"require_return-amount": "79.00", "require_return-refund_shipping_fee": "on"},
        follow=True,
    )
    assert response.status_code == 200
    return_ticket.refresh_from_db()
    assert (return_ticket.status, return_ticket.approved_amount_cents) == ("return_required", 8700)

    buyer_page = client_for(alice).get(f"/refunds/{return_ticket.pk}/").content.decode()
    assert 'data-testid="tracker-current"' in buyer_page
    assert 'data-status="return_required"' in buyer_page
    assert 'data-testid="action-ship_return"' in buyer_page
    assert "¥87.00" in buyer_page


def test_bad_tracking_number_is_refused_in_the_buyers_language_and_changes_nothing(alice, return_ticket):
    require_return(return_ticket)
    response = client_for(alice).post(
        f"/refunds/{return_ticket.pk}/actions/ship_return/",
        {"ship_return-carrier": "SF", "ship_return-tracking_no": "12345"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "不是顺丰速运的运单号" in response.content.decode()
    return_ticket.refresh_from_db()
    assert (return_ticket.status, return_ticket.return_tracking_no) == ("return_required", "")


def action_form(page: bytes | str, name: str) -> str:
    """The <details> of action `name` on a rendered ticket page, as HTML ("" when the page has none)."""
    text = page.decode() if isinstance(page, bytes) else page
    found = re.search(rf'<details[^>]*data-testid="action-{name}".*?</details>', text, re.S)
    return found.group(0) if found else ""


def test_a_refused_action_comes_back_filled_in_with_what_was_typed_once(alice, return_ticket):
    require_return(return_ticket)
    other = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(5900, 1)]))
    buyer = client_for(alice)
    typed = {"ship_return-carrier": "SF", "ship_return-tracking_no": "SF12345"}
    response = buyer.post(f"/refunds/{return_ticket.pk}/actions/ship_return/", typed, follow=True)
    form = action_form(response.content, "ship_return")
    assert re.match(r"<details[^>]* open data-kept-input>", form)
    assert re.search(r'<input [^>]*name="ship_return-tracking_no"[^>]*value="SF12345"', form)
    assert re.search(r'<option value="SF" selected>', form)
    # Shown once: neither another ticket's page nor a reload fills it in again.
    buyer.post(f"/refunds/{return_ticket.pk}/actions/ship_return/", typed)
    assert "data-kept-input" not in buyer.get(f"/refunds/{other.pk}/").content.decode()
    again = action_form(buyer.get(f"/refunds/{return_ticket.pk}/").content, "ship_return")
    assert again
    assert "SF12345" not in again
    assert "data-kept-input" not in again
    return_ticket.refresh_from_db()
    assert (return_ticket.status, return_ticket.return_tracking_no) == ("return_required", "")


def test_an_agents_refused_amount_comes_back_in_the_console_form(return_ticket):
    console = client_for(factories.agent(username="agent"))
    response = console.post(
        f"/console/tickets/{return_ticket.pk}/actions/require_return/",
        {"require_return-amount": "-3", "require_return-refund_shipping_fee": "on"},
        follow=True,
    )
    form = action_form(response.content, "require_return")
    assert re.match(r"<details[^>]* open data-kept-input>", form)
    assert re.search(r'<input [^>]*name="require_return-amount"[^>]*value="-3"', form)
    assert re.search(r'<input [^>]*name="require_return-refund_shipping_fee"[^>]*checked', form)
    return_ticket.refresh_from_db()
    assert return_ticket.status == "requested"


def test_other_buyers_and_unknown_actions_get_404(return_ticket):
    bob = factories.buyer(username="bob")
    assert client_for(bob).post(f"/refunds/{return_ticket.pk}/actions/cancel/").status_code == 404
    owner = client_for(return_ticket.buyer)
    assert owner.post(f"/refunds/{return_ticket.pk}/actions/fly_away/").status_code == 404
    assert owner.get(f"/refunds/{return_ticket.pk}/actions/cancel/").status_code == 405
    return_ticket.refresh_from_db()
    assert return_ticket.status == "requested"


def test_buyer_cancels_with_a_post(alice, return_ticket):
    client_for(alice).post(f"/refunds/{return_ticket.pk}/actions/cancel/", {"cancel-reason": "买错了"})
    return_ticket.refresh_from_db()
    assert return_ticket.status == "cancelled"


def test_agent_hands_a_ticket_over_with_a_note_and_puts_it_back_in_the_queue(return_ticket):
    wei, li = factories.agent(username="wei"), factories.agent(username="li")
    services.claim_ticket(ticket_id=return_ticket.pk, agent=wei)
    console = client_for(wei)
    page = console.get(f"/console/tickets/{return_ticket.pk}/").content.decode()
    assert f'<option value="{li.pk}">' in page
    assert f'<option value="{wei.pk}">' not in page  # not to oneself
    console.post(f"/console/tickets/{return_ticket.pk}/transfer/", {"agent": li.pk, "note": "买家要英文服务"})
    return_ticket.refresh_from_db()
    assert return_ticket.assigned_agent == li
    # The note is internal: the buyer's page never shows it.
    assert "买家要英文服务" not in client_for(return_ticket.buyer).get(f"/refunds/{return_ticket.pk}/").content.decode()
    response = console.post(
        f"/console/tickets/{return_ticket.pk}/transfer/", {"agent": "nobody"}, follow=True, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Choose an agent" in response.content.decode()
    client_for(li).post(f"/console/tickets/{return_ticket.pk}/unassign/")
    return_ticket.refresh_from_db()
    assert return_ticket.assigned_agent is None
    assert client_for(return_ticket.buyer).post(f"/console/tickets/{return_ticket.pk}/unassign/").status_code == 403


def test_queue_views_counts_and_filters(alice, django_assert_max_num_queries):
    wei = factories.agent(username="wei")

    def ticket(price: int, **changes):
        made = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(price, 1)]))
        RefundTicket.objects.filter(pk=made.pk).update(**changes)
        return made

    mine = ticket(1000, assigned_agent=wei)
    unassigned = ticket(2000)
    waiting = ticket(3000, status="awaiting_evidence", assigned_agent=wei)
    escalated = ticket(4000, status="escalated")
    closed = ticket(5000, status="refunded")
    client = client_for(wei)
    client.get("/console/")

    def shown(query: str) -> set[int]:
        page = client.get(f"/console/?{query}").content.decode()
        return {t.pk for t in (mine, unassigned, waiting, escalated, closed) if f'data-ticket-id="{t.pk}"' in page}

    assert shown("view=mine") == {mine.pk, waiting.pk}
    assert shown("view=unassigned") == {unassigned.pk, escalated.pk}
    assert shown("view=open") == {mine.pk, unassigned.pk, waiting.pk, escalated.pk}
    assert shown("view=waiting") == {waiting.pk}
    assert shown("view=escalated") == {escalated.pk}
    assert shown("view=closed") == {closed.pk}
    assert shown("view=open&min_amount=15&max_amount=35") == {unassigned.pk, waiting.pk}
    assert shown("view=open&status=escalated") == {escalated.pk}
    assert shown("view=nonsense") == shown("view=open")
    # A bad filter value is reported and ignored, never a server error.
    response = client.get("/console/?view=open&min_amount=abc&created_from=yesterday")
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert selectors_counts(wei) == {
        "mine": 2,
        "unassigned": 2,
        "open": 4,
        "waiting": 1,
        "sla": 0,  # promised within 2 hours: not yet at risk
        "escalated": 1,
        "closed": 1,
    }
    # Bounded queries whatever the view and page size.
    with django_assert_max_num_queries(11):
        client.get("/console/?view=open")


def selectors_counts(user):
    from tickets.selectors import queue_counts

    return queue_counts(user=user)
