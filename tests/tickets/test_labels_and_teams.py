"""Labels on tickets (set in the console, filtered in the queue) and hand-overs to the finance / warehouse team."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from messaging import realtime
from tests import factories
from tickets import services
from tickets.models import Label, RefundTicket, TicketEvent, TicketEventKind, TicketLabel

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip():
    return Label.objects.create(name="VIP", colour="#e11d48")


@pytest.fixture
def fraud():
    return Label.objects.create(name="疑似欺诈", colour="#111827")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_label_colour_must_be_hex_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        Label.objects.create(name="bad", colour="red")


def test_set_labels_writes_one_event_and_tells_consoles_not_the_buyer(
    ticket, wei, vip, fraud, alice, published, django_capture_on_commit_callbacks
):
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.set_labels(ticket_id=ticket.pk, by=wei, label_ids=[vip.pk, fraud.pk])
    assert set(TicketLabel.objects.filter(ticket=ticket).values_list("label_id", flat=True)) == {vip.pk, fraud.pk}
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.LABELS)
    assert event.data == {"added": sorted([vip.pk, fraud.pk]), "removed": []}
    assert event.actor == wei
    assert not event.visible_to_buyer
    frame = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "requested", "assigned_agent_id": None}
    assert published == [
        (realtime.QUEUE_GROUP, frame),
        (realtime.conversation_group(ticket.conversation.pk), frame),
    ]
    assert realtime.user_group(alice.pk) not in {group for group, _f in published}

    with django_capture_on_commit_callbacks(execute=True):
        services.set_labels(ticket_id=ticket.pk, by=wei, label_ids=[fraud.pk])
    assert list(ticket.labels.all()) == [fraud]
    assert TicketEvent.objects.filter(kind=TicketEventKind.LABELS).last().data == {"added": [], "removed": [vip.pk]}
    # No change: no event.
    services.set_labels(ticket_id=ticket.pk, by=wei, label_ids=[fraud.pk])
    assert TicketEvent.objects.filter(kind=TicketEventKind.LABELS).count() == 2


def test_set_labels_refusals_change_nothing(ticket, wei, alice, vip):
    with pytest.raises(services.WorkspaceRefused) as refused:
        services.set_labels(ticket_id=ticket.pk, by=alice, label_ids=[vip.pk])
    assert refused.value.code == "not_permitted"
    with pytest.raises(services.WorkspaceRefused) as refused:
        services.set_labels(ticket_id=ticket.pk, by=wei, label_ids=[vip.pk, 999999])
    assert refused.value.code == "unknown_label"
    assert not TicketLabel.objects.exists()
    assert not TicketEvent.objects.filter(kind=TicketEventKind.LABELS).exists()


def test_console_labels_form_queue_row_and_label_filter(ticket, alice, wei, vip, fraud, django_assert_max_num_queries):
    other = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(100, 1)]))
    client = client_for(wei)
    page = client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="labels-tools"' in page
    response = client.post(f"/console/tickets/{ticket.pk}/labels/", {"labels": [vip.pk]})
    assert response.status_code == 302
    assert list(ticket.labels.all()) == [vip]
    page = client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="ticket-label">VIP</span>' in page

    queue = client.get("/console/").content.decode()
    assert queue.count('data-testid="row-label"') == 1
    filtered = client.get(f"/console/?view=open&label={vip.pk}").content.decode()
    assert filtered.count('data-testid="queue-item"') == 1
    assert f'data-ticket-id="{ticket.pk}"' in filtered
    assert f'data-ticket-id="{other.pk}"' not in filtered
    assert client.get(f"/console/?view=open&label={fraud.pk}").content.decode().count('data-testid="queue-item"') == 0
    # A label that does not exist is reported and ignored, never a server error.
    assert client.get("/console/?view=open&label=999999").status_code == 200
    # The buyer's page does not show internal labels.
    assert "VIP" not in client_for(alice).get(f"/refunds/{ticket.pk}/").content.decode()
    # Bounded whatever the labels: one query for the page's labels (+1 since calls: the buyers waiting on a call).
    for n in range(5):
        more = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(200 + n, 1)]))
        services.set_labels(ticket_id=more.pk, by=wei, label_ids=[vip.pk, fraud.pk])
    with django_assert_max_num_queries(12):
        page = client.get(f"/console/?view=open&label={vip.pk}").content.decode()
    assert page.count('data-testid="queue-item"') == 6


def test_team_transfer_and_back_with_events_and_frames(
    ticket, wei, alice, published, django_capture_on_commit_callbacks
):
    services.claim_ticket(ticket_id=ticket.pk, agent=wei)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.transfer_to_team(ticket_id=ticket.pk, by=wei, team="finance", note="付款渠道退回，请核实")
    ticket.refresh_from_db()
    assert ticket.team == "finance"
    assert ticket.assigned_agent == wei  # the agent keeps the chat with the buyer
    event = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.TEAM).get()
    assert (event.reason, event.data, event.visible_to_buyer) == (
        "付款渠道退回，请核实",
        {"team": "finance", "previous_team": ""},
        False,
    )
    frame = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "requested", "assigned_agent_id": wei.pk}
    assert published == [
        (realtime.QUEUE_GROUP, frame),
        (realtime.conversation_group(ticket.conversation.pk), frame),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        services.transfer_to_team(ticket_id=ticket.pk, by=wei, team="", note="")
    ticket.refresh_from_db()
    assert ticket.team == ""
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.TEAM).count() == 2


def test_team_transfer_refusals(ticket, wei, alice):
    for kwargs, code in (
        ({"by": alice, "team": "finance", "note": "x"}, "not_permitted"),
        ({"by": wei, "team": "legal", "note": "x"}, "unknown_team"),
        ({"by": wei, "team": "warehouse", "note": "  "}, "note_required"),
        ({"by": wei, "team": "", "note": ""}, "unchanged"),
    ):
        with pytest.raises(services.WorkspaceRefused) as refused:
            services.transfer_to_team(ticket_id=ticket.pk, **kwargs)
        assert refused.value.code == code
    RefundTicket.objects.filter(pk=ticket.pk).update(status="refunded")
    with pytest.raises(services.WorkspaceRefused) as refused:
        services.transfer_to_team(ticket_id=ticket.pk, by=wei, team="finance", note="x")
    assert refused.value.code == "closed"
    assert not TicketEvent.objects.filter(kind=TicketEventKind.TEAM).exists()


def test_console_team_form_and_team_filter(ticket, alice, wei):
    other = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(100, 1)]))
    client = client_for(wei)
    response = client.post(f"/console/tickets/{ticket.pk}/team/", {"team": "warehouse", "note": "包裹在哪？"})
    assert response.status_code == 302
    page = client.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="ticket-team"' in page
    queue = client.get("/console/?view=open&team=warehouse").content.decode()
    assert f'data-ticket-id="{ticket.pk}"' in queue
    assert f'data-ticket-id="{other.pk}"' not in queue
    assert 'data-testid="row-team"' in queue
    # A refused change is shown, not raised.
    response = client.post(f"/console/tickets/{ticket.pk}/team/", {"team": "warehouse", "note": "again"}, follow=True)
    assert response.status_code == 200
    assert 'class="flash-error"' in response.content.decode()
    assert TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.TEAM).count() == 1
