"""Orders pushed in by the shop's order system (the REST API), idempotent by order number.

Sending the same order twice leaves it as it was; sending it changed updates it, as long as the change
keeps what refund tickets already hold (their items, the amount already promised back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from refundchat.errors import Refused
from tickets.models import Order, OrderItem, RefundTicketItem
from tickets.roles import Role, can_use_console
from tickets.selectors import RELEASED_STATUSES


class OrderRefused(Refused):
    """An order that was not stored or changed."""


@dataclass(frozen=True)
class OrderItemData:
    sku: str
    title: str
    unit_price_cents: int
    quantity: int


@dataclass(frozen=True)
class OrderData:
    order_no: str
    buyer_username: str
    paid_total_cents: int
    paid_at: datetime
    items: Sequence[OrderItemData]
    shipping_fee_cents: int = 0
    delivered_at: datetime | None = None
    recipient_name: str = ""
    shipping_address: str = ""
    buyer_email: str = ""


def check_order_data(*, data: OrderData) -> None:
    if not data.items:
        raise OrderRefused("items_required", _("An order has at least one item."))
    skus = [item.sku for item in data.items]
    if len(set(skus)) != len(skus):
        raise OrderRefused("duplicate_sku", _("Each SKU may appear only once in an order."))
    if data.delivered_at is not None and data.delivered_at < data.paid_at:
        raise OrderRefused("delivered_before_paid", _("An order cannot be delivered before it was paid."))


def do_upsert_order(*, data: OrderData, by: User) -> tuple[Order, bool]:
    """Create the order, or bring the stored one in line with `data`; (order, created)."""
    check_order_data(data=data)
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("buyer").filter(order_no=data.order_no).first()
        if order is None:
            if not by.has_perm("tickets.add_order"):
                raise OrderRefused("not_permitted", _("You may not create orders."))
            try:
                with transaction.atomic():  # a savepoint: a concurrent push of the same order may win
                    order = Order.objects.create(order_no=data.order_no, buyer=_buyer(data=data), **_fields(data))
                    OrderItem.objects.bulk_create(OrderItem(order=order, **_item_fields(item)) for item in data.items)
                    return order, True
            except IntegrityError:
                order = Order.objects.select_for_update().select_related("buyer").get(order_no=data.order_no)
        _update(order=order, data=data, by=by)
    return order, False


def _update(*, order: Order, data: OrderData, by: User) -> None:
    if not by.has_perm("tickets.change_order"):
        raise OrderRefused("not_permitted", _("You may not change orders."))
    if order.buyer.get_username() != data.buyer_username:
        raise OrderRefused("buyer_changed", _("An order's buyer cannot change."))
    if data.paid_total_cents < order.refund_committed_cents:
        raise OrderRefused("below_committed", _("The paid total cannot drop below what refunds have already promised."))
    fields = _fields(data)
    changed = [name for name, value in fields.items() if getattr(order, name) != value]
    for name in changed:
        setattr(order, name, fields[name])
    if changed:
        order.save(update_fields=changed)
    _update_items(order=order, items=data.items)


def _update_items(*, order: Order, items: Sequence[OrderItemData]) -> None:
    stored = {item.sku: item for item in OrderItem.objects.filter(order=order)}
    # Units that live or refunded tickets hold, per order item: the order cannot drop below them.
    held = dict(
        RefundTicketItem.objects.filter(order_item__order=order)
        .exclude(ticket__status__in=RELEASED_STATUSES)
        .values_list("order_item_id")
        .annotate(total=Sum("quantity"))
        .values_list("order_item_id", "total")
    )
    in_tickets = set(RefundTicketItem.objects.filter(order_item__order=order).values_list("order_item_id", flat=True))
    wanted = {item.sku: item for item in items}
    for sku, kept in stored.items():
        if sku not in wanted and kept.pk in in_tickets:
            raise OrderRefused(
                "item_in_ticket", _("“%(sku)s” is part of a refund request and cannot be removed.") % {"sku": sku}
            )
    for sku, item in wanted.items():
        if sku not in stored:
            OrderItem.objects.create(order=order, **_item_fields(item))
            continue
        stored_item = stored[sku]
        if item.quantity < held.get(stored_item.pk, 0):
            raise OrderRefused(
                "item_in_ticket",
                _("“%(sku)s” has %(count)d units in refund requests; the quantity cannot go below that.")
                % {"sku": sku, "count": held[stored_item.pk]},
            )
        values = _item_fields(item)
        changed = [name for name, value in values.items() if getattr(stored_item, name) != value]
        for name in changed:
            setattr(stored_item, name, values[name])
        if changed:
            stored_item.save(update_fields=changed)
    OrderItem.objects.filter(order=order).exclude(sku__in=list(wanted)).delete()


def _buyer(*, data: OrderData) -> User:
    """The order's buyer: an existing buyer account, or a new one without a password (the shop signs them in)."""
    user = User.objects.filter(username=data.buyer_username).first()
    if user is None:
        user = User(username=data.buyer_username, email=data.buyer_email)
        user.set_unusable_password()
        user.save()
        group, _created = Group.objects.get_or_create(name=Role.BUYER.value)
        user.groups.add(group)
        return user
    if can_use_console(user) or user.is_staff:
        raise OrderRefused("buyer_is_staff", _("A staff account cannot be an order's buyer."))
    return user


def _fields(data: OrderData) -> dict[str, object]:
    return {
        "paid_total_cents": data.paid_total_cents,
        "shipping_fee_cents": data.shipping_fee_cents,
        "paid_at": data.paid_at,
        "delivered_at": data.delivered_at,
        "recipient_name": data.recipient_name,
        "shipping_address": data.shipping_address,
    }


def _item_fields(item: OrderItemData) -> dict[str, object]:
    return {
        "sku": item.sku,
        "title": item.title,
        "unit_price_cents": item.unit_price_cents,
        "quantity": item.quantity,
    }
