"""The buyer's privacy page (issue #9): download all my data, erase my account. Rules in tickets/privacy.py."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from tickets import privacy
from tickets.roles import AuthenticatedRequest


class ErasureForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Your password, to confirm"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "data-testid": "erase-password"}),
    )


@login_required
def privacy_page(request: AuthenticatedRequest) -> HttpResponse:
    return _render(request, ErasureForm())


def _render(request: AuthenticatedRequest, form: ErasureForm, *, status: int = 200) -> HttpResponse:
    export = privacy.latest_export(buyer=request.user)
    link = privacy.export_link_token(export=export) if export is not None and export.status == "ready" else None
    return render(
        request, "tickets/privacy.html", {"export": export, "export_token": link, "form": form}, status=status
    )


@require_POST
@login_required
def request_export(request: AuthenticatedRequest) -> HttpResponse:
    privacy.request_export(buyer=request.user)
    messages.success(request, _("Your data is being prepared; the download link appears here when it is ready."))
    return redirect("tickets:privacy")


@login_required
def download_export(request: AuthenticatedRequest, token: str) -> FileResponse:
    try:
        path = privacy.open_export(token=token, user=request.user)
    except privacy.PrivacyRefused:
        raise Http404("No such export") from None
    response = FileResponse(path.open("rb"), as_attachment=True, filename="refundchat-my-data.zip")
    response["Cache-Control"] = "private, no-store"
    return response


@sensitive_post_parameters("password")
@require_POST
@login_required
def erase_account(request: AuthenticatedRequest) -> HttpResponse:
    form = ErasureForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=400)
    try:
        privacy.do_erase_buyer(buyer=request.user, password=form.cleaned_data["password"])
    except privacy.PrivacyRefused as refused:
        form.add_error("password" if refused.code == "wrong_password" else None, refused.message)
        return _render(request, form, status=400)
    logout(request)
    messages.success(request, _("Your personal data has been erased and you have been logged out."))
    return redirect("login")
