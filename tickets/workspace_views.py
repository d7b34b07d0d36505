"""The agents' workspace around a ticket: notes and mentions, labels, team hand-overs, canned replies, search."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from messaging.assistant import selectors as assistant_selectors
from messaging.assistant import services as assistant_services
from refundchat.errors import Refused
from refundchat.pagination import CappedPaginator
from tickets import canned, notes, search, services
from tickets.console_forms import CannedReplyForm, LabelsForm, NoteForm, TeamTransferForm
from tickets.console_views import console_required
from tickets.models import CannedReply, Label, RefundTicket, TicketEvent
from tickets.roles import AuthenticatedRequest

SEARCH_PAGE_SIZE = 20
# Matches counted at most (refundchat/pagination.py): a common word's exact count cost more than its page.
SEARCH_COUNT_CAP = 1000


def workspace_context(
    request: AuthenticatedRequest, *, ticket: RefundTicket, events: list[TicketEvent]
) -> dict[str, Any]:
    """What the ticket page adds for the workspace; opening the ticket marks the viewer's mentions on it seen."""
    notes.mark_mentions_seen(user=request.user, ticket_id=ticket.pk)
    ticket_labels = list(ticket.labels.all())
    replies = canned.rendered_replies(user=request.user, ticket=ticket, events=events)
    return {
        "ticket_labels": ticket_labels,
        "all_labels": list(Label.objects.order_by("name")),
        "ticket_label_ids": {label.pk for label in ticket_labels},
        "ticket_notes": notes.notes_for_ticket(ticket_id=ticket.pk),
        "note_form": NoteForm(),
        "team_form": TeamTransferForm(initial={"team": ticket.team}),
        "canned_replies": [dataclasses.asdict(reply) for reply in replies],
        "canned_labels": {
            "empty": _("No canned reply matches."),
            "hint": _("↑↓ choose · Enter insert · Esc close"),
            "team": _("team"),
        },
        "unseen_mentions": notes.unseen_mention_count(user=request.user),
        "assistant_dialog": assistant_selectors.dialog_for_ticket(ticket_id=ticket.pk),
    }


def _back(ticket_id: int) -> HttpResponse:
    return redirect("console:ticket", ticket_id=ticket_id)


def _ticket_or_404(ticket_id: int) -> None:
    if not RefundTicket.objects.filter(pk=ticket_id).exists():
        raise Http404("No such ticket")


@require_POST
@console_required
def add_note(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    _ticket_or_404(ticket_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write the note first."))
        return _back(ticket_id)
    try:
        notes.add_note(ticket_id=ticket_id, author=request.user, body=form.cleaned_data["body"])
    except Refused as error:
        messages.error(request, error.message)
    return redirect(reverse("console:ticket", kwargs={"ticket_id": ticket_id}) + "#notes")


@require_POST
@console_required
def set_labels(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    _ticket_or_404(ticket_id)
    form = LabelsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That label does not exist (any more)."))
        return _back(ticket_id)
    try:
        services.set_labels(
            ticket_id=ticket_id, by=request.user, label_ids=[label.pk for label in form.cleaned_data["labels"]]
        )
    except Refused as error:
        messages.error(request, error.message)
    return _back(ticket_id)


@require_POST
@console_required
def team_transfer(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    _ticket_or_404(ticket_id)
    form = TeamTransferForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the finance or the warehouse team."))
        return _back(ticket_id)
    try:
        services.transfer_to_team(
            ticket_id=ticket_id, by=request.user, team=form.cleaned_data["team"], note=form.cleaned_data["note"]
        )
    except Refused as error:
        messages.error(request, error.message)
    return _back(ticket_id)


@require_POST
@console_required
def assistant_handback(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    """Give the conversation back to the triage assistant (messaging/assistant)."""
    _ticket_or_404(ticket_id)
    try:
        assistant_services.hand_back(ticket_id=ticket_id, by=request.user)
    except Refused as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The assistant has the conversation again."))
    return _back(ticket_id)


@console_required
def mentions(request: AuthenticatedRequest) -> HttpResponse:
    page = Paginator(notes.mentions_for(user=request.user), settings.REFUNDCHAT_QUEUE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "console/mentions.html",
        {"page": page, "unseen_mentions": notes.unseen_mention_count(user=request.user)},
    )


@require_POST
@console_required
def mentions_seen(request: AuthenticatedRequest) -> HttpResponse:
    notes.mark_mentions_seen(user=request.user)
    return redirect("console:mentions")


# --- canned replies ----------------------------------------------------------------------------------------


@console_required
def canned_list(request: AuthenticatedRequest) -> HttpResponse:
    replies = canned.replies_for(user=request.user).select_related("owner")
    return render(
        request,
        "console/canned_list.html",
        {
            "replies": replies,
            "can_manage_team": canned.can_manage_team_replies(request.user),
            "variables": canned.VARIABLES,
        },
    )


@console_required
def canned_edit(request: AuthenticatedRequest, reply_id: int | None = None) -> HttpResponse:
    allow_team = canned.can_manage_team_replies(request.user)
    reply: CannedReply | None = None
    if reply_id is not None:
        try:
            reply = canned.editable_reply(user=request.user, reply_id=reply_id)
        except CannedReply.DoesNotExist:
            raise Http404("No such reply") from None
    initial = (
        {"title": reply.title, "language": reply.language, "body": reply.body, "team": reply.owner_id is None}
        if reply
        else {"language": request.LANGUAGE_CODE if request.LANGUAGE_CODE in ("zh-hans", "en") else "zh-hans"}
    )
    form = CannedReplyForm(request.POST or None, initial=initial, allow_team=allow_team)
    if request.method == "POST" and form.is_valid():
        try:
            canned.save_reply(
                user=request.user,
                reply_id=reply.pk if reply else None,
                title=form.cleaned_data["title"],
                language=form.cleaned_data["language"],
                body=form.cleaned_data["body"],
                team=bool(form.cleaned_data.get("team")),
            )
        except Refused as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("Reply saved."))
            return redirect("console:canned_list")
    return render(request, "console/canned_form.html", {"form": form, "reply": reply})


@require_POST
@console_required
def canned_delete(request: AuthenticatedRequest, reply_id: int) -> HttpResponse:
    try:
        canned.delete_reply(user=request.user, reply_id=reply_id)
    except Refused as error:
        raise Http404(error.message) from None
    messages.success(request, _("Reply deleted."))
    return redirect("console:canned_list")


# --- search ------------------------------------------------------------------------------------------------


@console_required
def search_view(request: AuthenticatedRequest) -> HttpResponse:
    query = search.clean_query(request.GET.get("q", ""))
    what = request.GET.get("in", "tickets")
    if what not in ("tickets", "messages"):
        what = "tickets"
    page = None
    if query:
        results = search.search_tickets(query=query) if what == "tickets" else search.search_messages(query=query)
        page = CappedPaginator(results, SEARCH_PAGE_SIZE, cap=SEARCH_COUNT_CAP).get_page(request.GET.get("page"))
    return render(
        request,
        "console/search.html",
        {"query": query, "what": what, "page": page, "unseen_mentions": notes.unseen_mention_count(user=request.user)},
    )
