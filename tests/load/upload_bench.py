"""Upload memory benchmark: a 200 MB evidence video sent over tus to a real Daphne, whose memory is watched.

`make bench-upload` (or `python -m tests.load.upload_bench`) starts Daphne on its own database
(`refundchat_bench_upload` on DATABASE_URL's server, created and migrated) and its own redis-server, logs a buyer
in, measures Daphne's idle RSS, uploads the file with tuspy (the standard Python tus client) in chunks over
loopback, samples Daphne's RSS from /proc every few milliseconds meanwhile, and prints peak − idle and the
throughput. The file is a real MP4 (ffmpeg) padded to the size with an ISO `free` box, so it passes the content
checks and becomes an attachment like a phone video. docs/benchmarks.md ("Upload memory") has the figures.
The issue's bar: peak within 50 MB of idle. Exit status 1 when it is missed or the stored file's sha256 differs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from tests.chat_client import log_in
from tests.load.bench import database_url_for, ensure_database, machine
from tests.stack import PYTHON, ROOT, LiveStack, RedisServer, build_stack, stack_environment

USERNAME = "bench-upload-buyer"
PASSWORD = "refundchat"
MIB = 1024 * 1024
LIMIT_MB = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load.upload_bench", description=__doc__)
    add = parser.add_argument
    add("--size-mb", type=int, default=200, help="file size in MiB (default 200)")
    add("--chunk-mb", type=float, default=8.0, help="tus chunk size in MiB, as the browser sends (default 8)")
    add("--checksum", action="store_true", help="send Upload-Checksum (sha256) with every chunk")
    add("--interval", type=float, default=0.01, help="seconds between two RSS samples (default 0.01)")
    add("--idle-seconds", type=float, default=3.0, help="how long idle RSS is sampled (default 3)")
    add("--database-name", default="refundchat_bench_upload", help="database on DATABASE_URL's server")
    add("--database-url", default=None, help="use this database as is (no create)")
    add("--json", type=Path, default=None, help="also write the results here")
    add("--keep-logs", action="store_true")
    return parser.parse_args(argv)


def log(text: str) -> None:
    sys.stderr.write(f"[upload-bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


# --- the file ----------------------------------------------------------------------------------------------


def make_video(path: Path, size: int) -> str:
    """A short H.264 MP4 padded with a `free` box to exactly `size` bytes; returns its sha256."""
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    padding = size - path.stat().st_size
    digest = hashlib.sha256(path.read_bytes())
    block = bytes(MIB)
    with path.open("ab") as out:
        header = struct.pack(">I", padding) + b"free"
        out.write(header)
        digest.update(header)
        left = padding - len(header)
        while left > 0:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


# --- memory ------------------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class RssSampler(threading.Thread):
    """Samples one process' resident memory until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            time.sleep(self.interval)

    def stop(self) -> list[tuple[float, int]]:
        self.halt.set()
        self.join()
        return self.samples


# --- the stack ---------------------------------------------------------------------------------------------


SEED = """
import json
from django.contrib.auth import get_user_model
from media.models import Attachment
from tests import factories
from tickets.models import Order, RefundTicket
from tickets.roles import ensure_role_groups

ensure_role_groups()
User = get_user_model()
# What an earlier run left: its evidence first (kept on purpose, PROTECT), then the ticket, the order, the buyer.
Attachment.objects.filter(ticket__buyer__username={username!r}).delete()
RefundTicket.objects.filter(buyer__username={username!r}).delete()
Order.objects.filter(buyer__username={username!r}).delete()
User.objects.filter(username={username!r}).delete()
buyer = factories.buyer(username={username!r})
buyer.set_password({password!r})
buyer.save(update_fields=["password"])
ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(7900, 1)]))
print(json.dumps({{"ticket": ticket.pk}}))
"""


@contextlib.contextmanager
def upload_stack(base: Path, database_url: str) -> Iterator[tuple[LiveStack, dict[str, str]]]:
    var_dir, log_dir, media = base / "var", base / "logs", base / "media"
    for folder in (var_dir, log_dir, media):
        folder.mkdir(parents=True, exist_ok=True)
    redis = RedisServer(log_dir)
    extra = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex, "DJANGO_LOG_LEVEL": "WARNING"}
    env = stack_environment(var_dir, database_url=database_url, redis_url=redis.url, media_root=media, extra=extra)
    # Daphne alone: the processing task waits in the broker, so Daphne's memory is only the upload's.
    stack = build_stack(var_dir=var_dir, log_dir=log_dir, env=env, worker=False, redis=redis)
    try:
        redis.start()
        log("migrating the benchmark database")
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        stack.services["daphne"].start()
        stack.wait_until_healthy(timeout=60)
        yield stack, env
    finally:
        stack.stop()


def seed(env: dict[str, str]) -> int:
    script = SEED.format(username=USERNAME, password=PASSWORD)
    done = subprocess.run(
        [PYTHON, "-c", "import django; django.setup()\n" + script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    return int(json.loads(done.stdout.strip().splitlines()[-1])["ticket"])


def tus_headers(cookie_header: str) -> dict[str, str]:
    cookies = SimpleCookie()
    cookies.load(cookie_header)
    return {"Cookie": cookie_header, "X-CSRFToken": cookies["csrftoken"].value, "Accept-Language": "en"}


def upload(url: str, headers: dict[str, str], path: Path, *, ticket: int, chunk: int, checksum: bool) -> str:
    """Upload `path` with tuspy; returns the upload's URL."""
    from tusclient.client import TusClient
    from tusclient.uploader import Uploader

    class Sha256Uploader(Uploader):
        CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

    client = TusClient(url + "/api/v1/uploads/", headers=headers)
    uploader = Sha256Uploader(
        file_path=str(path),
        client=client,
        chunk_size=chunk,
        metadata={"ticket": str(ticket), "filename": path.name, "filetype": "video/mp4"},
        upload_checksum=checksum,
        retries=3,
        retry_delay=1,
    )
    uploader.upload()
    return str(uploader.url)


def stored_sha256(env: dict[str, str], upload_url: str) -> tuple[str, int]:
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[-1]
    script = (
        "import django; django.setup()\n"
        "import hashlib, json\n"
        "from media.models import Attachment\n"
        f"a = Attachment.objects.get(upload_id={upload_id!r})\n"
        "h = hashlib.sha256()\n"
        "with a.original.open('rb') as f:\n"
        "    for block in iter(lambda: f.read(1 << 20), b''): h.update(block)\n"
        "print(json.dumps([h.hexdigest(), a.size]))\n"
    )
    done = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    digest, size = json.loads(done.stdout.strip().splitlines()[-1])
    return str(digest), int(size)


def mb(value: float) -> float:
    return round(value / MIB, 1)


def run(args: argparse.Namespace, base: Path, database_url: str) -> dict[str, Any]:
    size = args.size_mb * MIB
    video = base / "parcel.mp4"
    log(f"making a {args.size_mb} MiB MP4")
    expected = make_video(video, size)
    warmup = base / "warmup.mp4"
    make_video(warmup, 2 * MIB)
    with upload_stack(base, database_url) as (stack, env):
        ticket = seed(env)
        headers = tus_headers(log_in(stack.url, USERNAME, PASSWORD))
        chunk = int(args.chunk_mb * MIB)
        pid = stack.services["daphne"].pid
        assert pid is not None
        # One small upload first: every code path of an upload is imported and warm before idle is measured.
        upload(stack.url, headers, warmup, ticket=ticket, chunk=chunk, checksum=args.checksum)
        log(f"idle RSS of Daphne (pid {pid}) for {args.idle_seconds:g} s")
        idle_sampler = RssSampler(pid, args.interval)
        idle_sampler.start()
        time.sleep(args.idle_seconds)
        idle = statistics.median(rss for _t, rss in idle_sampler.stop())
        log(f"uploading {args.size_mb} MiB in {args.chunk_mb:g} MiB chunks")
        sampler = RssSampler(pid, args.interval)
        sampler.start()
        started = time.monotonic()
        upload_url = upload(stack.url, headers, video, ticket=ticket, chunk=chunk, checksum=args.checksum)
        seconds = time.monotonic() - started
        samples = sampler.stop()
        digest, stored_size = stored_sha256(env, upload_url)
    peak = max(rss for _t, rss in samples)
    results = {
        "machine": machine(),
        "file_mib": args.size_mb,
        "chunk_mib": args.chunk_mb,
        "checksum": "sha256" if args.checksum else None,
        "idle_rss_mb": mb(idle),
        "peak_rss_mb": mb(peak),
        "peak_minus_idle_mb": mb(peak - idle),
        "samples": len(samples),
        "seconds": round(seconds, 2),
        "throughput_mib_s": round(args.size_mb / seconds, 1),
        "stored_sha256_matches": digest == expected and stored_size == size,
        "limit_mb": LIMIT_MB,
    }
    results["ok"] = results["stored_sha256_matches"] and (peak - idle) <= LIMIT_MB * MIB
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("ffmpeg") is None:
        sys.stderr.write("ffmpeg is missing: apt-get install ffmpeg\n")
        return 2
    if args.database_url is None:
        if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
            sys.stderr.write(
                "the upload benchmark needs DATABASE_URL (PostgreSQL) and REDIS_URL, e.g.\n"
                "DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat REDIS_URL=redis://127.0.0.1:6379/0 "
                "make bench-upload\n(it uses its own database, refundchat_bench_upload, and its own redis-server)\n"
            )
            return 2
        database_url = database_url_for(os.environ["DATABASE_URL"], args.database_name)
        ensure_database(database_url)
    else:
        database_url = args.database_url
    base = Path(tempfile.mkdtemp(prefix="refundchat-upload-bench-"))
    try:
        results = run(args, base, database_url)
    finally:
        if args.keep_logs:
            log(f"logs kept in {base / 'logs'}")
            for name in ("parcel.mp4", "warmup.mp4", "media"):
                with contextlib.suppress(OSError):
                    target = base / name
                    if target.is_dir():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
        else:
            shutil.rmtree(base, ignore_errors=True)
    sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    sys.stdout.write(
        f"\n{args.size_mb} MiB over tus in {args.chunk_mb:g} MiB chunks: Daphne idle {results['idle_rss_mb']} MB, "
        f"peak {results['peak_rss_mb']} MB, peak - idle {results['peak_minus_idle_mb']} MB "
        f"(limit {LIMIT_MB} MB); {results['throughput_mib_s']} MiB/s on loopback; "
        f"stored sha256 {'matches' if results['stored_sha256_matches'] else 'DIFFERS'}\n"
    )
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
