"""docs/deploy.md followed on this machine, "One host": the production settings profile and its environment file,
collectstatic, migrate, `check --deploy`, honcho with deploy/Procfile.production (two Daphne processes, a worker
per queue, beat), nginx with deploy/nginx/ and a TLS certificate; then the browser smoke test
(tests/e2e/test_refund_chat.py) passes through nginx over HTTPS.

Only the names differ from the document: spare ports instead of 8001/8002/443, a self-signed certificate, the
test database and a private redis-server.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_refund_chat import test_buyer_requests_refund_and_chats_live_with_agent as browser_smoke_test
from tests.stack import (
    PYTHON,
    ROOT,
    LiveStack,
    ManagedProcess,
    NginxServer,
    RedisServer,
    current_database_url,
    stack_environment,
    wait_until_healthy,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEB_PROCESSES = 2
UNVERIFIED = ssl._create_unverified_context()  # the test's self-signed certificate


def honcho_base_port() -> int:
    """honcho gives web.1 and web.2 this port and the next: both must be free."""
    while True:
        base = random.randrange(20000, 40000, 10)
        try:
            for port in (base, base + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return certificate, key


@pytest.fixture
def deployed(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    var_dir, log_dir = tmp_path / "var", tmp_path / "logs"
    for folder in (var_dir, log_dir, tmp_path / "media"):
        folder.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(log_dir)
    database_url, _sqlite = current_database_url()
    # 1. The environment file (docs/deploy.md, "Environment").
    production = {
        "DJANGO_SETTINGS_MODULE": "refundchat.settings_production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "REFUNDCHAT_FIELD_KEYS": "Dqx3jyFTFiOeAOvN8ZotQxVNZtNC3GH1W3jkXI0rkxw=",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis.url,
        # As in the other browser tests: the triage assistant stays out of the smoke test's way.
        "REFUNDCHAT_ASSISTANT_ENABLED": "0",
    }
    env = stack_environment(var_dir, database_url=database_url, redis_url=redis.url, media_root=tmp_path / "media")
    env.update(production)
    env.pop("DJANGO_DEBUG", None)
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env_file = tmp_path / "refundchat.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in production.items()))
    stack = LiveStack(url="", port=0, log_dir=log_dir)
    stack.services["redis"] = redis
    try:
        redis.start()
        # 2. Static files, the schema, the deployment checks.
        for command in (["collectstatic", "--noinput", "-v0"], ["migrate", "-v0"], ["check", "--deploy"]):
            result = subprocess.run(
                [PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stdout + result.stderr
            if command[0] == "check":
                assert result.stdout.strip() == "System check identified no issues (0 silenced).", result.stdout
        # 3. The processes, as the Procfile says.
        base = honcho_base_port()
        honcho = [str(Path(PYTHON).parent / "honcho"), "start", "-f", "deploy/Procfile.production", "-e", str(env_file)]
        concurrency = f"web={WEB_PROCESSES},worker=1,media=1,beat=1"
        stack.services["honcho"] = ManagedProcess("honcho", [*honcho, "-c", concurrency, "-p", str(base)], env, log_dir)
        stack.daphne_urls = [f"http://127.0.0.1:{base + n}" for n in range(WEB_PROCESSES)]
        # 4. nginx in front, with TLS.
        nginx = NginxServer(log_dir, [base + n for n in range(WEB_PROCESSES)], tls=self_signed_certificate(tmp_path))
        stack.services["nginx"] = nginx
        stack.url, stack.port = nginx.url, nginx.port
        stack.services["honcho"].start()
        for url in stack.daphne_urls:
            wait_until_healthy(url, stack, timeout=60, path="/readyz")
        nginx.start()
        wait_until_healthy(stack.url, stack, timeout=60, path="/readyz", context=UNVERIFIED)
        yield stack
    finally:
        stack.stop(timeout=20)


@pytest.fixture
def tls_browser(browser: Any) -> Iterator[Any]:
    """Another Chromium of the package's Playwright, one that accepts the test's self-signed certificate."""
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"]
    )
    yield chromium
    # The test's own queries ran beside Playwright's event loop: their connection is only reachable from here.
    connections.close_all()
    chromium.close()


def test_deploy_md_followed_on_this_machine_passes_the_browser_smoke_test(
    deployed: LiveStack, tls_browser: Any
) -> None:
    stack = deployed
    log = stack["honcho"].log_tail(200_000)
    for process in ("web.1", "web.2", "worker.1", "media.1", "beat.1"):
        assert f"{process} " in log, f"honcho did not start {process}"
    # HTTPS through nginx, with HSTS from the production profile and the request's id.
    with urllib.request.urlopen(stack.url + "/accounts/login/", timeout=10, context=UNVERIFIED) as response:
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert response.headers["X-Request-ID"]

    browser_smoke_test(stack, tls_browser, lambda page, name: None)
