"""The web's usual doors: login throttling, password rules, staff TOTP, rate limits, headers, check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from media.models import Upload
from refundchat import rate_limits
from tests import factories
from tests.media.conftest import TusClient
from tickets.models import RefundTicket
from tickets.services import TicketError

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    """Failure counts and upload windows live in the cache: each test gets an empty one of its own, and the
    shared Redis is left alone."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(uuid.uuid4())}
    }


def log_in(client: Client, username: str, password: str, *, ip: str = "10.0.0.1", lang: str = "en") -> Any:
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
        headers={"Accept-Language": lang},
    )


# --- Login throttling ---------------------------------------------------------------------------------------


def test_five_failures_from_one_address_lock_it_out_even_with_the_right_password() -> None:
    factories.buyer(username="mei")
    client = Client()
    for n in range(5):
        assert log_in(client, f"guess{n}", "wrong").status_code == 200
    response = log_in(client, "mei", factories.PASSWORD)
    assert response.status_code == 200
    assert "Too many failed logins. Try again in 5 minutes." in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not affected.
    assert log_in(Client(), "mei", factories.PASSWORD, ip="10.0.0.2").status_code == 302


def test_ten_failures_for_one_account_from_many_addresses_lock_the_account_in_chinese() -> None:
    factories.buyer(username="mei")
    for n in range(10):
        log_in(Client(), "MEI", "wrong", ip=f"10.1.0.{n}")
    response = log_in(Client(), "mei", factories.PASSWORD, ip="10.2.0.1", lang="zh-hans")
    assert response.status_code == 200
    assert "登录失败次数过多" in response.content.decode()
    # Another account from a fresh address logs in.
    factories.buyer(username="lan")
    assert log_in(Client(), "lan", factories.PASSWORD, ip="10.2.0.2").status_code == 302


def test_a_successful_login_clears_the_accounts_count() -> None:
    factories.buyer(username="mei")
    for n in range(9):
        log_in(Client(), "mei", "wrong", ip=f"10.1.0.{n}")
    assert log_in(Client(), "mei", factories.PASSWORD, ip="10.3.0.1").status_code == 302
    for n in range(9):
        log_in(Client(), "mei", "wrong", ip=f"10.4.0.{n}")
    assert log_in(Client(), "mei", factories.PASSWORD, ip="10.5.0.1").status_code == 302


def test_admin_login_goes_through_the_throttled_login() -> None:
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"


# --- Passwords ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["short1!", "password123", "1234567890123", "mei.wang.2024x"])
def test_weak_passwords_are_refused(password: str) -> None:
    user = factories.buyer(username="mei.wang", first_name="Mei", email="mei.wang.2024x@example.com")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_a_long_uncommon_password_is_accepted() -> None:
    validate_password("Qiu-shui-gong-chang-tian-7", factories.buyer(username="mei"))


# --- Staff TOTP ---------------------------------------------------------------------------------------------


def current_code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def test_staff_with_a_device_must_enter_the_code_after_the_password(settings: Any) -> None:
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp's own back-off after a wrong code would delay the right one
    agent = factories.agent(username="wei")
    device = TOTPDevice.objects.create(user=agent, name="phone", confirmed=True)
    client = Client(headers={"Accept-Language": "en"})

    response = log_in(client, "wei", factories.PASSWORD)
    assert response["Location"] == "/accounts/login/code/"
    assert "_auth_user_id" not in client.session
    assert client.get("/console/").status_code == 302  # still logged out

    wrong = client.post("/accounts/login/code/", {"code": "000000" if current_code(device) != "000000" else "111111"})
    assert "That code is not right" in wrong.content.decode()
    assert "_auth_user_id" not in client.session

    response = client.post("/accounts/login/code/", {"code": current_code(device)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(agent.pk)
    assert client.get("/console/").status_code == 200


def test_buyers_and_staff_without_a_device_log_in_with_the_password() -> None:
    factories.agent(username="wei")
    client = Client()
    assert log_in(client, "wei", factories.PASSWORD)["Location"] == "/"


def test_required_two_factor_sends_staff_to_set_up_and_a_real_code_confirms_it(settings: Any) -> None:
    settings.REFUNDCHAT_REQUIRE_STAFF_2FA = True
    agent = factories.agent(username="wei")
    client = Client()
    client.force_login(agent)
    assert client.get("/console/")["Location"] == "/accounts/two-factor/"

    page = client.get("/accounts/two-factor/")
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=agent, confirmed=False)
    assert page.context["secret"] in page.content.decode()

    assert client.post("/accounts/two-factor/", {"code": current_code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/console/").status_code == 200
    # Buyers are never asked.
    buyer_client = Client()
    buyer_client.force_login(factories.buyer(username="mei"))
    assert buyer_client.get("/orders/").status_code == 200


# --- Rate limits --------------------------------------------------------------------------------------------


def test_new_tickets_per_buyer_per_day_are_limited(settings: Any) -> None:
    settings.REFUNDCHAT_TICKETS_PER_DAY = 2
    alice = factories.buyer(username="alice")
    for _ in range(2):
        factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
    order = factories.order_with_items(buyer=alice, items=[(1000, 1)])
    with pytest.raises(TicketError, match="2 refund requests in the last 24 hours"):
        factories.open_ticket(order=order)
    assert RefundTicket.objects.filter(buyer=alice).count() == 2
    # Another buyer is not affected.
    factories.open_ticket(order=factories.order_with_items(buyer=factories.buyer(username="bob"), items=[(1, 1)]))


def test_new_tickets_over_the_limit_are_refused_on_the_web_with_the_message(settings: Any) -> None:
    settings.REFUNDCHAT_TICKETS_PER_DAY = 1
    alice = factories.buyer(username="alice")
    factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
    order = factories.order_with_items(buyer=alice, items=[(1000, 1)])
    client = Client()
    client.force_login(alice)
    item = order.items.get()
    response = client.post(
        f"/orders/{order.order_no}/refund/",
        {"kind": "refund_only", "reason": "quality_defect", f"item_{item.pk}": "1"},
        headers={"Accept-Language": "en"},
    )
    assert RefundTicket.objects.filter(buyer=alice).count() == 1
    assert "in the last 24 hours" in response.content.decode()


def test_uploads_per_hour_are_limited_with_429_and_a_message(settings: Any) -> None:
    settings.REFUNDCHAT_UPLOADS_PER_HOUR = 2
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(1000, 1)]))
    client = Client()
    client.force_login(alice)
    tus = TusClient(client)
    assert [tus.create(ticket=ticket, length=10).status_code for _ in range(2)] == [201, 201]
    refused = tus.create(ticket=ticket, length=10)
    assert refused.status_code == 429
    assert "too many files in the last hour" in refused.content.decode()
    assert Upload.objects.filter(uploader=alice).count() == 2


def test_wait_text_reads_in_minutes_and_hours() -> None:
    assert rate_limits.wait_text(61) == "2 minutes"
    assert rate_limits.wait_text(3600) == "1 hour"


# --- Headers ------------------------------------------------------------------------------------------------


def test_pages_carry_the_security_headers() -> None:
    client = Client()
    client.force_login(factories.buyer(username="mei"))
    response = client.get("/orders/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=(self)" in response["Permissions-Policy"]


def test_no_template_has_an_inline_script_or_event_handler() -> None:
    import re

    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        # json_script output is data, not code; it is a filter in templates, never a literal tag.
        if inline_script.search(text) or handler.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_check_deploy_with_the_production_settings_reports_nothing() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "refundchat.settings_production",
        "DJANGO_SECRET_KEY": "x" * 20 + "-not-the-dev-key-" + "y" * 40,
        "DJANGO_ALLOWED_HOSTS": "refunds.example.com",
        "REFUNDCHAT_FIELD_KEYS": "Dqx3jyFTFiOeAOvN8ZotQxVNZtNC3GH1W3jkXI0rkxw=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_production_cookies_are_secure_and_http_only() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "refundchat.settings_production",
        "DJANGO_SECRET_KEY": "z" * 60,
        "DJANGO_ALLOWED_HOSTS": "refunds.example.com",
        "REFUNDCHAT_FIELD_KEYS": "Dqx3jyFTFiOeAOvN8ZotQxVNZtNC3GH1W3jkXI0rkxw=",
    }
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SAMESITE, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["True", "True", "True", "Lax", "Lax", "True"], result.stderr
