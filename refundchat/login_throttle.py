"""Failed-login throttling per client address and per account name (docs/security.md, "Login").

Fixed windows counted in the cache (Redis in production, shared by every process): after
REFUNDCHAT_LOGIN_LIMITS["ip"] failures from one address, or ["account"] failures for one user name, further
attempts are refused until the window ends, whether the password is right or not. A successful login clears the
account's count (the address's stays: one address guessing many accounts is the attack it stops).
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import ngettext

from refundchat import rate_limits


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        self.message = ngettext(
            "Too many failed logins. Try again in %(minutes)d minute.",
            "Too many failed logins. Try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
        super().__init__(self.message)


def client_ip(request: HttpRequest) -> str:
    # Daphne runs with --proxy-headers behind nginx, so REMOTE_ADDR is the client's, not the proxy's.
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _keys(*, ip: str, username: str) -> dict[str, str]:
    # Hashed: the cache holds no user names, and odd characters make no odd keys.
    account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    return {"ip": f"login-fail:ip:{ip}", "account": f"login-fail:account:{account}"}


def check_login_allowed(*, ip: str, username: str) -> None:
    """Raise LoginThrottled when the address or the account has used up its failures."""
    waits = []
    for kind, key in _keys(ip=ip, username=username).items():
        limit, window = settings.REFUNDCHAT_LOGIN_LIMITS[kind]
        count, wait = rate_limits.window_state(key=key, window=window)
        if count >= limit:
            waits.append(wait)
    if waits:
        raise LoginThrottled(retry_after=max(waits))


def do_record_failure(*, ip: str, username: str) -> None:
    for kind, key in _keys(ip=ip, username=username).items():
        rate_limits.do_hit(key=key, window=settings.REFUNDCHAT_LOGIN_LIMITS[kind][1])


def do_clear_account(*, username: str) -> None:
    cache.delete(_keys(ip="", username=username)["account"])


def do_clear_address(*, ip: str) -> None:
    """Lift an address's lock (an operator's action, and the tests' clean-up)."""
    cache.delete(_keys(ip=ip, username="")["ip"])
