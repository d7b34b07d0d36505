from __future__ import annotations

import pytest
from django.test import Client

from refundchat import health

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_dependency_up():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "down": [],
        "checks": {"database": "ok", "channel_layer": "ok", "broker": "ok"},
    }


def test_healthz_is_503_and_names_what_is_down(monkeypatch):
    def broken() -> None:
        raise ConnectionRefusedError("broker unreachable")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"] == "error: ConnectionRefusedError: broker unreachable"
    assert body["checks"]["database"] == "ok"


def test_broker_check_fails_against_a_closed_port(settings):
    from refundchat.celery import app

    monkeypatch_url = "redis://127.0.0.1:1/0"
    original = app.conf.broker_url
    app.conf.broker_url = monkeypatch_url
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error will do
            health.check_broker()
    finally:
        app.conf.broker_url = original
