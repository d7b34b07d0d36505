"""Request rates per integration token, per user and per anonymous address (cache-backed DRF throttles).

The rates live in settings.REFUNDCHAT_API_THROTTLE_RATES and are read per request, so a deployment (or a
test) can change them without a restart. Keys carry REFUNDCHAT_RATE_LIMIT_PREFIX, like the chat's buckets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from tickets.models import IntegrationToken

if TYPE_CHECKING:  # rest_framework.views imports the permission classes of the settings
    from rest_framework.views import APIView


class _SettingsRateThrottle(SimpleRateThrottle):
    def __init__(self) -> None:
        self.cache_format = f"{settings.REFUNDCHAT_RATE_LIMIT_PREFIX}:api:%(scope)s:%(ident)s"
        super().__init__()

    def get_rate(self) -> str | None:
        rate: str | None = settings.REFUNDCHAT_API_THROTTLE_RATES.get(self.scope or "")
        return rate


class TokenRateThrottle(_SettingsRateThrottle):
    """Each integration token on its own."""

    scope = "token"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.auth, IntegrationToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class UserRateThrottle(_SettingsRateThrottle):
    """Each person or service account, whichever way they authenticate."""

    scope = "user"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonRateThrottle(_SettingsRateThrottle):
    """Requests without credentials, per client address (they only ever get a 401)."""

    scope = "anon"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
