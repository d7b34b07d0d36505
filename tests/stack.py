"""A real RefundChat stack in separate processes: Daphne, Celery worker and beat, and optionally a private
redis-server, each of which a test can kill (-9), stop and start again on the same port.

Used by the browser tests (tests/e2e), the fault tests (tests/faults) and the load harness (tests/load). Nothing
here needs pytest; `stack_environment()` reads Django's test database only when no DATABASE_URL is given.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def current_database_url() -> tuple[str, bool]:
    """The URL of the database Django is connected to in this process (the test database), and whether it is SQLite."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}", False
    return f"sqlite:///{db['NAME']}", True


def field_keys() -> str:
    """REFUNDCHAT_FIELD_KEYS for processes this one starts: the keys of this process when Django is set up (the
    servers decrypt what the tests encrypted, refundchat/crypto.py), else a fresh key (production settings,
    as the benchmarks run, refuse to start without one)."""
    from cryptography.fernet import Fernet
    from django.conf import settings as django_settings

    if django_settings.configured:
        return ",".join(django_settings.REFUNDCHAT_FIELD_KEYS)
    return Fernet.generate_key().decode()


def stack_environment(
    var_dir: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    media_root: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the server processes.

    By default: the database this (test) process uses and the REDIS_URL of this process. `redis_url` points the
    channel layer, the Celery broker and the cache at another Redis (e.g. a private `RedisServer`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    if database_url is None:
        database_url, sqlite = current_database_url()
    else:
        sqlite = database_url.startswith("sqlite")
    env["DATABASE_URL"] = database_url
    if sqlite:
        env["REFUNDCHAT_CHANNEL_LAYER"] = "sqlite"
    else:
        env.pop("REFUNDCHAT_CHANNEL_LAYER", None)  # the test settings' "memory" must not reach the servers
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        env.pop("CELERY_BROKER_URL", None)
    if media_root is None:
        from django.conf import settings

        media_root = Path(settings.MEDIA_ROOT)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "refundchat.settings",
            "REFUNDCHAT_VAR_DIR": str(var_dir),
            "REFUNDCHAT_MEDIA_ROOT": str(media_root),
            "PYTHONUNBUFFERED": "1",
            # Its own channel prefix and Celery queue: another test run or stack on the same Redis
            # can neither read this stack's frames and tasks nor hand it theirs.
            "REFUNDCHAT_CHANNEL_PREFIX": f"asgi-{uuid.uuid4().hex[:12]}",
            "REFUNDCHAT_CELERY_QUEUE": f"stack-{uuid.uuid4().hex[:12]}",
            # As in tests/settings.py: the triage assistant is off unless a test turns it on (extra).
            "REFUNDCHAT_ASSISTANT_ENABLED": "0",
        }
    )
    env.setdefault("REFUNDCHAT_FIELD_KEYS", field_keys())
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must not hide async-unsafe ORM calls
    env.pop("REFUNDCHAT_CELERY_MEDIA_QUEUE", None)  # follows the stack's own queue name
    # The stack's processes pool their Prometheus samples here, as a production host does (refundchat/metrics.py).
    metrics_dir = var_dir / "prometheus"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if extra:
        env.update(extra)
    return env


@dataclass
class ManagedProcess:
    """One server process that can be started, killed and started again with the same command (so the same port)."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL, as in a crash: no clean-up of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (a warm shutdown for Celery), then SIGKILL after `timeout`."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, *, hard: bool = True) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class RedisServer(ManagedProcess):
    """A private redis-server on a spare port, keeping nothing on disk: a restart loses every key, as a crash would."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: install Debian's redis-server")
        self.port = port or free_port()
        super().__init__(
            name="redis",
            command=[
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(log_dir),
            ],
            env=dict(os.environ),
            log_dir=log_dir,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"redis-server exited:\n{self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer:\n{self.log_tail()}")

    def start(self) -> None:
        super().start()
        self.wait_ready()


def daphne_command(port: int, application: str = "refundchat.asgi:application") -> list[str]:
    """Daphne as production runs it: with the graceful stop of refundchat/serve.py (1012 on SIGTERM)."""
    return [PYTHON, "-m", "refundchat.serve", "--bind", "127.0.0.1", "--port", str(port), application]


NGINX_LOCATIONS = ROOT / "deploy" / "nginx" / "refundchat-locations.conf"
NGINX_SITE = ROOT / "deploy" / "nginx" / "refundchat.conf"


def nginx_main_config(prefix: Path, site: str) -> str:
    """A whole nginx.conf around `site` (upstream and server blocks) that runs unprivileged under `prefix`."""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
# Every WebSocket holds two connections (the client's and the one to Daphne): the bench's 1,000 sockets need 2,000.
worker_rlimit_nofile 16384;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 8192; }}
http {{
    include /etc/nginx/mime.types;
    access_log {prefix / "access.log"};
    # Which Daphne process answered (tests/chat_client.py reads it from each WebSocket handshake).
    add_header X-Upstream $upstream_addr always;
{temp}
{site}
}}
"""


def nginx_site(
    upstream_ports: Iterable[int],
    *,
    listen: int,
    tls: tuple[Path, Path] | None = None,
    http_port: int | None = None,
) -> str:
    """deploy/nginx/refundchat.conf for this machine: its upstream on `upstream_ports`, HTTPS on `listen` with
    `tls` (certificate, key) and the redirect on `http_port`; without `tls`, plain HTTP on `listen`. The proxy
    rules are deploy/nginx/refundchat-locations.conf itself."""
    site = NGINX_SITE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in upstream_ports)
    site = re.sub(r"upstream refundchat \{.*?\n\}", "upstream refundchat {\n" + servers + "}", site, flags=re.S)
    site = site.replace("/etc/nginx/snippets/refundchat-locations.conf", str(NGINX_LOCATIONS))
    site = site.replace("server_name refunds.example.com;", "server_name 127.0.0.1 localhost;")
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)  # loopback only
    if tls is None:
        site = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", site, flags=re.S)  # no redirect server
        site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen};")
        return re.sub(r"\n\s*ssl_[a-z_]+ [^;]*;", "", site)
    certificate, key = tls
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port or free_port()};")
    site = site.replace("https://$host$request_uri", f"https://$host:{listen}$request_uri")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{listen} ssl http2;")
    site = re.sub(r"ssl_certificate .*;", f"ssl_certificate {certificate};", site)
    return re.sub(r"ssl_certificate_key .*;", f"ssl_certificate_key {key};", site)


class NginxServer(ManagedProcess):
    """nginx (Debian's package) in front of the stack's Daphne processes, unprivileged, on a spare port."""

    def __init__(
        self,
        log_dir: Path,
        upstream_ports: Iterable[int],
        *,
        tls: tuple[Path, Path] | None = None,
        name: str = "nginx",
    ) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx not found: install Debian's nginx")
        self.port = free_port()
        self.tls = tls
        prefix = log_dir / name
        prefix.mkdir(parents=True, exist_ok=True)
        config = prefix / "nginx.conf"
        config.write_text(nginx_main_config(prefix, nginx_site(upstream_ports, listen=self.port, tls=tls)))
        super().__init__(
            name=name,
            command=[binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
            env=dict(os.environ),
            log_dir=log_dir,
        )

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"nginx exited:\n{self.log_tail()}")
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx on port {self.port} did not listen:\n{self.log_tail()}")


def worker_command(*, concurrency: int = 1, prefork: bool = False) -> list[str]:
    """A worker in this process (solo) when `concurrency` is 1, else (or with `prefork`) with pool processes."""
    pool = ["--pool", "solo"] if concurrency == 1 and not prefork else ["--concurrency", str(concurrency)]
    return [PYTHON, "-m", "celery", "--app", "refundchat", "worker", *pool, "--loglevel", "INFO"]


def beat_command(var_dir: Path) -> list[str]:
    schedule = str(var_dir / "celerybeat-schedule")
    return [PYTHON, "-m", "celery", "--app", "refundchat", "beat", "--loglevel", "INFO", "--schedule", schedule]


@dataclass
class LiveStack:
    """The server processes of one test or benchmark; `url` is Daphne's, or nginx's when it has one in front of
    several Daphne processes ("daphne", "daphne-2", ...: `daphne_urls`)."""

    url: str
    port: int
    log_dir: Path
    services: dict[str, ManagedProcess] = field(default_factory=dict)
    daphne_urls: list[str] = field(default_factory=list)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self.services.values() if s.process is not None]

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws/"

    @property
    def redis(self) -> RedisServer | None:
        service = self.services.get("redis")
        return service if isinstance(service, RedisServer) else None

    def __getitem__(self, name: str) -> ManagedProcess:
        return self.services[name]

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def wait_until_healthy(self, timeout: float = 30) -> None:
        for url in self.daphne_urls:
            wait_until_healthy(url, self, timeout=timeout)
        if self.url not in self.daphne_urls:
            wait_until_healthy(self.url, self, timeout=timeout)

    def restart_daphne(self, *, timeout: float = 30) -> None:
        """kill -9 Daphne and start it again on the same port."""
        self.services["daphne"].kill()
        self.services["daphne"].start()
        self.wait_until_healthy(timeout=timeout)

    def restart_redis(self) -> None:
        """kill -9 the private redis-server and start it again, empty, on the same port."""
        redis = self.redis
        if redis is None:
            raise RuntimeError("this stack uses the machine's Redis: it must not be restarted")
        redis.kill()
        redis.start()

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM to every server at once, SIGKILL to what still runs after `timeout`; Redis last, so the others do
        not log a storm of connection errors. (Daphne waits for open sockets' consumers before it exits.)"""
        servers = [s for name, s in self.services.items() if name != "redis" and s.running]
        for service in servers:
            assert service.process is not None
            service.process.terminate()
        deadline = time.monotonic() + timeout
        for service in servers:
            assert service.process is not None
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.kill()
        if "redis" in self.services:
            self.services["redis"].stop()


def wait_until_healthy(
    url: str, stack: LiveStack, timeout: float = 30, *, path: str = "/healthz", context: ssl.SSLContext | None = None
) -> None:
    """Wait until /healthz (or `path`: /readyz) answers 200 (database, channel layer and broker reachable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in stack.services.values():
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(f"server process {service.name} exited early:\n{stack.logs()}")
        try:
            with urllib.request.urlopen(url + path, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the stack did not become healthy:\n{stack.logs()}")


def build_stack(
    *,
    var_dir: Path,
    log_dir: Path,
    env: dict[str, str],
    worker: bool = True,
    beat: bool = False,
    worker_concurrency: int = 1,
    redis: RedisServer | None = None,
    port: int | None = None,
    daphne_args: Iterable[str] = (),
    daphnes: int = 1,
    nginx: bool = False,
) -> LiveStack:
    """The processes of a stack, not yet started. `env` comes from `stack_environment()`. With `daphnes` > 1,
    more Daphne processes on their own ports ("daphne-2", ...); with `nginx`, nginx in front of them all."""
    ports = [port or free_port(), *(free_port() for _ in range(daphnes - 1))]
    stack = LiveStack(url=f"http://127.0.0.1:{ports[0]}", port=ports[0], log_dir=log_dir)
    stack.daphne_urls = [f"http://127.0.0.1:{p}" for p in ports]
    if redis is not None:
        stack.services["redis"] = redis
    if nginx:  # Daphne trusts nginx's X-Forwarded-For and -Proto, as in production
        daphne_args = [*daphne_args, "--proxy-headers"]
    for index, daphne_port in enumerate(ports):
        name = "daphne" if index == 0 else f"daphne-{index + 1}"
        stack.services[name] = ManagedProcess(name, [*daphne_command(daphne_port), *daphne_args], env, log_dir)
    if nginx:
        proxy = NginxServer(log_dir, ports)
        stack.services["nginx"] = proxy
        stack.url, stack.port = proxy.url, proxy.port
    if worker:
        stack.services["worker"] = ManagedProcess(
            "worker", worker_command(concurrency=worker_concurrency), env, log_dir
        )
    if beat:
        stack.services["beat"] = ManagedProcess("beat", beat_command(var_dir), env, log_dir)
    return stack


@contextmanager
def running_stack(
    base_dir: Path,
    *,
    own_redis: bool = False,
    worker: bool = True,
    beat: bool = False,
    database_url: str | None = None,
    media_root: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    health_timeout: float = 30,
    daphnes: int = 1,
    nginx: bool = False,
) -> Iterator[LiveStack]:
    """Start a stack under `base_dir` (var/ and logs/ inside it), wait until it is healthy, stop it afterwards.

    With `own_redis` a private redis-server on a spare port carries the channel layer, the broker and the cache,
    so that a test may kill it; otherwise the processes use this process's REDIS_URL.
    """
    var_dir, log_dir = base_dir / "var", base_dir / "logs"
    var_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(log_dir) if own_redis else None
    env = stack_environment(
        var_dir,
        database_url=database_url,
        redis_url=redis.url if redis else None,
        media_root=media_root,
        extra=extra_env,
    )
    if env.get("REFUNDCHAT_CHANNEL_LAYER") == "sqlite":
        subprocess.run([PYTHON, "manage.py", "migrate", "--database", "channels", "-v0"], cwd=ROOT, env=env, check=True)
    stack = build_stack(
        var_dir=var_dir, log_dir=log_dir, env=env, worker=worker, beat=beat, redis=redis, daphnes=daphnes, nginx=nginx
    )
    try:
        for service in stack.services.values():  # redis first: the dict keeps insertion order
            service.start()
        stack.wait_until_healthy(timeout=health_timeout)
        yield stack
    finally:
        with suppress(Exception):
            stack.stop()
