"""The console ticket page with the workspace: bounded queries however many notes, labels and replies."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import factories
from tickets import notes, services
from tickets.models import CannedReply, Label

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def queries_for(client: Client, url: str) -> int:
    client.get(url)  # warm the session and permission caches
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_ticket_page_queries_do_not_grow_with_notes_labels_and_replies(django_assert_max_num_queries):
    alice = factories.buyer(username="alice")
    wei = factories.agent(username="wei")
    lin = factories.agent(username="lin")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    services.claim_ticket(ticket_id=ticket.pk, agent=wei)
    client = client_for(wei)
    url = f"/console/tickets/{ticket.pk}/"
    baseline = queries_for(client, url)

    labels = [Label.objects.create(name=f"L{n}", colour="#123456") for n in range(6)]
    services.set_labels(ticket_id=ticket.pk, by=wei, label_ids=[label.pk for label in labels])
    for n in range(8):
        notes.add_note(ticket_id=ticket.pk, author=lin, body=f"note {n} @wei")
        CannedReply.objects.create(owner=wei if n % 2 else None, title=f"r{n}", language="en", body="{buyer_name}")
    with django_assert_max_num_queries(baseline + 1):  # + counting the mentions left, for the other tabs
        page = client.get(url).content.decode()
    assert page.count('data-testid="note"') == 8
    assert page.count('data-testid="ticket-label"') == 6
    # Seen now: the next view is back at the baseline.
    assert queries_for(client, url) <= baseline
    assert baseline <= 30
