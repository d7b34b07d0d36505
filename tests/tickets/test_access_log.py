"""The personal data access log (tickets/access_log.py): what staff read is written down, and nobody can
change or delete an entry."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.test import Client

from tests import factories
from tickets import payouts
from tickets.models import AccessAction, AccessLogEntry, PayoutMethod
from tickets.roles import Role

pytestmark = pytest.mark.django_db
CARD = "6228480012345671"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def entries() -> list[tuple[str, str, int | None, str]]:
    return [(e.actor_name, e.action, e.ticket_id, e.target) for e in AccessLogEntry.objects.order_by("id")]


def test_console_ticket_page_view_is_logged(ticket: Any, wei: Any) -> None:
    assert client_for(wei).get(f"/console/tickets/{ticket.pk}/").status_code == 200
    assert entries() == [("wei", AccessAction.TICKET_VIEWED, ticket.pk, f"ticket:{ticket.pk}")]


def test_staff_downloads_are_logged_thumbnails_and_the_buyer_are_not(ticket: Any, alice: Any, wei: Any) -> None:
    attachment = factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff evidence")
    buyer = client_for(alice)
    assert buyer.get(f"/attachments/{attachment.pk}/original").status_code == 200
    assert entries() == []  # the buyer's own file

    agent = client_for(wei)
    assert agent.get(f"/attachments/{attachment.pk}/original").status_code == 200
    assert agent.get(f"/attachments/{attachment.pk}/original?download=1").status_code == 200
    # A later Range request of the same file (video seeking) is the same viewing, not another entry.
    assert agent.get(f"/attachments/{attachment.pk}/original", HTTP_RANGE="bytes=5-").status_code == 206
    # A thumbnail shown in a page is not a download (404 here: none was made, and nothing is logged either).
    agent.get(f"/attachments/{attachment.pk}/thumbnail_small")
    target = f"attachment:{attachment.pk}:original"
    assert entries() == [
        ("wei", AccessAction.ATTACHMENT_DOWNLOADED, ticket.pk, target),
        ("wei", AccessAction.ATTACHMENT_DOWNLOADED, ticket.pk, target),
    ]


def test_payout_decryption_is_logged_as_the_system(alice: Any) -> None:
    ticket = factories.open_ticket(
        order=factories.order_with_items(buyer=alice, items=[(7900, 1)]),
        payout_method=PayoutMethod.BANK_CARD,
        payout_account=CARD,
    )
    destination = payouts.payout_destination(ticket=ticket, actor=None)
    assert (destination.method, destination.account) == (PayoutMethod.BANK_CARD, CARD)
    assert CARD not in repr(destination)
    assert entries() == [("system", AccessAction.PAYOUT_ACCOUNT_DECRYPTED, ticket.pk, f"ticket:{ticket.pk}")]


def test_the_database_refuses_to_update_or_delete_entries(ticket: Any, wei: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    client_for(wei).get(f"/console/tickets/{ticket.pk}/")
    entry = AccessLogEntry.objects.get()
    for attempt in (
        lambda: AccessLogEntry.objects.filter(pk=entry.pk).update(actor_name="nobody"),
        lambda: AccessLogEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises((InternalError, ProgrammingError, IntegrityError)) as refused, transaction.atomic():
            attempt()
        assert "append-only" in str(refused.value)
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM tickets_accesslogentry")
    assert entries() == [("wei", AccessAction.TICKET_VIEWED, ticket.pk, f"ticket:{ticket.pk}")]


def test_managers_read_the_log_in_the_admin_and_nobody_edits_it(ticket: Any, wei: Any) -> None:
    client_for(wei).get(f"/console/tickets/{ticket.pk}/")
    entry = AccessLogEntry.objects.get()
    manager = client_for(factories.staff(Role.MANAGER, username="boss"))
    listing = manager.get("/admin/tickets/accesslogentry/")
    assert listing.status_code == 200
    assert "wei" in listing.content.decode()
    page = manager.get(f"/admin/tickets/accesslogentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert manager.post(f"/admin/tickets/accesslogentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert manager.get("/admin/tickets/accesslogentry/add/").status_code == 403
    superuser = client_for(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    assert superuser.post(f"/admin/tickets/accesslogentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert superuser.post(f"/admin/tickets/accesslogentry/{entry.pk}/change/", {"actor_name": "x"}).status_code == 403
    assert AccessLogEntry.objects.get().actor_name == "wei"
    # Agents have no admin at all.
    assert client_for(wei).get("/admin/tickets/accesslogentry/").status_code == 302
