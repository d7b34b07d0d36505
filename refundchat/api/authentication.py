"""Who is calling: a browser session (with CSRF, DRF's SessionAuthentication) or an integration token."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from refundchat.api import tokens
from tickets.models import IntegrationToken

KEYWORDS = (b"token", b"bearer")


class IntegrationTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`); the request acts as the token's user."""

    def authenticate(self, request: Request) -> tuple[User, IntegrationToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: the session may still authenticate the request
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Send the token as “Authorization: Token <token>”."))
        try:
            key = parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("This token is not valid.")) from None
        token = tokens.token_for_key(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("This token is not valid, expired or was revoked."))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # A 401 (not a 403) for requests without credentials, telling the client how to authenticate.
        return 'Token realm="api"'


class IntegrationTokenScheme(OpenApiAuthenticationExtension):
    target_class = IntegrationTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: an integration token created in the admin (docs/api.md).",
        }
