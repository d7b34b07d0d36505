"""The agent console: the live queue and the ticket workspace."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from messaging.context import chat_context
from messaging.selectors import can_send, with_unread
from refundchat.pagination import CappedCount, count_up_to
from tickets import access_log, notes, payouts, routing, selectors, services
from tickets.console_forms import ConsoleQueueFilterForm
from tickets.formatting import format_cny
from tickets.models import AccessAction, Payout
from tickets.roles import AuthenticatedRequest, can_handle_tickets, can_use_console
from tickets.views import perform_transition, transition_actions


def console_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_use_console(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@console_required
def queue(request: AuthenticatedRequest) -> HttpResponse:
    view = request.GET.get("view", "open")
    if view not in selectors.QUEUE_VIEWS:
        view = "open"
    filter_form = ConsoleQueueFilterForm(request.GET or None)
    filters = filter_form.queue_filters()
    tickets = with_unread(selectors.console_queue(view=view, user=request.user, filters=filters), user=request.user)
    page = selectors.queue_page(
        tickets,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
        size=settings.REFUNDCHAT_QUEUE_PAGE_SIZE,
    )
    counts = selectors.queue_counts(user=request.user)
    # The view's count is known from the tabs; a filtered view is counted up to a cap, like search results.
    total = count_up_to(tickets) if filters != selectors.QueueFilters() else CappedCount(counts[view], capped=False)
    query = request.GET.copy()
    for cursor in ("page", "after", "before"):
        query.pop(cursor, None)
    return render(
        request,
        "console/queue.html",
        {
            "page": page,
            "tickets": page.tickets,
            "total": total,
            "view": view,
            "views": [(name, VIEW_LABELS[name], counts[name]) for name in selectors.QUEUE_VIEWS],
            "filter_form": filter_form,
            "filters_query": query.urlencode(),
            "unseen_mentions": notes.unseen_mention_count(user=request.user),
        },
    )


VIEW_LABELS = {
    "mine": gettext_lazy("Mine"),
    "unassigned": gettext_lazy("Unassigned"),
    "open": gettext_lazy("All open"),
    "waiting": gettext_lazy("Waiting on buyer"),
    "sla": gettext_lazy("SLA at risk"),
    "escalated": gettext_lazy("Escalated"),
    "closed": gettext_lazy("Closed"),
}


@console_required
def ticket_workspace(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    from tickets.workspace_views import workspace_context

    ticket = selectors.get_console_ticket(ticket_id=ticket_id)
    # Staff reading a buyer's case is personal data access (issue #9).
    access_log.record_access(
        actor=request.user, action=AccessAction.TICKET_VIEWED, ticket_id=ticket.pk, target=f"ticket:{ticket.pk}"
    )
    events = list(selectors.timeline(ticket=ticket, for_buyer=False))
    return render(
        request,
        "console/ticket.html",
        {
            "ticket": ticket,
            "order": ticket.order,
            "events": events,
            **workspace_context(request, ticket=ticket, events=events),
            **chat_context(
                conversation=ticket.conversation,
                viewer=request.user,
                can_send=can_send(user=request.user, ticket=ticket),
            ),
            "can_claim": can_handle_tickets(request.user) and ticket.is_open and ticket.assigned_agent_id is None,
            "actions": transition_actions(request, ticket=ticket),
            "action_url": "console:transition",
            "transfer_to": routing.transfer_targets(ticket=ticket) if can_handle_tickets(request.user) else [],
        },
    )


@require_POST
@console_required
def transition(request: AuthenticatedRequest, ticket_id: int, name: str) -> HttpResponse:
    ticket = selectors.get_console_ticket(ticket_id=ticket_id)
    perform_transition(request, ticket=ticket, name=name)
    return redirect("console:ticket", ticket_id=ticket.pk)


@require_POST
@console_required
def claim(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    selectors.get_console_ticket(ticket_id=ticket_id)  # 404 for a ticket that does not exist
    try:
        services.claim_ticket(ticket_id=ticket_id, agent=request.user)
    except services.TicketError as error:
        messages.error(request, str(error))
    return redirect("console:ticket", ticket_id=ticket_id)


@console_required
def payouts_list(request: AuthenticatedRequest) -> HttpResponse:
    if not request.user.has_perm("tickets.manage_payout"):
        raise PermissionDenied
    return render(request, "console/payouts.html", {"payouts": selectors.payouts_for_finance()})


@console_required
def returns_list(request: AuthenticatedRequest) -> HttpResponse:
    if not request.user.has_perm("tickets.receive_return"):
        raise PermissionDenied
    return render(request, "console/returns.html", {"tickets": selectors.returns_for_warehouse()})


@require_POST
@console_required
def payout_decision(request: AuthenticatedRequest, payout_id: int, decision: str) -> HttpResponse:
    """Finance approves a large payout or retries a failed one."""
    perform = {"approve": payouts.do_approve_payout, "retry": payouts.do_retry_payout}.get(decision)
    if perform is None:
        raise Http404("No such decision")
    try:
        payout = perform(payout_id=payout_id, user=request.user)
    except Payout.DoesNotExist:
        raise Http404("No such payout") from None
    except payouts.PayoutError as error:
        messages.error(request, error.message)
        return redirect("console:payouts")
    messages.success(
        request,
        _("Payout of %(amount)s for %(number)s sent to the gateway.")
        % {
            "amount": format_cny(payout.amount_cents),
            "number": payout.ticket.number,
        },
    )
    if request.POST.get("back") == "ticket":
        return redirect("console:ticket", ticket_id=payout.ticket_id)
    return redirect("console:payouts")


@require_POST
@console_required
def transfer(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    selectors.get_console_ticket(ticket_id=ticket_id)  # 404 for a ticket that does not exist
    try:
        to_agent_id = int(request.POST.get("agent", ""))
    except ValueError:
        messages.error(request, _("Choose an agent to hand the ticket to."))
        return redirect("console:ticket", ticket_id=ticket_id)
    try:
        services.transfer_ticket(
            ticket_id=ticket_id, by=request.user, to_agent_id=to_agent_id, note=request.POST.get("note", "")
        )
    except services.TicketError as error:
        messages.error(request, str(error))
    return redirect("console:ticket", ticket_id=ticket_id)


@require_POST
@console_required
def unassign(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    selectors.get_console_ticket(ticket_id=ticket_id)
    try:
        services.unassign_ticket(ticket_id=ticket_id, by=request.user)
    except services.TicketError as error:
        messages.error(request, str(error))
    return redirect("console:ticket", ticket_id=ticket_id)
