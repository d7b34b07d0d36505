"""Keyset pagination of the console queue (tickets.selectors.queue_page) and capped counts (refundchat.pagination)."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from messaging.selectors import with_unread
from refundchat.pagination import CappedPaginator, count_up_to
from tests import factories
from tests.tickets.test_views import client_for
from tickets import selectors
from tickets.models import RefundTicket
from tickets.selectors import QueueCursor

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(alice, wei):
    """Eleven open tickets in a known queue order: unanswered ones first (two with the same deadline), then answered
    ones by first answer (two answered at the same moment), ties broken by id."""
    now = timezone.now().replace(microsecond=123456)
    due = [now + timedelta(minutes=m) for m in (30, 10, 10, 50, 20)]
    answered = [now - timedelta(minutes=m) for m in (5, 40, 40, 1, 90, 12)]
    made = []
    for when in due:
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
        RefundTicket.objects.filter(pk=ticket.pk).update(first_response_due_at=when)
        made.append(ticket.pk)
    for when in answered:
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
        RefundTicket.objects.filter(pk=ticket.pk).update(first_responded_at=when, first_response_due_at=now)
        made.append(ticket.pk)
    return made


def ordered_ids(user):
    return list(selectors.console_queue(view="open", user=user).values_list("pk", flat=True))


def walk_forward(user, size):
    pages, after = [], ""
    while True:
        page = selectors.queue_page(selectors.console_queue(view="open", user=user), after=after, size=size)
        pages.append([t.pk for t in page.tickets])
        if page.next_after is None:
            return pages
        after = page.next_after


def test_walking_forward_shows_every_ticket_once_in_queue_order(queue, wei):
    expected = ordered_ids(wei)
    assert sorted(expected) == sorted(queue)
    pages = walk_forward(wei, size=3)
    assert [len(p) for p in pages] == [3, 3, 3, 2]
    assert [pk for page in pages for pk in page] == expected


def test_walking_back_from_the_last_page_shows_the_same_pages(queue, wei):
    forward = walk_forward(wei, size=3)
    tickets = selectors.console_queue(view="open", user=wei)
    page = selectors.queue_page(
        tickets, after=QueueCursor.of(RefundTicket.objects.get(pk=forward[-2][-1])).encode(), size=3
    )
    assert [t.pk for t in page.tickets] == forward[-1]
    backward = []
    while page.previous_before is not None:
        page = selectors.queue_page(tickets, before=page.previous_before, size=3)
        backward.append([t.pk for t in page.tickets])
    assert backward == forward[-2::-1]
    assert page.next_after is not None  # the first page links on


def test_first_page_has_no_previous_link_and_the_last_no_next(queue, wei):
    tickets = selectors.console_queue(view="open", user=wei)
    first = selectors.queue_page(tickets, size=5)
    assert first.previous_before is None
    assert first.next_after is not None
    everything = selectors.queue_page(tickets, size=50)
    assert not everything.has_other_pages
    assert len(everything.tickets) == len(queue)


@pytest.mark.parametrize("raw", ["", "garbage", "1.2", "x.1.2", "-.-1.2", "1.2.3.4", "9" * 40 + ".1.1"])
def test_a_bad_cursor_shows_the_first_page(queue, wei, raw):
    tickets = selectors.console_queue(view="open", user=wei)
    assert QueueCursor.decode(raw) is None
    page = selectors.queue_page(tickets, after=raw, before=raw, size=3)
    assert [t.pk for t in page.tickets] == ordered_ids(wei)[:3]


def test_cursor_round_trips_to_the_microsecond(queue):
    for ticket in RefundTicket.objects.all():
        cursor = QueueCursor.of(ticket)
        assert QueueCursor.decode(cursor.encode()) == cursor


def test_page_after_rows_that_left_the_view_goes_on_from_the_cursor(queue, wei):
    tickets = selectors.console_queue(view="open", user=wei)
    first = selectors.queue_page(tickets, size=3)
    # The page's tickets are closed meanwhile: the next page still starts right after them.
    RefundTicket.objects.filter(pk__in=[t.pk for t in first.tickets]).update(status="refunded")
    second = selectors.queue_page(tickets, after=first.next_after, size=3)
    assert [t.pk for t in second.tickets] == ordered_ids(wei)[:3]
    # Nothing after the cursor any more: the first page, not an empty page with no way back.
    RefundTicket.objects.exclude(pk__in=[t.pk for t in first.tickets]).update(status="refunded")
    RefundTicket.objects.filter(pk__in=[t.pk for t in first.tickets]).update(status="requested")
    again = selectors.queue_page(tickets, after=second.next_after or first.next_after, size=3)
    assert sorted(t.pk for t in again.tickets) == sorted(t.pk for t in first.tickets)


@override_settings(REFUNDCHAT_QUEUE_PAGE_SIZE=4)
def test_console_queue_pages_by_links_with_bounded_queries(queue, wei, django_assert_max_num_queries):
    client = client_for(wei)
    client.get("/console/")
    seen, url = [], "/console/?view=open"
    while url:
        with django_assert_max_num_queries(10):
            page = client.get(url).content.decode()
        seen += [int(pk) for pk in re.findall(r'data-testid="queue-item" data-ticket-id="(\d+)"', page)]
        assert f">{len(queue)}</span>" in page  # the heading counts the view's whole count
        link = re.search(r'href="\?([^"]*)" rel="next"', page)
        url = "/console/?" + link.group(1).replace("&amp;", "&") if link else ""
        if link:
            assert "view=open" in url  # the view and filters stay on the link
    assert seen == ordered_ids(wei)


def test_filtered_queue_shows_its_count(queue, wei):
    RefundTicket.objects.filter(pk__in=queue[:2]).update(status="under_review")
    page = client_for(wei).get("/console/?view=open&status=under_review").content.decode()
    assert re.search(r'data-testid="queue-count"[^>]*>2</span>', page)


def test_count_up_to_stops_at_the_cap(queue):
    assert count_up_to(RefundTicket.objects.all(), cap=20) == count_up_to(RefundTicket.objects.all(), cap=11)
    exact = count_up_to(RefundTicket.objects.all(), cap=11)
    assert (exact.value, exact.capped) == (11, False)
    capped = count_up_to(RefundTicket.objects.all(), cap=4)
    assert (capped.value, capped.capped) == (4, True)
    paginator = CappedPaginator(RefundTicket.objects.order_by("pk"), 3, cap=7)
    assert (paginator.count, paginator.num_pages, paginator.capped_count.capped) == (7, 3, True)
    assert len(paginator.page(3).object_list) == 1  # the 7th ticket: pages stop at the cap


@pytest.mark.django_db(transaction=True)  # committed, then flushed: see tests/tickets/test_seed_bulk.py
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the queue indexes exist on PostgreSQL only")
def test_pages_after_a_cursor_are_found_in_the_queue_index_not_by_skipping_rows():
    from django.contrib.auth import get_user_model

    call_command("seed_bulk", "--tickets", "200", "--buyers", "40", "--agents", "4", stdout=StringIO())
    manager = get_user_model().objects.get(username="bulk-manager")
    closed = with_unread(selectors.console_queue(view="closed", user=manager), user=manager)
    answered = QueueCursor.of(closed.filter(first_responded_at__isnull=False)[20])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        plan = closed.filter(answered.condition(after=True))[:51].explain()
    assert "ticket_queue_final_idx" in plan
    # The cursor is a range condition of the index scan, not a filter on rows read from its start.
    assert re.search(r"Index Cond: .*ROW\(", plan), plan


def test_search_with_more_matches_than_the_cap_says_so_and_pages_up_to_it(queue, wei, monkeypatch):
    monkeypatch.setattr("tickets.workspace_views.SEARCH_COUNT_CAP", 25)
    monkeypatch.setattr("tickets.workspace_views.SEARCH_PAGE_SIZE", 10)
    client = client_for(wei)
    order_prefix = RefundTicket.objects.get(pk=queue[0]).order.order_no[:4]
    page = client.get(f"/console/search/?q={order_prefix}").content.decode()
    assert 'data-testid="search-capped"' not in page  # 11 tickets: under the cap
    monkeypatch.setattr("tickets.workspace_views.SEARCH_COUNT_CAP", 5)
    page = client.get(f"/console/search/?q={order_prefix}").content.decode()
    assert 'data-testid="search-capped"' in page
    assert "5" in re.search(r'data-testid="search-capped">([^<]*)<', page).group(1)
    assert page.count('data-testid="search-ticket"') == 5
