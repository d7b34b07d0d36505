"""Browser tests against a real stack: a Daphne process and a Celery worker on the test database.

With DATABASE_URL/REDIS_URL set (as in CI) the stack uses PostgreSQL, the Redis
channel layer and the Redis broker; without them, the embedded mode of
`make run` (SQLite, the SQLite channel layer, the filesystem broker).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from tests.factories import with_server_password

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("REFUNDCHAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_environment(var_dir: Path) -> dict[str, str]:
    """The environment of the server processes: the test database, the same Redis as the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
        env["REFUNDCHAT_CHANNEL_LAYER"] = "sqlite"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "refundchat.settings",
            "REFUNDCHAT_VAR_DIR": str(var_dir),
            "REFUNDCHAT_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must not hide async-unsafe ORM calls
    return env


@dataclass
class LiveStack:
    url: str
    processes: list[subprocess.Popen[bytes]]
    log_dir: Path

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-4000:]}" for path in sorted(self.log_dir.glob("*.log")))


def wait_until_healthy(url: str, stack: LiveStack, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in stack.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a server process exited early:\n{stack.logs()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the stack did not become healthy:\n{stack.logs()}")


@pytest.fixture
def live_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    """Daphne and a Celery worker serving the test database, stopped after the test."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    env = stack_environment(var_dir)
    python = sys.executable
    if env.get("REFUNDCHAT_CHANNEL_LAYER") == "sqlite":
        subprocess.run([python, "manage.py", "migrate", "--database", "channels", "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    commands = {
        "daphne": [python, "-m", "daphne", "--bind", "127.0.0.1", "--port", str(port), "refundchat.asgi:application"],
        "worker": [python, "-m", "celery", "--app", "refundchat", "worker", "--pool", "solo", "--loglevel", "INFO"],
    }
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=(log_dir / f"{name}.log").open("wb"), stderr=subprocess.STDOUT
        )
        for name, command in commands.items()
    ]
    stack = LiveStack(url=f"http://127.0.0.1:{port}", processes=processes, log_dir=log_dir)
    try:
        wait_until_healthy(stack.url, stack)
        yield stack
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


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
