"""tickets.orders: the shop's order pushes, idempotent by order number even when two arrive at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests import factories
from tests.concurrency import run_concurrently
from tickets import orders
from tickets.models import Order, OrderItem

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop() -> Any:
    user: Any = factories.UserFactory(username="shop-erp")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="tickets", codename__in=["add_order", "change_order"])
    )
    return user


def data(**overrides: Any) -> orders.OrderData:
    values: dict[str, Any] = {
        "order_no": "ERP-1",
        "buyer_username": "carol",
        "paid_total_cents": 8700,
        "shipping_fee_cents": 800,
        "paid_at": timezone.now() - timedelta(days=1),
        "items": [orders.OrderItemData(sku="TEE", title="T恤", unit_price_cents=7900, quantity=1)],
        **overrides,
    }
    return orders.OrderData(**values)


def test_two_pushes_of_one_new_order_at_once_make_one_order(shop):
    pushed = data()
    results = run_concurrently([lambda: orders.do_upsert_order(data=pushed, by=shop)] * 2)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _order, created in results) == [False, True]
    assert Order.objects.count() == 1
    assert OrderItem.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"items": []}, "items_required"),
        ({"items": [orders.OrderItemData("A", "a", 1, 1), orders.OrderItemData("A", "b", 2, 1)]}, "duplicate_sku"),
        ({"delivered_at": timezone.now() - timedelta(days=3)}, "delivered_before_paid"),
    ],
)
def test_bad_orders_are_refused_before_anything_is_written(shop, change, code):
    with pytest.raises(orders.OrderRefused) as refused:
        orders.do_upsert_order(data=data(**change), by=shop)
    assert refused.value.code == code
    assert not Order.objects.exists()


def test_staff_cannot_be_a_buyer_and_only_permitted_users_push(shop):
    factories.agent(username="wei")
    with pytest.raises(orders.OrderRefused) as refused:
        orders.do_upsert_order(data=data(buyer_username="wei"), by=shop)
    assert refused.value.code == "buyer_is_staff"
    with pytest.raises(orders.OrderRefused) as refused:
        orders.do_upsert_order(data=data(), by=factories.buyer(username="mallory"))
    assert refused.value.code == "not_permitted"
    assert not Order.objects.exists()
