"""Console search: tickets by order, buyer, tracking number and number; messages by text, Chinese included."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test import Client

from messaging import services as messaging_services
from tests import factories
from tickets import search
from tickets.models import RefundTicket

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return factories.buyer(username="alice", first_name="Alice", last_name="Wang", email="alice.w@example.com")


@pytest.fixture
def wei():
    return factories.agent(username="wei")


@pytest.fixture
def tickets(alice):
    first = factories.open_ticket(
        order=factories.order_with_items(buyer=alice, items=[(7900, 1)], order_no="202611118888")
    )
    RefundTicket.objects.filter(pk=first.pk).update(return_carrier="SF", return_tracking_no="SF1234567890123")
    bob = factories.buyer(username="bob", first_name="张伟", email="bob@example.com")
    second = factories.open_ticket(
        order=factories.order_with_items(buyer=bob, items=[(100, 1)], order_no="202611110002")
    )
    return first, second


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("8888", [0]),
        ("20261111", [0, 1]),
        ("sf12345678", [0]),  # tracking number, any case
        ("ALICE", [0]),
        ("alice.w@", [0]),
        ("Wang", [0]),
        ("张伟", [1]),
        ("nobody", []),
    ],
)
def test_search_tickets(tickets, query, expected):
    found = list(search.search_tickets(query=query))
    assert sorted(found, key=lambda t: t.pk) == [tickets[i] for i in expected]


def test_search_by_ticket_number(tickets):
    assert list(search.search_tickets(query=tickets[1].number)) == [tickets[1]]
    assert list(search.search_tickets(query="9" * 40)) == []  # no integer overflow


def test_search_messages_in_chinese(tickets, alice):
    ticket = tickets[0]
    messaging_services.post_message(
        conversation_id=ticket.conversation.pk,
        sender=alice,
        body="衣服的颜色和图片不一样，袖口有破洞",
        client_id=uuid.uuid4(),
    )
    found = list(search.search_messages(query="袖口有破洞"))
    assert [m.body for m in found] == ["衣服的颜色和图片不一样，袖口有破洞"]
    assert found[0].conversation.ticket == ticket
    assert list(search.search_messages(query="不存在的话")) == []


def test_search_page_paginates_with_bounded_queries(tickets, alice, wei, django_assert_max_num_queries):
    for n in range(25):
        factories.open_ticket(
            order=factories.order_with_items(buyer=alice, items=[(100 + n, 1)], order_no=f"20261199{n:04d}")
        )
        ticket = RefundTicket.objects.order_by("-pk").first()
        messaging_services.post_message(
            conversation_id=ticket.conversation.pk, sender=alice, body=f"第{n}次：包裹破损", client_id=uuid.uuid4()
        )
    client = client_for(wei)
    client.get("/console/search/?q=x")
    with django_assert_max_num_queries(9):
        page = client.get("/console/search/?q=2026119").content.decode()
    assert page.count('data-testid="search-ticket"') == 20
    assert "?q=2026119&amp;in=tickets&amp;page=2" in page
    assert client.get("/console/search/?q=2026119&page=2").content.decode().count('data-testid="search-ticket"') == 5
    with django_assert_max_num_queries(9):
        page = client.get("/console/search/?q=包裹破损&in=messages").content.decode()
    assert page.count('data-testid="search-message"') == 20
    # Empty query: the help text, no search.
    assert 'data-testid="search-ticket"' not in client.get("/console/search/?q=++").content.decode()
    # Buyers cannot search.
    assert client_for(alice).get("/console/search/?q=alice").status_code == 403


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes exist on PostgreSQL only")
def test_trigram_indexes_serve_the_searches(tickets):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%_trgm_idx'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "order_no_trgm_idx",
        "ticket_tracking_trgm_idx",
        "user_username_trgm_idx",
        "user_email_trgm_idx",
        "user_first_name_trgm_idx",
        "user_last_name_trgm_idx",
        "message_body_trgm_idx",
    }
    # pg_trgm splits Chinese into trigrams (with a UTF-8 ctype), so the index narrows CJK searches too.
    with connection.cursor() as cursor:
        cursor.execute("SELECT show_trgm(%s)", ["袖口有破洞"])
        assert len(cursor.fetchone()[0]) >= 3
    # With sequential scans off, the planner must be able to answer icontains from the indexes.
    with connection.cursor() as cursor:
        # Only bitmap scans left: an index that serves the condition, not a full walk of some other index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = search.search_messages(query="袖口有破洞").explain()
        assert "message_body_trgm_idx" in plan
        plan = RefundTicket.objects.filter(order__order_no__icontains="8888").explain()
        assert "order_no_trgm_idx" in plan
