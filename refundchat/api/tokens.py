"""Integration tokens: made in the admin, shown once, stored as a SHA-256 hash, narrowed by scopes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from tickets.models import IntegrationToken

# The resources of /api/v1/; a token holds "<resource>:read" and/or "<resource>:write" for each it may use.
RESOURCES = ("orders", "tickets", "messages", "attachments", "canned_replies", "webhooks")
SCOPES = tuple(f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write"))
# "rct_" tells a leaked string for what it is (secret scanners, logs).
TOKEN_PREFIX = "rct_"
PREFIX_LENGTH = 12
LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def do_create_token(
    *, name: str, user: User, scopes: list[str], expires_at: datetime | None = None
) -> tuple[IntegrationToken, str]:
    """Create a token acting as `user`; returns it with the key, which is never stored and never shown again."""
    key = new_key()
    token = IntegrationToken.objects.create(
        name=name,
        user=user,
        key_hash=hash_token(key),
        prefix=key[:PREFIX_LENGTH],
        scopes=sorted(set(scopes) & set(SCOPES)),
        expires_at=expires_at,
    )
    return token, key


def token_for_key(key: str) -> IntegrationToken | None:
    """The active, unexpired token with this key, with its active user; None otherwise."""
    token = (
        IntegrationToken.objects.select_related("user")
        .filter(key_hash=hash_token(key), active=True, user__is_active=True)
        .first()
    )
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    now = timezone.now()
    # At most one write a minute per token: the admin shows roughly when it was last used.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        IntegrationToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def has_scope(*, token: IntegrationToken, resource: str, write: bool) -> bool:
    return f"{resource}:{'write' if write else 'read'}" in token.scopes
