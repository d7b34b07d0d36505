"""Browser tests against a real stack: a Daphne process and a Celery worker on the test database.

With DATABASE_URL/REDIS_URL set (as in CI) the stack uses PostgreSQL, the Redis
channel layer and the Redis broker; without them, the embedded mode of
`make run` (SQLite, the SQLite channel layer, the filesystem broker).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.factories import with_server_password
from tests.stack import LiveStack, running_stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("REFUNDCHAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    # Voice notes (tests/e2e/test_evidence.py): a fake microphone that beeps, and no permission prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def live_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    """Daphne and a Celery worker serving the test database, stopped after the test."""
    with running_stack(tmp_path) as stack:
        yield stack


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (the browser tests need it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright() -> Iterator[None]:
    # Playwright's sync API keeps an event loop on the main thread; the test's
    # own ORM calls (factories, assertions, the database flush after each test)
    # are still plain synchronous code. Package scope: set before, and undone
    # after, every fixture of the browser tests, and only for them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Any:
    """screenshot(page, "name") saves docs/screenshots/name.png when pytest runs with --screenshots."""
    enabled = request.config.getoption("--screenshots")

    def take(page: Any, name: str) -> None:
        if enabled:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    return take


def log_in(page: Any, stack: LiveStack, username: str, password: str = "refundchat") -> None:
    user = get_user_model().objects.get(username=username)
    if not user.password.startswith("pbkdf2_sha256$"):
        with_server_password(user)
    page.goto(stack.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[data-testid=login-submit]")
    page.wait_for_load_state()


DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}


def new_page(browser: Any, stack: LiveStack, username: str, viewport: dict[str, int] = DESKTOP) -> Any:
    """A page of its own browser context (its own cookies), in Chinese, with `username` logged in."""
    page = browser.new_context(locale="zh-CN", viewport=viewport).new_page()
    log_in(page, stack, username)
    return page


def record_frames(page: Any) -> list[str]:
    """Every WebSocket frame the page (and every page it goes on to) receives, as text."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


def wait_until(page: Any, condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Poll `condition`, letting Playwright deliver the page's events meanwhile (time.sleep would not)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        page.wait_for_timeout(100)
