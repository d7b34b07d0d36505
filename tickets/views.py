"""Buyer pages: my orders, requesting a refund, my refunds and the ticket chat."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language

from messaging.context import chat_context
from messaging.selectors import with_unread
from tickets import selectors, services
from tickets.forms import RefundRequestForm
from tickets.roles import AuthenticatedRequest


@login_required
def order_list(request: AuthenticatedRequest) -> HttpResponse:
    orders = selectors.orders_for_buyer(buyer=request.user)
    return render(request, "tickets/order_list.html", {"orders": orders})


@login_required
def order_detail(request: AuthenticatedRequest, order_no: str) -> HttpResponse:
    order = selectors.get_buyer_order(buyer=request.user, order_no=order_no)
    tickets = order.tickets.order_by("-created_at")
    return render(request, "tickets/order_detail.html", {"order": order, "tickets": tickets})


@login_required
def refund_request(request: AuthenticatedRequest, order_no: str) -> HttpResponse:
    order = selectors.get_buyer_order(buyer=request.user, order_no=order_no)
    form = RefundRequestForm(
        request.POST or None,
        order=order,
        refundable=selectors.refundable_quantities(order=order),
        open_tickets=selectors.items_in_open_tickets(order=order),
    )
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.create_refund_ticket(
                buyer=request.user,
                order_no=order.order_no,
                kind=form.cleaned_data["kind"],
                reason=form.cleaned_data["reason"],
                items=form.requested_items(),
                description=form.cleaned_data["description"],
                language=get_language(),
            )
        except services.TicketError as error:
            form.add_error(None, str(error))
        else:
            return redirect("tickets:ticket_detail", ticket_id=ticket.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "tickets/refund_request.html", {"order": order, "form": form}, status=status)


@login_required
def ticket_list(request: AuthenticatedRequest) -> HttpResponse:
    tickets = with_unread(selectors.tickets_for_buyer(buyer=request.user), user=request.user)
    return render(request, "tickets/ticket_list.html", {"tickets": tickets})


@login_required
def ticket_detail(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    ticket = selectors.get_buyer_ticket(buyer=request.user, ticket_id=ticket_id)
    return render(
        request,
        "tickets/ticket_detail.html",
        {
            "ticket": ticket,
            "order": ticket.order,
            "events": selectors.timeline(ticket=ticket, for_buyer=True),
            **chat_context(conversation=ticket.conversation, viewer=request.user, can_send=True),
        },
    )
