"""Canned replies: variables filled from the ticket, personal and team replies, managed in the console."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from tests import factories
from tickets import canned
from tickets.models import CannedReply, RefundTicket
from tickets.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(alice):
    order = factories.order_with_items(buyer=alice, items=[(12900, 1)], order_no="202611110001")
    return factories.open_ticket(order=order)


@pytest.fixture
def manager():
    return factories.staff(Role.MANAGER, username="boss")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_render_text_fills_known_variables_and_leaves_others_visible():
    values = {"buyer_name": "Alice", "order_no": "202611110001"}
    text = "您好 {buyer_name}，订单 {order_no} {unknown} {{not}} {BUYER_NAME} {"
    assert (
        canned.render_text(body=text, values=values) == "您好 Alice，订单 202611110001 {unknown} {{not}} {BUYER_NAME} {"
    )


def test_ticket_variables(ticket):
    values = canned.ticket_variables(ticket=ticket)
    assert values["buyer_name"] == "Alice"
    assert values["order_no"] == "202611110001"
    assert values["refund_amount"] == "¥129.00"  # requested, nothing approved yet
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", values["eta"])  # the first-response promise
    RefundTicket.objects.filter(pk=ticket.pk).update(approved_amount_cents=5000, status="refunded")
    ticket.refresh_from_db()
    values = canned.ticket_variables(ticket=ticket)
    assert values["refund_amount"] == "¥50.00"
    assert values["eta"] == "already paid"


def test_replies_for_user_are_own_and_team_ones_in_the_tickets_language_first(ticket, wei):
    other_agent = factories.agent(username="lin")
    CannedReply.objects.create(owner=wei, title="A en", language="en", body="Hi {buyer_name}")
    CannedReply.objects.create(owner=None, title="B zh", language="zh-hans", body="{buyer_name} 您好，{refund_amount}")
    CannedReply.objects.create(owner=other_agent, title="C other", language="zh-hans", body="not mine")
    rendered = canned.rendered_replies(user=wei, ticket=ticket)
    assert [(r.title, r.team, r.text) for r in rendered] == [
        ("B zh", True, "Alice 您好，¥129.00"),
        ("A en", False, "Hi Alice"),
    ]


def test_save_and_delete_rules(wei, manager):
    mine = canned.save_reply(user=wei, title=" 退款 ", language="zh-hans", body="{buyer_name} 您好")
    assert (mine.owner, mine.title) == (wei, "退款")
    with pytest.raises(canned.CannedReplyRefused) as refused:
        canned.save_reply(user=wei, title="t", language="zh-hans", body="b", team=True)
    assert refused.value.code == "not_permitted"
    for kwargs, code in (
        ({"title": "", "language": "en", "body": "b"}, "title_required"),
        ({"title": "t", "language": "en", "body": " "}, "body_required"),
        ({"title": "t", "language": "fr", "body": "b"}, "bad_language"),
        ({"title": "t", "language": "en", "body": "b" * 2001}, "body_too_long"),
    ):
        with pytest.raises(canned.CannedReplyRefused) as refused:
            canned.save_reply(user=wei, **kwargs)
        assert refused.value.code == code
    team = canned.save_reply(user=manager, title="Team", language="en", body="Hello", team=True)
    assert team.owner is None
    # An agent can neither edit nor delete the team's reply, nor another agent's.
    with pytest.raises(canned.CannedReplyRefused) as refused:
        canned.save_reply(user=wei, reply_id=team.pk, title="x", language="en", body="x")
    assert refused.value.code == "not_found"
    with pytest.raises(canned.CannedReplyRefused):
        canned.delete_reply(user=wei, reply_id=team.pk)
    with pytest.raises(canned.CannedReplyRefused):
        canned.delete_reply(user=manager, reply_id=mine.pk)
    canned.delete_reply(user=manager, reply_id=team.pk)
    canned.delete_reply(user=wei, reply_id=mine.pk)
    assert not CannedReply.objects.exists()


def test_console_pages_list_create_edit_delete(wei, manager, django_assert_max_num_queries):
    client = client_for(wei)
    response = client.post(
        "/console/replies/new/", {"title": "Greeting", "language": "en", "body": "Hello {buyer_name}", "team": "on"}
    )
    assert response.status_code == 302
    reply = CannedReply.objects.get()
    assert reply.owner == wei  # the team box is not offered to agents and is ignored
    page = client.get("/console/replies/").content.decode()
    assert "Greeting" in page
    assert 'name="team"' not in client.get("/console/replies/new/").content.decode()
    response = client.post(f"/console/replies/{reply.pk}/", {"title": "Greeting 2", "language": "en", "body": "Hi"})
    assert response.status_code == 302
    reply.refresh_from_db()
    assert (reply.title, reply.body) == ("Greeting 2", "Hi")
    # Invalid: the form shows the error, nothing changes.
    response = client.post(f"/console/replies/{reply.pk}/", {"title": "", "language": "en", "body": "Hi"})
    assert response.status_code == 200
    reply.refresh_from_db()
    assert reply.title == "Greeting 2"

    boss = client_for(manager)
    assert 'name="team"' in boss.get("/console/replies/new/").content.decode()
    boss.post("/console/replies/new/", {"title": "Team one", "language": "zh-hans", "body": "您好", "team": "on"})
    team = CannedReply.objects.get(title="Team one")
    assert team.owner is None
    assert boss.get(f"/console/replies/{reply.pk}/").status_code == 404  # wei's own
    assert client.get(f"/console/replies/{team.pk}/").status_code == 404
    assert client.post(f"/console/replies/{team.pk}/delete/").status_code == 404
    for n in range(5):
        CannedReply.objects.create(owner=wei, title=f"r{n}", language="en", body="x")
    client.get("/console/replies/")
    with django_assert_max_num_queries(6):
        page = client.get("/console/replies/").content.decode()
    assert page.count('data-testid="canned-reply"') == 7
    assert client.post(f"/console/replies/{reply.pk}/delete/").status_code == 302
    assert not CannedReply.objects.filter(pk=reply.pk).exists()
    # Buyers have no access.
    buyer = client_for(factories.buyer(username="bob"))
    assert buyer.get("/console/replies/").status_code == 403


def test_ticket_page_embeds_rendered_replies_for_the_picker(ticket, wei):
    CannedReply.objects.create(owner=wei, title="Refund", language="zh-hans", body="{buyer_name}，{order_no} {eta?}")
    page = client_for(wei).get(f"/console/tickets/{ticket.pk}/").content.decode()
    embedded = re.search(r'<script id="canned-replies" type="application/json">(.*?)</script>', page, re.S)
    assert embedded is not None
    replies = json.loads(embedded.group(1))
    assert replies == [
        {
            "id": replies[0]["id"],
            "title": "Refund",
            "language": "zh-hans",
            "language_label": "简体中文",
            "team": False,
            "text": "Alice，202611110001 {eta?}",
        }
    ]
    assert "js/canned.js" in page


def test_canned_form_pages_have_bounded_queries(wei, django_assert_max_num_queries):
    reply = CannedReply.objects.create(owner=wei, title="t", language="en", body="b")
    client = client_for(wei)
    client.get("/console/replies/new/")
    with django_assert_max_num_queries(5):
        assert client.get("/console/replies/new/").status_code == 200
    with django_assert_max_num_queries(6):
        assert client.get(f"/console/replies/{reply.pk}/").status_code == 200
