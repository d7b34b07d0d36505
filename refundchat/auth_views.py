"""Log in with failed-attempt throttling, the TOTP code step for staff, and TOTP set-up (docs/security.md)."""

from __future__ import annotations

from base64 import b32encode
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login

from refundchat import login_throttle, two_factor


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing every attempt once the address or the account used up its failures."""

    def clean(self) -> dict[str, Any]:
        assert self.request is not None
        ip = login_throttle.client_ip(self.request)
        username = str(self.cleaned_data.get("username") or "")
        try:
            login_throttle.check_login_allowed(ip=ip, username=username)
        except login_throttle.LoginThrottled as throttled:
            raise ValidationError(throttled.message, code="throttled") from None
        try:
            return super().clean()
        except ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                login_throttle.do_record_failure(ip=ip, username=username)
            raise


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        login_throttle.do_clear_account(username=user.get_username())
        if two_factor.needs_code(user):
            # Not logged in yet: only the code step may finish it.
            self.request.session[two_factor.PENDING_SESSION_KEY] = {
                "user_id": user.pk,
                "backend": getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[0]),
                "next": self.get_redirect_url(),
            }
            return redirect("login_code")
        return super().form_valid(form)


class CodeForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=12)


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: a code from the staff member's authenticator app."""
    pending = request.session.get(two_factor.PENDING_SESSION_KEY)
    user = User.objects.filter(pk=pending["user_id"], is_active=True).first() if pending else None
    if pending is None or user is None:
        return redirect("login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ip = login_throttle.client_ip(request)
        try:
            login_throttle.check_login_allowed(ip=ip, username=user.get_username())
        except login_throttle.LoginThrottled as throttled:
            form.add_error(None, throttled.message)
        else:
            device = two_factor.verify_code(user=user, code=form.cleaned_data["code"])
            if device is None:
                login_throttle.do_record_failure(ip=ip, username=user.get_username())
                form.add_error("code", _("That code is not right. Enter the current code from your app."))
            else:
                del request.session[two_factor.PENDING_SESSION_KEY]
                auth.login(request, user, backend=pending["backend"])
                otp_login(request, device)
                return redirect(_safe_next(request, pending.get("next")))
    return render(request, "registration/login_code.html", {"form": form})


@login_required
@csrf_protect
@never_cache
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Staff add an authenticator app (or, with a device already, confirm this session with a code)."""
    user: Any = request.user
    if not two_factor.is_staff_member(user):
        return redirect("home")
    device = two_factor.confirmed_device(user)
    form = CodeForm(request.POST or None)
    if device is not None:
        if request.method == "POST" and form.is_valid():
            matched = two_factor.verify_code(user=user, code=form.cleaned_data["code"])
            if matched is not None:
                otp_login(request, matched)
                return redirect("home")
            form.add_error("code", _("That code is not right. Enter the current code from your app."))
        return render(request, "registration/two_factor_setup.html", {"form": form, "enrolled": True})
    pending_device = two_factor.do_start_enrolment(user=user)
    if request.method == "POST" and form.is_valid():
        if two_factor.do_confirm_enrolment(device=pending_device, code=form.cleaned_data["code"]):
            otp_login(request, pending_device)
            return redirect("home")
        form.add_error("code", _("That code is not right. Enter the current code from your app."))
    context = {
        "form": form,
        "enrolled": False,
        "secret": b32encode(pending_device.bin_key).decode().rstrip("="),
        "config_url": pending_device.config_url,
    }
    return render(request, "registration/two_factor_setup.html", context)


def _safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page: the site's throttled login for the logged out.

    Someone logged in who is not admin staff (an agent, a buyer) is refused here with a 403: sending them on to the
    site's login, which sends a logged-in user back to `next`, would bounce between the two forever.
    """
    if request.user.is_authenticated:
        if request.user.is_active and request.user.is_staff:
            return redirect(_safe_next(request, request.GET.get("next")) if request.GET.get("next") else "admin:index")
        raise PermissionDenied
    query = request.META.get("QUERY_STRING", "")
    return redirect(resolve_url("login") + (f"?{query}" if query else ""))
