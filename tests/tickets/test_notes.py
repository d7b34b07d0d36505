"""Internal notes with @mentions: staff only, never on the buyer's pages or in the buyer's frames."""

from __future__ import annotations

import pytest
from django.test import Client

from messaging import realtime
from tests import factories
from tickets import notes
from tickets.models import NoteMention, TicketNote
from tickets.roles import Role

pytestmark = pytest.mark.django_db

SECRET = "内部备注：买家可能在薅羊毛 fraud-suspect-7731"


@pytest.fixture
def lin():
    return factories.agent(username="lin")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_mentioned_usernames_are_parsed_once_each_and_not_from_emails():
    body = "@lin please check, cc @Wei and @lin again; not bob@example.com. Ends with @fin."
    assert notes.mentioned_usernames(body) == ["lin", "Wei", "fin"]


def test_note_mentions_staff_only_and_publishes_to_staff_groups_only(
    ticket, wei, lin, alice, published, django_capture_on_commit_callbacks
):
    finance = factories.staff(Role.FINANCE, username="fin")
    ticket.assigned_agent = wei
    ticket.save(update_fields=["assigned_agent"])
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        note = notes.add_note(ticket_id=ticket.pk, author=wei, body=f"{SECRET} @lin @fin @alice @nobody @wei")
    # alice is the buyer (not staff), nobody does not exist, wei wrote it: only lin and fin are notified.
    assert sorted(NoteMention.objects.filter(note=note).values_list("user__username", flat=True)) == ["fin", "lin"]
    frame = {
        "type": "ticket.note",
        "ticket_id": ticket.pk,
        "note_id": note.pk,
        "author_id": wei.pk,
        "mentioned_ids": [finance.pk, lin.pk],  # by username
    }
    assert published == [
        (realtime.QUEUE_GROUP, frame),
        *[(realtime.user_group(user_id), frame) for user_id in sorted({wei.pk, lin.pk, finance.pk})],
    ]
    buyer_groups = {realtime.user_group(alice.pk), realtime.conversation_group(ticket.conversation.pk)}
    assert not {group for group, _frame in published} & buyer_groups
    # The frames never carry the note's text.
    assert all(SECRET not in str(sent) for _group, sent in published)


def test_buyer_who_is_also_staff_is_not_notified(wei, published, django_capture_on_commit_callbacks):
    staff_buyer = factories.agent(username="staffbuyer")
    own = factories.open_ticket(order=factories.order_with_items(buyer=staff_buyer, items=[(100, 1)]))
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notes.add_note(ticket_id=own.pk, author=wei, body="@staffbuyer is the buyer here")
    assert not NoteMention.objects.exists()
    assert realtime.user_group(staff_buyer.pk) not in {group for group, _frame in published}


def test_buyer_cannot_write_notes_and_empty_notes_are_refused(ticket, alice, wei):
    with pytest.raises(notes.NoteRefused) as refused:
        notes.add_note(ticket_id=ticket.pk, author=alice, body="hello")
    assert refused.value.code == "not_permitted"
    with pytest.raises(notes.NoteRefused) as refused:
        notes.add_note(ticket_id=ticket.pk, author=wei, body="   ")
    assert refused.value.code == "empty"
    with pytest.raises(notes.NoteRefused) as refused:
        notes.add_note(ticket_id=ticket.pk, author=wei, body="x" * 2001)
    assert refused.value.code == "too_long"
    assert not TicketNote.objects.exists()


def test_note_is_on_the_console_page_and_never_on_the_buyers_page(ticket, alice, wei, lin):
    notes.add_note(ticket_id=ticket.pk, author=wei, body=f"{SECRET} @lin")
    console = client_for(wei).get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert SECRET in console
    assert 'data-testid="note"' in console
    buyer_page = client_for(alice).get(f"/refunds/{ticket.pk}/").content.decode()
    assert SECRET not in buyer_page
    assert "fraud-suspect" not in buyer_page
    assert 'data-testid="notes"' not in buyer_page
    buyer_list = client_for(alice).get("/refunds/").content.decode()
    assert SECRET not in buyer_list
    # The buyer cannot post one either (the console is closed to them).
    assert client_for(alice).post(f"/console/tickets/{ticket.pk}/notes/", {"body": "hi"}).status_code == 403
    assert TicketNote.objects.count() == 1


def test_console_note_form_and_mention_notification_then_seen(ticket, wei, lin, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(wei).post(f"/console/tickets/{ticket.pk}/notes/", {"body": "@lin can you look?"})
    assert response.status_code == 302
    assert response["Location"] == f"/console/tickets/{ticket.pk}/#notes"
    lin_client = client_for(lin)
    queue = lin_client.get("/console/").content.decode()
    assert 'data-testid="mentions-badge">1</span>' in queue
    mentions = lin_client.get("/console/mentions/").content.decode()
    assert "@lin can you look?" in mentions
    assert "mention unseen" in mentions
    # Opening the ticket marks lin's mentions on it seen.
    lin_client.get(f"/console/tickets/{ticket.pk}/")
    assert NoteMention.objects.get(user=lin).seen_at is not None
    assert 'data-testid="mentions-badge" hidden>0</span>' in lin_client.get("/console/").content.decode()


def test_mark_all_seen_publishes_to_own_group(ticket, wei, lin, published, django_capture_on_commit_callbacks):
    notes.add_note(ticket_id=ticket.pk, author=wei, body="@lin one")
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(lin).post("/console/mentions/seen/")
    assert response.status_code == 302
    assert published == [
        (realtime.user_group(lin.pk), {"type": "mentions.seen", "user_id": lin.pk, "ticket_id": None, "unseen": 0})
    ]
    assert notes.unseen_mention_count(user=lin) == 0


def test_mentions_page_has_bounded_queries(ticket, wei, lin, django_assert_max_num_queries):
    for n in range(5):
        other = factories.open_ticket(order=factories.order_with_items(buyer=ticket.buyer, items=[(100 + n, 1)]))
        notes.add_note(ticket_id=other.pk, author=wei, body=f"@lin number {n}")
    client = client_for(lin)
    client.get("/console/mentions/")
    with django_assert_max_num_queries(8):
        page = client.get("/console/mentions/").content.decode()
    assert page.count('data-testid="mention"') == 5
