"""Authentication, token scopes, throttling and the error body: one shape, machine codes, the caller's language."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from refundchat.api import tokens
from tests import factories
from tests.api.conftest import token_client
from tickets.models import IntegrationToken

pytestmark = pytest.mark.django_db


def test_only_a_hash_of_the_token_is_stored(shop_user):
    token, key = tokens.do_create_token(name="ERP", user=shop_user, scopes=["orders:read", "nonsense:write"])
    assert key.startswith("rct_")
    assert len(key) > 40
    token.refresh_from_db()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {token.key_hash, token.prefix, token.name}
    assert token.scopes == ["orders:read"]  # unknown scopes are dropped
    assert token_client(key).get("/api/v1/orders/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("how", ["revoked", "expired", "user inactive", "wrong key"])
def test_a_dead_token_is_401(shop_user, how):
    token, key = tokens.do_create_token(name="ERP", user=shop_user, scopes=list(tokens.SCOPES))
    if how == "revoked":
        IntegrationToken.objects.filter(pk=token.pk).update(active=False)
    elif how == "expired":
        IntegrationToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif how == "user inactive":
        shop_user.is_active = False
        shop_user.save(update_fields=["is_active"])
    else:
        key = key[:-2] + "xx"
    response = token_client(key).get("/api/v1/orders/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_scopes_narrow_what_the_role_allows(shop_user):
    _token, key = tokens.do_create_token(name="read only", user=shop_user, scopes=["orders:read"])
    client = token_client(key)
    assert client.get("/api/v1/orders/").status_code == 200
    write = client.post("/api/v1/orders/", {}, format="json")
    assert (write.status_code, write.json()["code"]) == (403, "permission_denied")
    other = client.get("/api/v1/tickets/")
    assert other.status_code == 403


def test_a_buyer_token_sees_only_that_buyers_data(alice, bob, ticket):
    _token, key = tokens.do_create_token(name="bob's app", user=bob, scopes=list(tokens.SCOPES))
    client = token_client(key)
    assert client.get("/api/v1/tickets/").json()["results"] == []
    assert client.get("/api/v1/orders/").json()["results"] == []
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 404
    assert client.get(f"/api/v1/orders/{ticket.order.order_no}/").status_code == 404
    _token, alice_key = tokens.do_create_token(name="alice's app", user=alice, scopes=["tickets:read"])
    assert [row["id"] for row in token_client(alice_key).get("/api/v1/tickets/").json()["results"]] == [ticket.pk]


def test_the_browser_session_needs_its_csrf_token_to_write(alice, ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(f"/api/v1/tickets/{ticket.pk}/").status_code == 200
    refused = client.post(f"/api/v1/tickets/{ticket.pk}/cancel/", {}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    client.get("/refunds/")  # any page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    done = client.post(
        f"/api/v1/tickets/{ticket.pk}/cancel/", {}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "cancelled"


def test_throttled_per_token_and_per_user(settings, shop_user, shop_token):
    settings.REFUNDCHAT_API_THROTTLE_RATES = {"token": "2/min", "user": "4/min", "anon": None}
    client = token_client(shop_token)
    statuses = [client.get("/api/v1/orders/") for _ in range(3)]
    assert [response.status_code for response in statuses] == [200, 200, 429]
    throttled = statuses[-1]
    assert throttled.json()["code"] == "throttled"
    assert throttled.json()["retry_after"] > 0
    assert int(throttled["Retry-After"]) >= 1
    # A second token of the same account has its own token budget, but the account's is shared: 4 a minute.
    _other, second = tokens.do_create_token(name="second", user=shop_user, scopes=["orders:read"])
    other = token_client(second)
    assert [other.get("/api/v1/orders/").status_code for _ in range(2)] == [200, 429]

    session = APIClient()
    session.force_authenticate(factories.buyer(username="dora"))
    assert [session.get("/api/v1/tickets/").status_code for _ in range(5)] == [200] * 4 + [429]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        (None, "身份认证信息未提供。"),
        ("zh-hans", "身份认证信息未提供。"),
        ("en", "Authentication credentials were not provided."),
    ],
)
def test_error_messages_are_in_the_callers_language_and_codes_are_not(language: str | None, message: str):
    from django.utils import translation

    headers: dict[str, Any] = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    with translation.override(None):
        response = APIClient().get("/api/v1/tickets/", **headers)
    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "message": message}


def test_service_refusals_are_translated_too(ticket, wei):
    client = APIClient()
    client.force_authenticate(wei)
    url = f"/api/v1/tickets/{ticket.pk}/approve_refund_only/"
    zh = client.post(url, {"amount_cents": 999999}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
    en = client.post(url, {"amount_cents": 999999}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert zh.json()["code"] == en.json()["code"] == "amount_too_high"
    assert en.json()["message"].startswith("At most ¥79.00")
    assert "¥79.00" in zh.json()["message"]
    assert zh.json()["message"] != en.json()["message"]


def test_unknown_api_addresses_answer_with_the_error_body():
    response = APIClient().get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert APIClient().get("/api/v1/tickets/-1/messages/").json()["code"] == "not_found"


def test_admin_makes_a_token_and_shows_it_once(shop_user):
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    response = client.post(
        "/admin/tickets/integrationtoken/add/",
        {"name": "ERP", "user": shop_user.pk, "scopes": ["orders:read", "orders:write"], "active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    token = IntegrationToken.objects.get()
    page = response.content.decode()
    start = page.index("rct_")
    key = page[start : start + len(tokens.TOKEN_PREFIX) + 43]
    assert tokens.hash_token(key) == token.key_hash
    assert token.scopes == ["orders:read", "orders:write"]
    assert token_client(key).get("/api/v1/orders/").status_code == 200
    # Never shown again.
    assert "rct_" + key[4:] not in client.get(f"/admin/tickets/integrationtoken/{token.pk}/change/").content.decode()
