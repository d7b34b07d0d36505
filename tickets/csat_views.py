"""The buyer's rating of a finished ticket (the quick-reply widget on the ticket page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tickets import csat
from tickets.console_forms import RatingForm
from tickets.roles import AuthenticatedRequest


@require_POST
@login_required
def rate_ticket(request: AuthenticatedRequest, ticket_id: int) -> HttpResponse:
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = RatingForm(request.POST)
    try:
        if not form.is_valid():
            raise csat.RatingRefused("bad_score", _("Choose from 1 to 5 stars."))
        csat.submit_rating(
            ticket_id=ticket_id,
            buyer=request.user,
            score=form.cleaned_data["score"],
            comment=form.cleaned_data["comment"],
        )
    except csat.RatingRefused as error:
        if error.code == "not_found":
            if wants_json:
                return JsonResponse({"code": error.code, "message": error.message}, status=404)
            return HttpResponse(status=404)
        if wants_json:
            return JsonResponse({"code": error.code, "message": error.message}, status=400)
        messages.error(request, error.message)
        return redirect("tickets:ticket_detail", ticket_id=ticket_id)
    if wants_json:
        return JsonResponse({"ok": True, "message": _("Thank you for your rating!")})
    messages.success(request, _("Thank you for your rating!"))
    return redirect("tickets:ticket_detail", ticket_id=ticket_id)
