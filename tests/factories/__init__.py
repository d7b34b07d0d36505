"""Factories for the test suite. Tickets are opened through the real service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.utils import timezone

from tickets.models import Order, OrderItem, RefundTicket
from tickets.roles import Role, ensure_role_groups
from tickets.services import RequestedItem, create_refund_ticket

PASSWORD = "refundchat"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def role(user: Any, create: bool, extracted: Role | None, **kwargs: Any) -> None:
        if extracted is not None:
            ensure_role_groups()
            user.groups.add(Group.objects.get(name=extracted.value))
        user.save()


def with_server_password(user: Any) -> Any:
    """Hash the password as the live server's settings do (the browser tests log in for real)."""
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    return user


def buyer(**kwargs: Any) -> Any:
    return UserFactory(role=Role.BUYER, **kwargs)


def agent(**kwargs: Any) -> Any:
    return UserFactory(role=Role.AGENT, **kwargs)


def staff(role: Role, **kwargs: Any) -> Any:
    return UserFactory(role=role, is_staff=role is Role.MANAGER, **kwargs)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    buyer = factory.SubFactory(UserFactory)
    order_no = factory.Sequence(lambda n: f"20260900{n:04d}")
    shipping_fee_cents = 800
    paid_total_cents = 0  # set from the items by with_items()
    paid_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=5))
    delivered_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=2))


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    title = factory.Sequence(lambda n: f"纯棉T恤 {n}")
    unit_price_cents = 7900
    quantity = 1


def order_with_items(*, buyer: Any, items: list[tuple[int, int]], **kwargs: Any) -> Order:
    """An order whose items have the given (unit price in cents, quantity), totals consistent."""
    order = cast(Order, OrderFactory(buyer=buyer, **kwargs))
    for price, quantity in items:
        OrderItemFactory(order=order, unit_price_cents=price, quantity=quantity)
    order.paid_total_cents = sum(p * q for p, q in items) + order.shipping_fee_cents
    order.save(update_fields=["paid_total_cents"])
    return order


def open_ticket(
    *, order: Order, kind: str = "refund_only", reason: str = "quality_defect", **kwargs: Any
) -> RefundTicket:
    """A ticket for every unit of every item of the order, opened through the service."""
    items = [RequestedItem(order_item_id=item.pk, quantity=item.quantity) for item in order.items.all()]
    return create_refund_ticket(
        buyer=order.buyer, order_no=order.order_no, kind=kind, reason=reason, items=items, **kwargs
    )


# --- Media -------------------------------------------------------------------------------------------


class UploadFactory(factory.django.DjangoModelFactory):
    """An upload in progress (no bytes yet): set `offset` and write the partial file for more."""

    class Meta:
        model = "media.Upload"

    ticket = factory.LazyAttribute(lambda o: open_ticket(order=order_with_items(buyer=buyer(), items=[(7900, 1)])))
    uploader = factory.LazyAttribute(lambda o: o.ticket.buyer)
    length = 1000
    metadata = factory.LazyAttribute(lambda o: {"ticket": str(o.ticket.pk), "filename": "photo.jpg"})
    filename = "photo.jpg"
    filetype = "image/jpeg"
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


def stored_attachment(
    *,
    ticket: RefundTicket,
    content: bytes,
    uploader: Any = None,
    kind: str = "image",
    content_type: str = "image/jpeg",
    extension: str = ".jpg",
) -> Any:
    """An attachment whose original is really stored, as a completed upload leaves it."""
    import hashlib
    import uuid

    from django.core.files.base import ContentFile

    from media.models import Attachment, AttachmentStatus
    from media.storage import evidence_storage

    name = evidence_storage().save(f"tickets/{ticket.pk}/{uuid.uuid4().hex}{extension}", ContentFile(content))
    return Attachment.objects.create(
        ticket=ticket,
        uploader=uploader or ticket.buyer,
        kind=kind,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        original=name,
        status=AttachmentStatus.READY,
    )
