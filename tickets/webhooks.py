"""Webhook subscriptions: who hears of ticket events (the outbox fans each event out, tickets/notifications.py).

Managed in the admin and through the API by whoever holds the model's add/change/delete permissions.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from refundchat.errors import Refused
from tickets.models import WebhookEvent, WebhookSubscription

MIN_SECRET_LENGTH = 16


class SubscriptionRefused(Refused):
    """A subscription that was not saved or deleted."""


def subscriptions_for(*, user: User) -> QuerySet[WebhookSubscription]:
    if not user.has_perm("tickets.view_webhooksubscription"):
        return WebhookSubscription.objects.none()
    return WebhookSubscription.objects.order_by("id")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def check_subscription(*, url: str, secret: str, event_types: Sequence[str]) -> None:
    if not url.startswith(("https://", "http://")):
        raise SubscriptionRefused("bad_url", _("The URL must start with https:// or http://."))
    if len(secret) < MIN_SECRET_LENGTH:
        raise SubscriptionRefused(
            "secret_too_short", _("The secret needs at least %(count)d characters.") % {"count": MIN_SECRET_LENGTH}
        )
    if not event_types or set(event_types) - set(WebhookEvent.values):
        raise SubscriptionRefused("bad_event_types", _("Choose one or more of the events."))


def do_save_subscription(
    *,
    by: User,
    url: str,
    event_types: Sequence[str],
    secret: str = "",
    active: bool = True,
    description: str = "",
    subscription_id: int | None = None,
) -> WebhookSubscription:
    """Create (subscription_id None) or change a subscription; an empty secret keeps the old one or makes one."""
    permission = "tickets.add_webhooksubscription" if subscription_id is None else "tickets.change_webhooksubscription"
    if not by.has_perm(permission):
        raise SubscriptionRefused("not_permitted", _("You may not manage webhook subscriptions."))
    with transaction.atomic():
        subscription = (
            WebhookSubscription(created_by=by)
            if subscription_id is None
            else WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
        )
        secret = secret or subscription.secret or new_secret()
        event_types = sorted(set(event_types))
        check_subscription(url=url, secret=secret, event_types=event_types)
        subscription.url, subscription.secret, subscription.event_types = url, secret, event_types
        subscription.active, subscription.description = active, description.strip()
        if subscription_id is None:
            subscription.save()
        else:
            subscription.save(update_fields=["url", "secret", "event_types", "active", "description", "updated_at"])
    return subscription


def do_delete_subscription(*, by: User, subscription_id: int) -> None:
    if not by.has_perm("tickets.delete_webhooksubscription"):
        raise SubscriptionRefused("not_permitted", _("You may not manage webhook subscriptions."))
    WebhookSubscription.objects.get(pk=subscription_id).delete()
