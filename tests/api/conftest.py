"""Fixtures of the REST API tests: one person per role, the shop's integration token, API clients."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from refundchat.api import tokens
from tests import factories
from tickets.roles import Role, ensure_role_groups
from tickets.services import claim_ticket

# Every role of the permission table (tests/api/test_permissions.py).
ROLES = ("buyer_a", "buyer_b", "agent", "finance", "warehouse", "manager", "anonymous", "integration")


@pytest.fixture(autouse=True)
def _generous_throttles(settings: Any) -> None:
    """Tests that are not about throttling never meet it (their rates are set by the throttling tests)."""
    settings.REFUNDCHAT_API_THROTTLE_RATES = {"token": None, "user": None, "anon": None}


@pytest.fixture
def roles() -> None:
    """The role groups, made once per test (the factories' role= would make them again for every person)."""
    ensure_role_groups()


def person(username: str, role: Role, **kwargs: Any) -> Any:
    user: Any = factories.UserFactory(username=username, is_staff=role is Role.MANAGER, **kwargs)
    user.groups.add(Group.objects.get(name=role.value))
    return user


@pytest.fixture
def alice(roles: None) -> Any:
    return person("alice", Role.BUYER, first_name="Alice")


@pytest.fixture
def bob(roles: None) -> Any:
    return person("bob", Role.BUYER, first_name="Bob")


@pytest.fixture
def wei(roles: None) -> Any:
    return person("wei", Role.AGENT)


@pytest.fixture
def people(alice: Any, bob: Any, wei: Any) -> dict[str, Any]:
    return {
        "buyer_a": alice,
        "buyer_b": bob,
        "agent": wei,
        "finance": person("fang", Role.FINANCE),
        "warehouse": person("cang", Role.WAREHOUSE),
        "manager": person("boss", Role.MANAGER),
    }


@pytest.fixture
def shop_user() -> Any:
    """The shop's order system: a service account allowed to push and read orders (granted in the admin)."""
    user: Any = factories.UserFactory(username="shop-erp")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="tickets", codename__in=["add_order", "change_order", "view_order"]
        )
    )
    return user


@pytest.fixture
def shop_token(shop_user: Any) -> str:
    _token, key = tokens.do_create_token(name="ERP", user=shop_user, scopes=list(tokens.SCOPES))
    return key


@pytest.fixture
def ticket(alice: Any, wei: Any) -> Any:
    """alice's open refund-only ticket for one ¥79.00 item, claimed by wei."""
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    claim_ticket(ticket_id=ticket.pk, agent=wei)
    return ticket


def client_for(role: str, *, people: dict[str, Any], shop_token: str) -> APIClient:
    """An API client acting as `role`: a session for people (CSRF enforced), the token for the integration."""
    client = APIClient(enforce_csrf_checks=False)
    if role == "integration":
        client.credentials(HTTP_AUTHORIZATION=f"Token {shop_token}")
    elif role != "anonymous":
        client.force_authenticate(user=people[role])
    return client


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
