"""The admin: every model registered, and the manager sees everything and changes nothing."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from tests import factories
from tickets.roles import Role

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("tickets", "messaging", "media")


def test_every_project_model_is_registered():
    models = [m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()]
    assert models
    assert [m.__name__ for m in models if m not in admin.site._registry] == []


@pytest.fixture
def manager_client():
    alice = factories.buyer(username="alice")
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    factories.open_ticket(order=order)
    client = Client()
    client.force_login(factories.staff(Role.MANAGER, username="manager"))
    return client


def test_manager_can_view_every_changelist_and_object(manager_client):
    for model in admin.site._registry:
        opts = model._meta
        response = manager_client.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        assert response.status_code == 200, opts.label
        obj = model._default_manager.first()
        if obj is not None:
            response = manager_client.get(f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/")
            assert response.status_code == 200, opts.label
            # View only: the form has no save button.
            assert 'name="_save"' not in response.content.decode(), opts.label


def test_manager_cannot_change_add_or_delete(manager_client):
    from tickets.models import Order

    order = Order.objects.get()
    response = manager_client.post(f"/admin/tickets/order/{order.pk}/change/", {"order_no": "changed"})
    assert response.status_code == 403
    assert manager_client.get("/admin/tickets/order/add/").status_code == 403
    assert manager_client.post(f"/admin/tickets/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    order.refresh_from_db()
    assert order.order_no != "changed"


def test_agents_and_buyers_have_no_admin():
    for user in (factories.agent(), factories.buyer()):
        client = Client()
        client.force_login(user)
        assert client.get("/admin/").status_code == 302
