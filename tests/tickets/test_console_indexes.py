"""The queue's ordered partial indexes (migration 0011): they cover the states the model calls open and final,
and PostgreSQL can read a queue page from them in order."""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Q

from messaging.selectors import with_unread
from tickets import selectors
from tickets.models import FINAL_STATUSES, OPEN_STATUSES

migration = importlib.import_module("tickets.migrations.0011_console_bulk_indexes")


def test_index_conditions_are_the_models_open_and_final_states():
    assert set(migration.OPEN) == {str(s) for s in OPEN_STATUSES}
    assert set(migration.FINAL) == {str(s) for s in FINAL_STATUSES}


@pytest.mark.django_db(transaction=True)  # committed, then flushed: see tests/tickets/test_seed_bulk.py
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the indexes exist on PostgreSQL only")
def test_queue_pages_are_read_in_order_from_the_partial_indexes():
    from django.contrib.auth import get_user_model

    call_command("seed_bulk", "--tickets", "200", "--buyers", "40", "--agents", "4", stdout=StringIO())
    manager = get_user_model().objects.get(username="bulk-manager")
    with transaction.atomic(), connection.cursor() as cursor:
        # Tiny tables: make the planner show what it would do on large ones.
        # Only bitmap scans left: an index that serves the condition, not a full walk of some other index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        for view, index in (
            ("open", "ticket_queue_open_idx"),
            ("unassigned", "ticket_queue_open_idx"),
            ("escalated", "ticket_queue_open_idx"),
            ("closed", "ticket_queue_final_idx"),
        ):
            page = with_unread(selectors.console_queue(view=view, user=manager), user=manager)[:50]
            assert index in page.explain(), view


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bigram indexes exist on PostgreSQL only")
def test_two_character_searches_match_exactly_what_icontains_matches_and_use_the_bigram_indexes():
    from django.contrib.auth import get_user_model

    from messaging.models import Message
    from tickets import search
    from tickets.models import RefundTicket

    call_command("seed_bulk", "--tickets", "200", "--buyers", "40", "--agents", "4", stdout=StringIO())
    for query in ("运费", "谢谢", "ok", "Ok"):
        found = set(search.search_messages(query=query).values_list("pk", flat=True))
        assert found == set(Message.objects.filter(body__icontains=query).values_list("pk", flat=True)), query
    assert search.search_messages(query="运费").exists()
    for query in ("SF", "sf", "张", "bu"):
        found = set(search.search_tickets(query=query).values_list("pk", flat=True))
        expected = set(
            RefundTicket.objects.filter(
                Q(order__order_no__icontains=query)
                | Q(return_tracking_no__icontains=query)
                | Q(buyer__username__icontains=query)
                | Q(buyer__email__icontains=query)
                | Q(buyer__first_name__icontains=query)
                | Q(buyer__last_name__icontains=query)
            ).values_list("pk", flat=True)
        )
        assert found == expected, query
    assert search.search_tickets(query="sf").exists()
    with transaction.atomic(), connection.cursor() as cursor:
        # Only bitmap scans left: an index that serves the condition, not a full walk of some other index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        # The paginator's count (no order): found from the index. The page may rather walk message_created_idx.
        assert "message_body_bigram_idx" in search.search_messages(query="运费").order_by().explain()
        plan = search.search_tickets(query="bu").explain()
        assert "order_no_bigram_idx" in plan
        assert "ticket_tracking_bigram_idx" in plan
        users = get_user_model().objects.filter(search.contains("first_name", "子涵"))
        assert "user_first_name_bigram_idx" in users.explain()
