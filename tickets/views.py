"""Buyer pages: my orders, requesting a refund, my refunds and the ticket chat."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from messaging.context import chat_context
from messaging.selectors import with_unread
from refundchat.errors import Refused
from tickets import payouts, selectors, services, workflow
from tickets.forms import RefundRequestForm, TransitionForm
from tickets.models import RefundTicket
from tickets.roles import AuthenticatedRequest
from tickets.workflow import Transition


@login_required
def order_list(request: AuthenticatedRequest) -> HttpResponse:
    orders = selectors.orders_for_buyer(buyer=request.user)
    return render(request, "tickets/order_list.html", {"orders": orders})


@login_required
def order_detail(request: AuthenticatedRequest, order_no: str) -> HttpResponse:
    order = selectors.get_buyer_order(buyer=request.user, order_no=order_no)
    tickets = order.tickets.order_by("-created_at")
    return render(request, "tickets/order_detail.html", {"order": order, "tickets": tickets})


@sensitive_post_parameters("payout_account")  # never in error reports
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
                payout_method=form.cleaned_data["payout_method"] or "",
                payout_account=form.cleaned_data["payout_account"] or "",
            )
        except (services.TicketError, payouts.PayoutError) as error:
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
    events = list(selectors.timeline(ticket=ticket, for_buyer=True))
    return render(
        request,
        "tickets/ticket_detail.html",
        {
            "ticket": ticket,
            "order": ticket.order,
            "events": events,
            "steps": selectors.progress_steps(ticket=ticket, events=events),
            "actions": transition_actions(request, ticket=ticket),
            "action_url": "tickets:ticket_transition",
            **chat_context(conversation=ticket.conversation, viewer=request.user, can_send=True),
        },
    )


# What the user typed into an action that was refused, for its form on the page they are sent back to.
REFUSED_INPUT_SESSION_KEY = "tickets:refused-action-input"


def transition_actions(
    request: AuthenticatedRequest, *, ticket: RefundTicket
) -> list[tuple[Transition, TransitionForm]]:
    """The steps the user may take on `ticket` now, each with the form it needs.

    The form of an action just refused comes back filled in with what they typed (chosen files excepted), open.
    """
    refused = request.session.pop(REFUSED_INPUT_SESSION_KEY, None)
    if refused is not None and refused["ticket"] != ticket.pk:
        refused = None
    actions = []
    for transition in workflow.available_transitions(ticket=ticket, user=request.user):
        form = TransitionForm(transition=transition, ticket=ticket, prefix=transition.name)
        if refused is not None and refused["name"] == transition.name:
            form.keep_input(refused["data"])
        actions.append((transition, form))
    return actions


def perform_transition(request: AuthenticatedRequest, *, ticket: RefundTicket, name: str) -> None:
    """Validate the POSTed form of transition `name` and take it; the outcome becomes a page message."""
    transition = workflow.TRANSITIONS.get(name)
    if transition is None:
        raise Http404("No such action")
    form = TransitionForm(request.POST, request.FILES, transition=transition, ticket=ticket, prefix=name)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        _keep_refused_input(request, form=form, ticket=ticket)
        return
    try:
        if photos := form.photos():
            workflow.do_transition_with_photos(
                ticket_id=ticket.pk, name=name, user=request.user, given=form.transition_input(), photos=photos
            )
        else:
            workflow.do_transition(ticket_id=ticket.pk, name=name, user=request.user, given=form.transition_input())
    except Refused as refused:
        # A refused transition, or a photo refused by media's content checks: nothing was kept.
        messages.error(request, refused.message)
        _keep_refused_input(request, form=form, ticket=ticket)
    else:
        messages.success(request, _("Done: %(action)s.") % {"action": transition.label})


def _keep_refused_input(request: AuthenticatedRequest, *, form: TransitionForm, ticket: RefundTicket) -> None:
    # Nobody should have to type a tracking number or a reason twice because one character was off.
    request.session[REFUSED_INPUT_SESSION_KEY] = {
        "ticket": ticket.pk,
        "name": form.transition.name,
        "data": form.submitted_input(),
    }


@require_POST
@login_required
def ticket_transition(request: AuthenticatedRequest, ticket_id: int, name: str) -> HttpResponse:
    ticket = selectors.get_buyer_ticket(buyer=request.user, ticket_id=ticket_id)
    perform_transition(request, ticket=ticket, name=name)
    return redirect("tickets:ticket_detail", ticket_id=ticket.pk)


@csrf_exempt  # a server-to-server call, authenticated by its HMAC signature instead
@require_POST
def payout_callback(request: HttpRequest) -> JsonResponse:
    try:
        payout = payouts.handle_callback(body=request.body, signature=request.headers.get("X-Payout-Signature", ""))
    except payouts.PayoutError as error:
        status = 403 if error.code == "bad_signature" else 400
        return JsonResponse({"error": error.code, "message": error.message}, status=status)
    return JsonResponse({"ok": True, "status": payout.status})
