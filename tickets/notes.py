"""Internal notes on tickets, with @mentions of other staff.

A note is for staff only: it is never rendered on the buyer's pages and its
frames go only to the console queue group and to staff members' own user
groups, never to the conversation group the buyer's sockets join, nor to the
buyer's user group.
"""

from __future__ import annotations

import re

from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging import realtime
from refundchat.errors import Refused
from tickets.models import NoteMention, RefundTicket, TicketNote
from tickets.roles import can_use_console

MAX_NOTE_LENGTH = 2000
# @username: the ASCII characters Django's username validator allows (but "@"), not ending in a dot,
# and not preceded by a word character (an e-mail address is no mention).
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_.+-]*[A-Za-z0-9_+-])")
# How many unseen mentions the console lists at most.
MENTIONS_SHOWN = 50


class NoteRefused(Refused):
    """A note that was not written."""


def staff_users() -> QuerySet[User]:
    """Active accounts that may use the console (by group, own permission, or as superuser)."""
    console = Permission.objects.get(codename="use_console", content_type__app_label="tickets")
    return User.objects.filter(
        Q(groups__permissions=console) | Q(user_permissions=console) | Q(is_superuser=True), is_active=True
    ).distinct()


def mentioned_usernames(body: str) -> list[str]:
    """The @usernames in a note, in order, each once (case as written)."""
    seen: dict[str, str] = {}
    for name in MENTION.findall(body):
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def resolve_mentions(*, body: str, exclude_ids: set[int]) -> list[User]:
    """The staff members a note mentions; unknown names and non-staff accounts are ignored."""
    names = mentioned_usernames(body)
    if not names:
        return []
    query = Q()
    for name in names:
        query |= Q(username__iexact=name)
    return list(staff_users().filter(query).exclude(pk__in=exclude_ids).order_by("username"))


def add_note(*, ticket_id: int, author: User, body: str) -> TicketNote:
    """Write an internal note; every staff member it @mentions gets a notification."""
    if not can_use_console(author):
        raise NoteRefused("not_permitted", _("Only staff can write internal notes."))
    text = (body or "").strip()
    if not text:
        raise NoteRefused("empty", _("Write the note first."))
    if len(text) > MAX_NOTE_LENGTH:
        raise NoteRefused("too_long", _("A note can have at most %(max)d characters.") % {"max": MAX_NOTE_LENGTH})
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
        note = TicketNote.objects.create(ticket=ticket, author=author, body=text)
        # The buyer is never notified, even when a staff account happens to be the buyer.
        mentioned = resolve_mentions(body=text, exclude_ids={author.pk, ticket.buyer_id})
        NoteMention.objects.bulk_create(NoteMention(note=note, user=user) for user in mentioned)
        _publish_note(ticket=ticket, note=note, mentioned_ids=[user.pk for user in mentioned])
    return note


def note_frame(*, note: TicketNote, mentioned_ids: list[int]) -> dict[str, object]:
    """What staff sockets are told: which ticket has a new note and who it mentions; never its text."""
    return {
        "type": "ticket.note",
        "ticket_id": note.ticket_id,
        "note_id": note.pk,
        "author_id": note.author_id,
        "mentioned_ids": mentioned_ids,
    }


def _publish_note(*, ticket: RefundTicket, note: TicketNote, mentioned_ids: list[int]) -> None:
    frame = note_frame(note=note, mentioned_ids=mentioned_ids)
    realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
    # The staff pages open on this ticket (the author's other tabs, the assigned agent) and the
    # mentioned people's pages, wherever they are: each through its own user group.
    targets = {note.author_id, *mentioned_ids}
    if ticket.assigned_agent_id:
        targets.add(ticket.assigned_agent_id)
    targets.discard(ticket.buyer_id)
    for user_id in sorted(targets):
        realtime.publish(group=realtime.user_group(user_id), frame=frame)


def mark_mentions_seen(*, user: User, ticket_id: int | None = None) -> int:
    """The user has read their mentions (on one ticket, or all); returns how many were unseen."""
    unseen = NoteMention.objects.filter(user=user, seen_at__isnull=True)
    if ticket_id is not None:
        unseen = unseen.filter(note__ticket_id=ticket_id)
    with transaction.atomic():
        count = unseen.update(seen_at=timezone.now())
        if count:
            # The user's other tabs set their badge to what is left.
            realtime.publish(
                group=realtime.user_group(user.pk),
                frame={
                    "type": "mentions.seen",
                    "user_id": user.pk,
                    "ticket_id": ticket_id,
                    "unseen": unseen_mention_count(user=user),
                },
            )
    return count


# --- reads -------------------------------------------------------------------------------------


def notes_for_ticket(*, ticket_id: int) -> QuerySet[TicketNote]:
    return TicketNote.objects.filter(ticket_id=ticket_id).select_related("author").order_by("created_at", "id")


def unseen_mention_count(*, user: User) -> int:
    return NoteMention.objects.filter(user=user, seen_at__isnull=True).count()


def mentions_for(*, user: User) -> QuerySet[NoteMention]:
    """The user's mentions, unseen first then newest, with their note, author and ticket."""
    return (
        NoteMention.objects.filter(user=user)
        .select_related("note", "note__author", "note__ticket", "note__ticket__buyer")
        .order_by(F("seen_at").desc(nulls_first=True), "-id")
    )
