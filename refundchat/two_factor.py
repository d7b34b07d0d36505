"""Optional TOTP two-factor for staff (django-otp; docs/security.md, "Login").

A staff member who has a confirmed TOTP device is not logged in by the password alone: the login view keeps them
pending in the session and the code step logs them in and marks the session verified. With
REFUNDCHAT_REQUIRE_STAFF_2FA on, staff without a device are sent to the set-up page before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_otp.plugins.otp_totp.models import TOTPDevice

from tickets.roles import can_use_console

PENDING_SESSION_KEY = "refundchat_2fa_pending"
# Pages a pending or not yet enrolled staff member may still open.
OPEN_PATHS = ("/accounts/", "/static/", "/i18n/", "/healthz", "/readyz", "/metrics", "/favicon")


def is_staff_member(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_staff or can_use_console(user)))


def confirmed_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def needs_code(user: Any) -> bool:
    """Whether the password alone does not log this user in."""
    return is_staff_member(user) and confirmed_device(user) is not None


def verify_code(*, user: Any, code: str) -> TOTPDevice | None:
    """The user's confirmed device the code matches, or None. A matched code cannot be used twice (django-otp)."""
    code = "".join(code.split())
    if not code.isdigit():
        return None
    device = confirmed_device(user)
    return device if device is not None and device.verify_token(code) else None


def do_start_enrolment(*, user: Any) -> TOTPDevice:
    """The user's device being set up (unconfirmed until a code from it is entered)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="TOTP", confirmed=False)


def do_confirm_enrolment(*, device: TOTPDevice, code: str) -> bool:
    code = "".join(code.split())
    if not code.isdigit() or not device.verify_token(code):
        return False
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return True


def require_staff_two_factor(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """With REFUNDCHAT_REQUIRE_STAFF_2FA, a staff session that did not pass a code goes to the set-up page."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if (
            settings.REFUNDCHAT_REQUIRE_STAFF_2FA
            and not request.path.startswith(OPEN_PATHS)
            and is_staff_member(user)
            and not user.is_verified()
        ):
            return redirect("two_factor_setup")
        return get_response(request)

    return middleware
