"""The agent console: the live queue and the ticket workspace."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from messaging.context import chat_context
from messaging.selectors import can_send, with_unread
from tickets import selectors, services
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
    tickets = with_unread(selectors.console_queue(), user=request.user)
    page = Paginator(tickets, settings.REFUNDCHAT_QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "console/queue.html", {"page": page, "tickets": page.object_list})


@console_required
def ticket_workspace(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.get_console_ticket(ticket_id=ticket_id)
    return render(
        request,
        "console/ticket.html",
        {
            "ticket": ticket,
            "order": ticket.order,
            "events": selectors.timeline(ticket=ticket, for_buyer=False),
            **chat_context(
                conversation=ticket.conversation,
                viewer=request.user,
                can_send=can_send(user=request.user, ticket=ticket),
            ),
            "can_claim": can_handle_tickets(request.user) and ticket.is_open and ticket.assigned_agent_id is None,
            "actions": transition_actions(ticket=ticket, user=request.user),
            "action_url": "console:transition",
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
