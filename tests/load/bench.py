"""Load harness: RefundChat on a real stack (Daphne + Redis channel layer + PostgreSQL + Celery worker and beat),
measured against a bare Channels echo consumer on the same stack. `make bench` runs it; docs/benchmarks.md has the
figures. Every parameter is a flag; `--quick` is a smoke run.

Profiles, in one run: `idle` (every socket held, app pings as the browser sends them), `steady` (a set rate of
messages), `surge` (the rate times --surge-factor for --surge-seconds, then the base rate while latency recovers),
`storm` (every socket dropped at once; each reconnects with backoff and jitter as realtime.js does, resubscribes
with its last seq and resends what was not acknowledged). The baseline runs idle, steady and surge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chat_client import ChatClient, log_in
from tests.stack import (
    PYTHON,
    ROOT,
    LiveStack,
    ManagedProcess,
    NginxServer,
    RedisServer,
    build_stack,
    daphne_command,
    free_port,
    stack_environment,
)

PASSWORD = "refundchat"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --- arguments ------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load.bench", description=__doc__)
    add = parser.add_argument
    add("--buyers", type=int, default=900, help="buyer sockets, one conversation each (default 900)")
    add("--agents", type=int, default=100, help="agent sockets; agent socket j watches conversations i %% agents == j")
    add(
        "--channel-layer",
        choices=["redis", "redis-pubsub"],
        default=None,
        help="REFUNDCHAT_CHANNEL_LAYER of the servers (default: the settings' default)",
    )
    add(
        "--daphne",
        type=int,
        default=2,
        help="Daphne processes on one Redis layer, one per core (the baseline gets as many echo processes); "
        "sockets are spread over them round-robin, as a balancer in front of them would (default 2)",
    )
    add(
        "--nginx",
        action="store_true",
        help="put nginx (deploy/nginx/) in front of the Daphne processes, and another in front of the echo "
        "processes, and connect every socket through it: at least 2 Daphne processes (docs/deploy.md)",
    )
    add("--sockets-per-user", type=int, default=5, help="sockets (tabs) per logged-in user: users log in once each")
    add("--rate", type=float, default=200.0, help="messages per second in the steady profile (default 200)")
    add("--duration", type=float, default=60.0, help="seconds of the steady profile (default 60)")
    add("--idle", type=float, default=20.0, help="seconds the idle CPU is measured over (default 20)")
    add("--ping-every", type=float, default=30.0, help="app-level ping per socket, as the browser (default 30 s)")
    add("--surge-factor", type=float, default=10.0)
    add("--surge-seconds", type=float, default=10.0)
    add("--recovery-seconds", type=float, default=10.0, help="base-rate seconds after the surge (default 10)")
    add("--latency-target-ms", type=float, default=200.0)
    add("--drain-seconds", type=float, default=120.0, help="at most this long for a backlog to drain (default 120)")
    add("--py-spy", type=Path, default=None, help="record Daphne with py-spy during idle and steady into this folder")
    add("--storm-timeout", type=float, default=300.0, help="give up on catching up after a storm (default 300 s)")
    add(
        "--profiles",
        default="idle,steady,storm,surge",
        help="which profiles, in this order (default: the surge last, its backlog spoils what follows)",
    )
    add("--no-baseline", dest="baseline", action="store_false", help="skip the echo-consumer baseline")
    add("--login-concurrency", type=int, default=4)
    add("--connect-concurrency", type=int, default=50)
    add("--database-name", default="refundchat_bench", help="database on DATABASE_URL's server (created, migrated)")
    add("--database-url", default=None, help="use this database as is (no create); tests pass the test database")
    add("--no-migrate", dest="migrate", action="store_false")
    add("--json", type=Path, default=None, help="also write the results here")
    add("--quick", action="store_true", help="a smoke run: few sockets, short profiles")
    add("--keep-logs", action="store_true", help="keep the server logs folder")
    args = parser.parse_args(argv)
    unknown = {p.strip() for p in args.profiles.split(",") if p.strip()} - {"idle", "steady", "surge", "storm"}
    if unknown:
        parser.error(f"unknown profiles: {', '.join(sorted(unknown))}")
    if args.nginx:
        args.daphne = max(args.daphne, 2)
    if args.quick:
        args.buyers, args.agents, args.sockets_per_user = 40, 8, 4
        args.rate, args.duration, args.idle = 20.0, 4.0, 2.0
        args.surge_seconds, args.recovery_seconds, args.drain_seconds = 2.0, 2.0, 60.0
        args.storm_timeout = 30.0
    return args


# --- process sampling -----------------------------------------------------------------------------------------


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    comm: str
    cpu_ticks: int  # utime + stime + cutime + cstime
    rss: int


def read_procs() -> dict[int, ProcInfo]:
    procs: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        procs[int(entry)] = ProcInfo(
            pid=int(entry),
            ppid=int(rest[1]),
            comm=comm,
            cpu_ticks=sum(int(x) for x in rest[11:15]),
            rss=int(rest[21]) * PAGE_SIZE,
        )
    return procs


def tree(procs: dict[int, ProcInfo], root: int) -> list[ProcInfo]:
    """The process and its live descendants (reaped children are in its cutime/cstime)."""
    children: dict[int, list[int]] = {}
    for info in procs.values():
        children.setdefault(info.ppid, []).append(info.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            out.append(procs[pid])
            todo.extend(children.get(pid, []))
    return out


def postmaster_pid(procs: dict[int, ProcInfo]) -> int | None:
    for info in procs.values():
        if info.comm == "postgres" and procs.get(info.ppid, ProcInfo(0, 0, "", 0, 0)).comm != "postgres":
            return info.pid
    return None


class Sampler:
    """CPU (share of one core) and peak RSS of each server process tree, per measured window."""

    def __init__(self, roots: Callable[[], dict[str, int | list[int] | None]]) -> None:
        self.roots = roots
        self._start: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._t0 = 0.0
        self._task: asyncio.Task[None] | None = None

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        procs = read_procs()
        out = {}
        for name, root in self.roots().items():
            pids = [pid for pid in (root if isinstance(root, list) else [root]) if pid is not None]
            if not pids:
                continue
            # The load generator is the parent of the servers: count only itself.
            members = [
                m for pid in pids for m in ([procs[pid]] if pid == os.getpid() and pid in procs else tree(procs, pid))
            ]
            out[name] = (sum(m.cpu_ticks for m in members), sum(m.rss for m in members))
        return out

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for name, (_cpu, rss) in (await asyncio.to_thread(self._snapshot)).items():
                self._peak[name] = max(self._peak.get(name, 0), rss)

    def start(self) -> None:
        snap = self._snapshot()
        self._start = {name: cpu for name, (cpu, _rss) in snap.items()}
        self._peak = {name: rss for name, (_cpu, rss) in snap.items()}
        self._t0 = time.monotonic()
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> dict[str, dict[str, float]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        wall = time.monotonic() - self._t0
        result = {}
        for name, (cpu, rss) in self._snapshot().items():
            if name not in self._start:
                continue
            result[name] = {
                "cpu_pct": round(100 * (cpu - self._start[name]) / CLK_TCK / wall, 1),
                "rss_mb": round(max(rss, self._peak.get(name, 0)) / 2**20, 1),
            }
        return result


# --- the load ------------------------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float | None]:
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(ordered[-1], 1)}


@dataclass
class Sent:
    sender: ChatClient
    other: ChatClient
    at: float
    profile: str
    delivered_at: float | None = None
    acked_at: float | None = None


@dataclass
class Load:
    """The sockets of one server, who talks to whom, and every message sent with when the other party got it."""

    buyers: list[ChatClient]
    agents: list[ChatClient]
    conversations: list[int]
    sends: dict[str, Sent] = field(default_factory=dict)
    profile: str = ""

    @property
    def sockets(self) -> list[ChatClient]:
        return self.buyers + self.agents

    def on_ack(self, client: ChatClient, frame: dict[str, Any], received_at: float) -> None:
        record = self.sends.get(frame.get("client_id") or "")
        if record is not None and record.acked_at is None:
            record.acked_at = received_at

    def on_message(self, client: ChatClient, message: dict[str, Any], received_at: float) -> None:
        record = self.sends.get(message.get("client_id") or "")
        if record is not None and client is record.other and record.delivered_at is None:
            record.delivered_at = received_at

    async def send_one(self) -> None:
        i = random.randrange(len(self.conversations))
        buyer, agent = self.buyers[i], self.agents[i % len(self.agents)]
        sender, other = (buyer, agent) if random.random() < 0.5 else (agent, buyer)
        client_id = str(uuid.uuid4())
        self.sends[client_id] = Sent(sender=sender, other=other, at=time.monotonic(), profile=self.profile)
        await sender.send_message(self.conversations[i], f"bench {self.profile} {client_id[:8]}", client_id=client_id)

    async def send_at(self, rate: float, seconds: float) -> int:
        """Send at `rate` per second for `seconds`, on an absolute schedule (a late tick sends its backlog)."""
        interval, sent = 1.0 / rate, 0
        start = time.monotonic()
        while True:
            due = int((time.monotonic() - start) / interval) + 1
            target = min(due, int(rate * seconds))
            while sent < target:
                await self.send_one()
                sent += 1
            if sent >= int(rate * seconds):
                return sent
            await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))

    async def pinger(self, every: float) -> None:
        """Each socket pings every `every` seconds, phases spread evenly (as browsers would be)."""
        sockets = self.sockets
        if not sockets or every <= 0:
            return
        step = every / len(sockets)
        while True:
            for client in sockets:
                await client.ping()
                await asyncio.sleep(step)


def profile_stats(
    load: Load, profiles: set[str], latency_target: float, drained: bool = True, window: tuple[float, float] = (0, 0)
) -> dict[str, Any]:
    """`lost`: acked (stored) but never delivered to the other party, known only once the backlog drained;
    `undelivered_after_drain`: the same count when the drain timed out (lost, or later than the drain allowed)."""
    records = [(cid, r) for cid, r in load.sends.items() if r.profile in profiles]
    acked = [r for cid, r in records if r.sender.sent[cid]["acked"]]
    latencies = [1000 * (r.delivered_at - r.at) for _cid, r in records if r.delivered_at is not None]
    undelivered = sum(1 for r in acked if r.delivered_at is None)
    start, end = window
    acked_in_window = sum(1 for r in acked if r.acked_at is not None and start <= r.acked_at <= end)
    return {
        "sent": len(records),
        "acked": len(acked),
        "acked_per_s_while_sending": round(acked_in_window / (end - start), 1) if end > start else None,
        "unacked": len(records) - len(acked),
        "lost": undelivered if drained else None,
        "undelivered_after_drain": undelivered,
        "latency_ms": percentiles(latencies),
        "over_target": sum(1 for x in latencies if x > latency_target),
    }


def integrity_delta(load: Load, before: dict[str, int]) -> dict[str, int]:
    now = {
        "duplicates": sum(len(c.stats.duplicates) for c in load.sockets),
        "out_of_order": sum(len(c.stats.out_of_order) for c in load.sockets),
        "errors": sum(len(c.stats.errors) for c in load.sockets),
    }
    return {k: v - before.get(k, 0) for k, v in now.items()}


def integrity_now(load: Load) -> dict[str, int]:
    return integrity_delta(load, {})


async def wait_delivered(load: Load, profiles: set[str], timeout: float) -> float | None:
    """Wait until every message of `profiles` is acked and delivered; the seconds it took, None on timeout."""
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        pending = [
            r
            for cid, r in load.sends.items()
            if r.profile in profiles and (r.delivered_at is None or not r.sender.sent[cid]["acked"])
        ]
        if not pending:
            return round(time.monotonic() - start, 1)
        await asyncio.sleep(0.2)
    return None


def py_spy(
    args: argparse.Namespace, root: int | list[int] | None, name: str, seconds: float
) -> subprocess.Popen[bytes] | None:
    """Record the process `root` (of several Daphne processes, the first)."""
    pid = (root[0] if root else None) if isinstance(root, list) else root
    """Sample a server process with py-spy (collapsed stacks, per thread) while a profile runs."""
    if args.py_spy is None or pid is None:
        return None
    args.py_spy.mkdir(parents=True, exist_ok=True)
    command = [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    # --idle: waiting counts too, so the shares are of wall-clock time (CPU comes from /proc).
    command += [
        "--rate",
        "50",
        "--format",
        "raw",
        "--threads",
        "--idle",
        "--nonblocking",
        "--output",
        str(args.py_spy / name),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def connect_all(load: Load, concurrency: int, timeout: float = 300) -> float:
    """Open every socket (bounded handshakes in flight) and wait until each is subscribed; returns seconds."""
    start = time.monotonic()
    gate = asyncio.Semaphore(concurrency)

    async def one(client: ChatClient) -> None:
        async with gate:
            client.start()
            await asyncio.wait_for(client.caught_up.wait(), timeout=timeout)

    await asyncio.gather(*(one(c) for c in load.sockets))
    return time.monotonic() - start


async def close_all(load: Load) -> None:
    await asyncio.gather(*(c.close() for c in load.sockets), return_exceptions=True)


def make_load(
    urls: list[str],
    conversations: list[int],
    agents: int,
    buyer_cookies: list[str],
    agent_cookies: list[str],
    per_user: int,
) -> Load:
    """Buyer socket i watches conversation i; agent socket j watches every conversation i with i % agents == j.

    Sockets go to the servers in `urls` in turn, as a balancer would spread connections."""
    load = Load(buyers=[], agents=[], conversations=conversations)
    common: dict[str, Any] = {"reconnect_min": 0.5, "reconnect_max": 30.0, "resend_after": 30.0}
    for i, conversation in enumerate(conversations):
        cookie = buyer_cookies[i % len(buyer_cookies)] if buyer_cookies else ""
        load.buyers.append(
            ChatClient(
                base_url=urls[i % len(urls)],
                cookie=cookie,
                conversations=[conversation],
                name=f"b{i}",
                on_message=load.on_message,
                on_ack=load.on_ack,
                **common,
            )
        )
    for j in range(agents):
        cookie = agent_cookies[j % len(agent_cookies)] if agent_cookies else ""
        watched = [c for i, c in enumerate(conversations) if i % agents == j]
        load.agents.append(
            ChatClient(
                base_url=urls[j % len(urls)],
                cookie=cookie,
                conversations=watched,
                name=f"a{j}",
                on_message=load.on_message,
                on_ack=load.on_ack,
                **common,
            )
        )
    return load


async def run_profiles(
    load: Load,
    args: argparse.Namespace,
    sampler: Sampler,
    *,
    baseline: bool,
    check_db: Callable[[], dict[int, int]] | None,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if baseline:
        profiles = [p for p in profiles if p != "storm"]
    target = args.latency_target_ms
    side = "baseline" if baseline else "refundchat"

    connect_seconds = await connect_all(load, args.connect_concurrency)
    results["connect"] = {"sockets": len(load.sockets), "seconds": round(connect_seconds, 2)}
    pinger = asyncio.create_task(load.pinger(args.ping_every))
    try:

        async def run_idle() -> None:
            await asyncio.sleep(1.0)  # let the connect burst settle
            spy = py_spy(
                args, sampler.roots().get("echo daphne" if baseline else "daphne"), f"{side}-idle.txt", args.idle
            )
            sampler.start()
            await asyncio.sleep(args.idle)
            if spy is not None:
                spy.wait()
            usage = await sampler.stop()
            held = sum(1 for c in load.sockets if c.caught_up.is_set())
            results["idle"] = {"sockets_held": held, "seconds": args.idle, "processes": usage}
            log(f"idle: {held} sockets held, daphne {usage.get('daphne', {}).get('cpu_pct')}% of a core")

        async def run_steady() -> None:
            before = integrity_now(load)
            load.profile = "steady"
            spy_seconds = min(30.0, args.duration)
            spy = py_spy(
                args, sampler.roots().get("echo daphne" if baseline else "daphne"), f"{side}-steady.txt", spy_seconds
            )
            sampler.start()
            t0 = time.monotonic()
            sent = await load.send_at(args.rate, args.duration)
            send_wall = time.monotonic() - t0
            usage = await sampler.stop()
            drained = await wait_delivered(load, {"steady"}, args.drain_seconds)
            if spy is not None:
                spy.wait()
            stats = profile_stats(load, {"steady"}, target, drained is not None, (t0, t0 + send_wall))
            results["steady"] = {
                "rate": args.rate,
                "seconds": args.duration,
                "messages_per_s": stats["acked_per_s_while_sending"],
                "sent": sent,
                "backlog_drained_after_s": drained,
                **stats,
                **integrity_delta(load, before),
                "processes": usage,
            }
            rate = results["steady"]["messages_per_s"]
            log(f"steady: {rate} msg/s, latency {stats['latency_ms']}, lost {stats['lost']}")

        async def run_surge() -> None:
            before = integrity_now(load)
            load.profile = "surge"
            sampler.start()
            surge_start = time.monotonic()
            await load.send_at(args.rate * args.surge_factor, args.surge_seconds)
            surge_end = time.monotonic()
            load.profile = "recovery"
            await load.send_at(args.rate, args.recovery_seconds)
            usage = await sampler.stop()
            drained = await wait_delivered(load, {"surge", "recovery"}, args.drain_seconds)
            # p99 per one-second window of send time, from the start of the surge to the end of the recovery.
            windows: list[dict[str, Any]] = []
            total = args.surge_seconds + args.recovery_seconds
            for k in range(int(total + 0.999)):
                lo, hi = surge_start + k, surge_start + k + 1
                lat = [
                    1000 * (r.delivered_at - r.at)
                    for r in load.sends.values()
                    if r.profile in ("surge", "recovery") and lo <= r.at < hi and r.delivered_at is not None
                ]
                windows.append({"second": k, **percentiles(lat)})
            after = [w for w in windows if w["second"] >= args.surge_seconds]
            recovered_after = None
            for idx in range(len(after)):
                if all(w["p99"] is not None and w["p99"] < target for w in after[idx:]):
                    recovered_after = idx
                    break
            surge_stats = profile_stats(load, {"surge"}, target, drained is not None, (surge_start, surge_end))
            results["surge"] = {
                "rate": args.rate * args.surge_factor,
                "seconds": args.surge_seconds,
                "messages_per_s_acked": surge_stats["acked_per_s_while_sending"],
                "surge": surge_stats,
                "recovery": profile_stats(load, {"recovery"}, target, drained is not None),
                **integrity_delta(load, before),
                "p99_by_second": windows,
                "recovered_after_s": recovered_after,
                "backlog_drained_after_s": drained,
                "processes": usage,
            }
            log(
                f"surge: lost {surge_stats['lost']}, recovery p99 < {target} ms after {recovered_after} s, "
                f"dup {results['surge']['duplicates']}, ooo {results['surge']['out_of_order']}"
            )

        async def run_storm() -> None:
            results["storm"] = await storm(load, args, sampler, check_db)
            log(f"storm: {results['storm']}")

        runners = {"idle": run_idle, "steady": run_steady, "surge": run_surge, "storm": run_storm}
        for name in profiles:
            await runners[name]()
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
    return results


async def storm(
    load: Load, args: argparse.Namespace, sampler: Sampler, check_db: Callable[[], dict[int, int]] | None
) -> dict[str, Any]:
    """Drop every socket at once while messages keep coming at the base rate; every client must catch up."""
    before = integrity_now(load)
    connects_before = sum(c.stats.connects for c in load.sockets)
    load.profile = "storm"
    sampler.start()
    t0 = time.monotonic()
    for client in load.sockets:
        await client.drop()
    sender = asyncio.create_task(load.send_at(args.rate, 5.0))
    # Wait until every socket is back and subscribed, and every message acked and delivered.
    deadline = t0 + args.storm_timeout
    reconnected_at = None
    while time.monotonic() < deadline:
        back = sum(c.stats.connects for c in load.sockets) - connects_before
        if reconnected_at is None and back >= len(load.sockets) and all(c.caught_up.is_set() for c in load.sockets):
            reconnected_at = time.monotonic()
        if reconnected_at is not None and sender.done():
            break
        await asyncio.sleep(0.1)
    await sender
    usage = await sampler.stop()
    drained = await wait_delivered(load, {"storm"}, args.drain_seconds)
    stats = profile_stats(load, {"storm"}, args.latency_target_ms, drained is not None)
    caught_up, behind = 0, 0
    if check_db is not None:
        last_seqs = await asyncio.to_thread(check_db)
        for client in load.sockets:
            ok = all(client.holds_all(c, last_seqs.get(c, 0)) for c in client.conversations)
            caught_up += ok
            behind += not ok
    return {
        "sockets": len(load.sockets),
        "all_back_after_s": round(reconnected_at - t0, 2) if reconnected_at else None,
        "clients_caught_up": caught_up,
        "clients_behind": behind,
        "backlog_drained_after_s": drained,
        **stats,
        **integrity_delta(load, before),
        "processes": usage,
    }


# --- setup ---------------------------------------------------------------------------------------------------


def log(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def database_url_for(base_url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(base_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def last_seqs_reader(url: str, conversations: list[int]) -> Callable[[], dict[int, int]]:
    def read() -> dict[int, int]:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT conversation_id, COUNT(*), MAX(seq) FROM messaging_message "
                "WHERE conversation_id = ANY(%s) GROUP BY conversation_id",
                (conversations,),
            ).fetchall()
        for conversation, count, top in rows:
            if count != top:
                raise AssertionError(f"conversation {conversation}: {count} messages but last seq {top}")
        return {int(c): int(top) for c, _count, top in rows}

    return read


async def log_in_all(url: str, usernames: list[str], concurrency: int) -> tuple[list[str], dict[str, Any]]:
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []

    async def one(username: str) -> str:
        async with gate:
            t = time.monotonic()
            cookie = await asyncio.to_thread(log_in, url, username, PASSWORD)
            durations.append(1000 * (time.monotonic() - t))
            return cookie

    start = time.monotonic()
    cookies = list(await asyncio.gather(*(one(u) for u in usernames)))
    return cookies, {
        "users": len(usernames),
        "seconds": round(time.monotonic() - start, 1),
        "concurrency": concurrency,
        "per_login_ms": percentiles(durations),
    }


@contextlib.contextmanager
def bench_stack(
    args: argparse.Namespace, base: Path, database_url: str
) -> Iterator[tuple[LiveStack, dict[str, list[str]]]]:
    var_dir, log_dir = base / "var", base / "logs"
    for folder in (var_dir, log_dir, base / "media"):
        folder.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(log_dir)
    extra = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
        # The limiter still runs (one Redis call per message) but never refuses: the bench sends for many people.
        "REFUNDCHAT_SEND_BURST": "1000000",
        "REFUNDCHAT_SEND_RATE": "1000000",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    if args.channel_layer:
        extra["REFUNDCHAT_CHANNEL_LAYER"] = args.channel_layer
    env = stack_environment(
        var_dir, database_url=database_url, redis_url=redis.url, media_root=base / "media", extra=extra
    )
    stack = build_stack(
        var_dir=var_dir, log_dir=log_dir, env=env, worker=True, beat=True, worker_concurrency=2, redis=redis
    )
    extra_ports = [free_port() for _ in range(args.daphne - 1)]
    for index, port in enumerate(extra_ports, start=2):
        stack.services[f"daphne{index}"] = ManagedProcess(f"daphne{index}", daphne_command(port), env, log_dir)
    echo_ports = [free_port() for _ in range(args.daphne)]
    for index, port in enumerate(echo_ports, start=1):
        name = "echo" if index == 1 else f"echo{index}"
        stack.services[name] = ManagedProcess(
            name, daphne_command(port, "tests.load.echo_asgi:application"), env, log_dir
        )
    try:
        redis.start()
        if args.migrate:
            log("migrating the benchmark database")
            subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        for name in (*daphne_names(args), "worker", "beat"):
            stack.services[name].start()
        stack.wait_until_healthy(timeout=60)
        for port in extra_ports:
            wait_port(port, timeout=60)
        urls = [stack.url, *(f"http://127.0.0.1:{port}" for port in extra_ports)]
        echo_urls = [f"http://127.0.0.1:{port}" for port in echo_ports]
        if args.nginx:
            # Every socket through nginx, which spreads them over the processes (the baseline too: same path).
            proxy = NginxServer(log_dir, [stack.port, *extra_ports])
            echo_proxy = NginxServer(log_dir, echo_ports, name="nginx-echo")
            stack.services[proxy.name], stack.services[echo_proxy.name] = proxy, echo_proxy
            proxy.start()
            echo_proxy.start()
            urls, echo_urls = [proxy.url], [echo_proxy.url]
        yield stack, {"urls": urls, "echo_urls": echo_urls}
    finally:
        stack.stop()


def daphne_names(args: argparse.Namespace) -> list[str]:
    return ["daphne", *(f"daphne{index}" for index in range(2, args.daphne + 1))]


def echo_names(args: argparse.Namespace) -> list[str]:
    return ["echo", *(f"echo{index}" for index in range(2, args.daphne + 1))]


def wait_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def seed(env: dict[str, str], args: argparse.Namespace, buyer_users: int, agent_users: int) -> dict[str, Any]:
    command = [
        PYTHON,
        "-m",
        "tests.load.seed",
        "--conversations",
        str(args.buyers),
        "--buyer-users",
        str(buyer_users),
        "--agent-users",
        str(agent_users),
        "--agent-sockets",
        str(args.agents),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        mem_kb = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": sys.version.split()[0],
    }


async def bench(
    args: argparse.Namespace, stack: LiveStack, urls: list[str], echo_urls: list[str], database_url: str
) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}}
    buyer_users = max(1, -(-args.buyers // args.sockets_per_user))
    agent_users = max(1, -(-args.agents // args.sockets_per_user))
    env = stack["daphne"].env
    log(f"seeding {args.buyers} conversations, {buyer_users} buyers, {agent_users} agents")
    seeded = await asyncio.to_thread(seed, env, args, buyer_users, agent_users)
    conversations = seeded["conversations"]

    log(f"logging in {buyer_users + agent_users} users through /accounts/login/")
    cookies, login = await log_in_all(stack.url, seeded["buyers"] + seeded["agents"], args.login_concurrency)
    results["login"] = login
    log(f"login: {login}")

    procs = read_procs()
    pg = postmaster_pid(procs)

    def running(name: str) -> int | None:
        return stack[name].pid if stack[name].running else None

    def all_running(names: list[str]) -> list[int]:
        return [pid for pid in (running(name) for name in names) if pid is not None]

    # With several Daphne processes, "daphne" is their sum (so its CPU may pass 100 % of a core).
    def roots() -> dict[str, int | list[int] | None]:
        return {
            "daphne": all_running(daphne_names(args)),
            "worker": running("worker"),
            "beat": running("beat"),
            "redis": running("redis"),
            "postgres (whole server)": pg,
            "echo daphne": all_running(echo_names(args)),
            "load generator": os.getpid(),
        }

    sampler = Sampler(roots)
    load = make_load(
        urls,
        conversations,
        args.agents,
        cookies[:buyer_users],
        cookies[buyer_users:],
        args.sockets_per_user,
    )
    log(f"RefundChat: {len(load.sockets)} sockets")
    results["refundchat"] = await run_profiles(
        load, args, sampler, baseline=False, check_db=last_seqs_reader(database_url, conversations)
    )
    await close_all(load)

    if args.baseline:
        # RefundChat's servers stop first: a backlog they still work through must not load the baseline's cores.
        for name in (*daphne_names(args), "worker", "beat"):
            await asyncio.to_thread(stack[name].stop)
        for name in echo_names(args):
            await asyncio.to_thread(stack[name].start)
            command = stack[name].command
            await asyncio.to_thread(wait_port, int(command[command.index("--port") + 1]))
        base_load = make_load(echo_urls, conversations, args.agents, [], [], args.sockets_per_user)
        log(f"baseline echo consumer: {len(base_load.sockets)} sockets")
        results["baseline"] = await run_profiles(base_load, args, sampler, baseline=True, check_db=None)
        await close_all(base_load)
        for name in echo_names(args):
            stack[name].stop()
        results["ratio"] = ratios(results["refundchat"], results["baseline"])
    results["targets"] = verdicts(results, args)
    return results


def _get(d: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def ratios(app: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """RefundChat's figure divided by the echo consumer's (the server side: the daphne process)."""
    pairs = {
        "idle daphne cpu": (
            ("idle", "processes", "daphne", "cpu_pct"),
            ("idle", "processes", "echo daphne", "cpu_pct"),
        ),
        "idle daphne rss": (("idle", "processes", "daphne", "rss_mb"), ("idle", "processes", "echo daphne", "rss_mb")),
        "steady daphne cpu": (
            ("steady", "processes", "daphne", "cpu_pct"),
            ("steady", "processes", "echo daphne", "cpu_pct"),
        ),
        "steady p50": (("steady", "latency_ms", "p50"), ("steady", "latency_ms", "p50")),
        "steady p99": (("steady", "latency_ms", "p99"), ("steady", "latency_ms", "p99")),
        "surge p99": (("surge", "surge", "latency_ms", "p99"), ("surge", "surge", "latency_ms", "p99")),
        "surge msg/s acked": (("surge", "messages_per_s_acked"), ("surge", "messages_per_s_acked")),
    }
    out: dict[str, Any] = {}
    for name, (a, b) in pairs.items():
        x, y = _get(app, *a), _get(base, *b)
        out[name] = round(x / y, 2) if isinstance(x, int | float) and isinstance(y, int | float) and y else None
    return out


def _sum(*values: int | None) -> int | None:
    """None (unknown: the backlog never drained) wins."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def verdicts(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    app = results.get("refundchat", {})
    target = args.latency_target_ms
    out: dict[str, Any] = {}
    if "idle" in app:
        cpu = _get(app, "idle", "processes", "daphne", "cpu_pct")
        out["idle: sockets held, daphne CPU < 10% of a core"] = {
            "held": app["idle"]["sockets_held"],
            "of": args.buyers + args.agents,
            "daphne_cpu_pct": cpu,
            "met": app["idle"]["sockets_held"] == args.buyers + args.agents and cpu is not None and cpu < 10,
        }
    if "steady" in app:
        s = app["steady"]
        out[f"steady: {args.rate:g} msg/s, p99 < {target:g} ms"] = {
            "messages_per_s": s["messages_per_s"],
            "p99_ms": s["latency_ms"]["p99"],
            "met": s["messages_per_s"] >= 0.98 * args.rate
            and s["latency_ms"]["p99"] is not None
            and s["latency_ms"]["p99"] < target
            and s["lost"] == 0,
        }
    if "surge" in app:
        s = app["surge"]
        lost = _sum(s["surge"]["lost"], s["recovery"]["lost"])
        clean = lost == 0 and s["duplicates"] + s["out_of_order"] == 0
        out["surge: no loss/dup/reorder, p99 back under target within the recovery"] = {
            "lost": lost,
            "undelivered_after_drain": s["surge"]["undelivered_after_drain"] + s["recovery"]["undelivered_after_drain"],
            "unacked": s["surge"]["unacked"] + s["recovery"]["unacked"],
            "duplicates": s["duplicates"],
            "out_of_order": s["out_of_order"],
            "recovered_after_s": s["recovered_after_s"],
            "met": clean and s["recovered_after_s"] is not None,
        }
    if "storm" in app:
        s = app["storm"]
        out["storm: every client caught up"] = {
            "caught_up": s["clients_caught_up"],
            "behind": s["clients_behind"],
            "all_back_after_s": s["all_back_after_s"],
            "met": s["clients_behind"] == 0 and s["lost"] == 0 and s["duplicates"] == 0,
        }
    return out


def table(results: dict[str, Any]) -> str:
    lines = []
    m = results["machine"]
    lines.append(f"machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB RAM")
    login = results.get("login", {})
    lines.append(
        f"login: {login.get('users')} users in {login.get('seconds')} s, per login {login.get('per_login_ms')}"
    )
    for side in ("refundchat", "baseline"):
        data = results.get(side)
        if not data:
            continue
        lines.append(f"\n== {side} ({data['connect']['sockets']} sockets, connected in {data['connect']['seconds']} s)")
        for name in ("idle", "steady", "surge", "storm"):
            if name not in data:
                continue
            p = data[name]
            if name == "idle":
                lines.append(f"idle      held {p['sockets_held']} sockets for {p['seconds']} s")
            elif name == "steady":
                lines.append(
                    f"steady    {p['messages_per_s']} msg/s acked of {p['rate']:g} asked; "
                    f"latency ms {p['latency_ms']}; "
                    f"lost {p['lost']} unacked {p['unacked']} dup {p['duplicates']} ooo {p['out_of_order']}; "
                    f"backlog drained {p['backlog_drained_after_s']} s after"
                )
            elif name == "surge":
                lines.append(
                    f"surge     {p['rate']:g} msg/s asked, {p['messages_per_s_acked']} acked/s; surge latency "
                    f"{p['surge']['latency_ms']}; lost {_sum(p['surge']['lost'], p['recovery']['lost'])} "
                    f"(undelivered after the drain {p['surge']['undelivered_after_drain']}) "
                    f"dup {p['duplicates']} ooo {p['out_of_order']}; p99 < target again after "
                    f"{p['recovered_after_s']} s of the recovery; "
                    f"backlog drained {p['backlog_drained_after_s']} s after"
                )
                lines.append("          p99 by second: " + " ".join(f"{w['p99']}" for w in p["p99_by_second"]))
            elif name == "storm":
                lines.append(
                    f"storm     all {p['sockets']} back after {p['all_back_after_s']} s; caught up "
                    f"{p['clients_caught_up']}, behind {p['clients_behind']}; latency ms {p['latency_ms']}; "
                    f"lost {p['lost']} dup {p['duplicates']} ooo {p['out_of_order']}"
                )
            for proc, usage in p.get("processes", {}).items():
                lines.append(f"          {proc:<24} cpu {usage['cpu_pct']:>6}% of a core   rss {usage['rss_mb']:>7} MB")
    if "ratio" in results:
        lines.append("\n== RefundChat / echo baseline")
        for name, value in results["ratio"].items():
            lines.append(f"{name:<22} {value}")
    lines.append("\n== targets")
    for name, verdict in results["targets"].items():
        lines.append(f"{'MET   ' if verdict['met'] else 'MISSED'} {name}: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # A SIGTERM (make interrupted, a timeout) must still stop the server processes this run started.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    if args.database_url is None:
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name, "").strip()]
        if missing or not os.environ["DATABASE_URL"].startswith("postgres"):
            sys.stderr.write(
                "make bench needs a PostgreSQL DATABASE_URL and a REDIS_URL, e.g.\n"
                "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat REDIS_URL=redis://127.0.0.1:6379/0 "
                "make bench\n(it uses its own database, refundchat_bench, on that server, and its own redis-server)\n"
            )
            return 2
        database_url = database_url_for(os.environ["DATABASE_URL"], args.database_name)
        ensure_database(database_url)
    else:
        database_url = args.database_url
    if shutil.which("redis-server") is None:
        sys.stderr.write("make bench needs the redis-server binary (Debian: apt-get install redis-server)\n")
        return 2
    base = Path(tempfile.mkdtemp(prefix="refundchat-bench-"))
    log(f"logs in {base / 'logs'}")
    try:
        with bench_stack(args, base, database_url) as (stack, extra):
            results = asyncio.run(bench(args, stack, extra["urls"], extra["echo_urls"], database_url))
    finally:
        if not args.keep_logs:
            shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(table(results) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
