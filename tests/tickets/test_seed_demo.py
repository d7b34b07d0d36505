from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from tickets.models import Order, OrderItem

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_accounts_and_orders_once():
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent
    users = get_user_model().objects
    expected = {
        "alice": "buyer",
        "bob": "buyer",
        "agent": "agent",
        "agent2": "agent",
        "finance": "finance",
        "warehouse": "warehouse",
        "manager": "manager",
    }
    for username, group in expected.items():
        user = users.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [group]
        assert authenticate(username=username, password="refundchat") == user
    assert users.get(username="manager").is_staff
    for buyer in ("alice", "bob"):
        orders = Order.objects.filter(buyer__username=buyer)
        assert orders.count() >= 20
        for order in orders.prefetch_related("items"):
            items = list(order.items.all())
            assert items
            assert (
                order.paid_total_cents == sum(i.unit_price_cents * i.quantity for i in items) + order.shipping_fee_cents
            )
    item = OrderItem.objects.first()
    assert item.sku
    assert item.title
    assert item.image.name.endswith(".png")
    assert item.image.storage.exists(item.image.name)
    assert users.filter(username__in=expected).count() == len(expected)


def test_seed_demo_refuses_when_demo_data_is_not_allowed(settings):
    settings.DEMO_DATA_ALLOWED = False
    with pytest.raises(CommandError, match="disabled"):
        call_command("seed_demo")
    assert not get_user_model().objects.filter(username="alice").exists()
