"""The login's doors in a real browser: the throttled login's message, the staff TOTP step and its set-up page
(issue #9, docs/security.md), on desktop and mobile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from refundchat import login_throttle
from tests import factories
from tests.e2e.conftest import DESKTOP, MOBILE

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def submit_login(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[data-testid=login-submit]")
    page.wait_for_load_state()


def test_staff_pass_the_code_step_and_set_up_an_app(live_stack: Any, browser: Any, screenshot: Any) -> None:
    wei = factories.with_server_password(factories.agent(username="wei"))
    li = factories.with_server_password(factories.agent(username="li"))
    device = TOTPDevice.objects.create(user=wei, name="phone", confirmed=True)
    for viewport, name in ((DESKTOP, "desktop"), (MOBILE, "mobile")):
        page = browser.new_context(locale="zh-CN", viewport=viewport).new_page()
        submit_login(page, live_stack.url, "wei", factories.PASSWORD)
        expect(page.get_by_test_id("otp-code")).to_be_visible()
        screenshot(page, f"security-login-code-{name}")
        if name == "desktop":
            page.get_by_test_id("otp-code").fill(code(device))
            page.get_by_test_id("otp-submit").click()
            page.wait_for_url("**/console/")
        page.context.close()

        page = browser.new_context(locale="zh-CN", viewport=viewport).new_page()
        submit_login(page, live_stack.url, "li", factories.PASSWORD)
        page.goto(live_stack.url + "/accounts/two-factor/")
        expect(page.get_by_test_id("otp-secret")).to_be_visible()
        screenshot(page, f"security-two-factor-setup-{name}")
        page.context.close()
    assert TOTPDevice.objects.filter(user=li, confirmed=False).count() == 1


@pytest.fixture
def _address_unlocked_after() -> Iterator[None]:
    """The servers share the cache with this process: the browser tests after this one log in from here too."""
    yield
    for ip in ("127.0.0.1", "::1"):
        login_throttle.do_clear_address(ip=ip)
    login_throttle.do_clear_account(username="mei")


@pytest.mark.usefixtures("_address_unlocked_after")
def test_too_many_failed_logins_are_refused_with_a_message(live_stack: Any, browser: Any, screenshot: Any) -> None:
    factories.with_server_password(factories.buyer(username="mei"))
    page = browser.new_context(locale="zh-CN", viewport=MOBILE).new_page()
    for _ in range(5):
        submit_login(page, live_stack.url, "mei", "wrong-password")
    submit_login(page, live_stack.url, "mei", factories.PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("登录失败次数过多")
    screenshot(page, "security-login-throttled-mobile")
