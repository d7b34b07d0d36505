"""/readyz (refundchat/health.py): what a load balancer asks before sending a process traffic."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from refundchat.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_readyz_checks_database_channel_layer_broker_and_migrations():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "down": [],
        "checks": {"database": "ok", "channel_layer": "ok", "broker": "ok", "migrations": "ok"},
    }


def test_readyz_is_503_while_a_migration_is_not_applied_and_healthz_stays_up():
    # The newest applied migration is forgotten (in this test's transaction only): a release ahead of its schema.
    recorder = MigrationRecorder(connection)
    newest = recorder.migration_qs.filter(app="tickets").order_by("-applied").first()
    assert newest is not None
    newest.delete()

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["migrations"]
    assert body["checks"]["migrations"].startswith("error: RuntimeError: 1 migration(s) not applied, first tickets.")
    assert Client().get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_is_503_when_the_broker_is_unreachable(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["broker"]
