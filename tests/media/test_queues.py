"""Media processing has its own Celery queue and workers (refundchat/settings.py, docs/deploy.md "Queues"): a flood
of video uploads lengthens that queue only, and refund-state notifications (the outbox, on the default queue)
go out as fast as without it. The figure is in docs/benchmarks.md, "Notifications during an upload flood".
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from tusclient.client import TusClient

from media.models import Attachment, AttachmentStatus
from refundchat.celery import app as celery_app
from tests import factories
from tests.chat_client import Browser
from tests.e2e.test_scale_out import ask_for_evidence
from tests.factories import PASSWORD
from tests.media.test_tuspy_live import Sha256Uploader, session_headers
from tests.stack import LiveStack, ManagedProcess, running_stack, worker_command
from tickets import services
from tickets.models import OutboxMessage, OutboxStatus, RefundTicket

VIDEOS = 8  # uploaded at once, each transcoded by the media worker (MPEG-4 Part 2: no browser plays it)
NOTIFIED_TICKETS = 6  # refund-state changes measured without the flood, and again during it


def test_media_tasks_have_their_own_queue() -> None:
    router = celery_app.amqp.router
    media_queue = settings.REFUNDCHAT_MEDIA_QUEUE
    for task in ("media.tasks.process_attachment", "media.tasks.sweep_uploads", "tickets.tasks.purge_expired_media"):
        assert router.route({}, task)["queue"].name == media_queue, task
    for task in ("tickets.tasks.deliver_outbox_message", "tickets.tasks.run_timers", "tickets.tasks.triage_new_ticket"):
        assert router.route({}, task)["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE, task
    # A worker started without -Q (make run, the tests' stack) reads both queues.
    assert {q.name for q in celery_app.conf.task_queues} == {settings.CELERY_TASK_DEFAULT_QUEUE, media_queue}


@pytest.fixture
def queued_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    """Daphne and two workers as deploy/Procfile.production runs them: one per queue (the media one with a pool
    process, as in production, so that the pool process can be lost)."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: apt-get install ffmpeg", pytrace=False)
    with running_stack(tmp_path, own_redis=True, worker=False) as stack:
        env = stack["daphne"].env
        default_queue = env["REFUNDCHAT_CELERY_QUEUE"]
        for name, queue, base in (
            ("worker", default_queue, worker_command()),
            ("media-worker", f"{default_queue}.media", worker_command(prefork=True)),
        ):
            command = [*base, "--queues", queue, "--hostname", f"{name}@%h"]
            stack.services[name] = ManagedProcess(name, command, env, stack.log_dir)
            stack.services[name].start()
        yield stack


def mpeg4_video(folder: Path) -> bytes:
    path = folder / "flood.mov"
    source = "testsrc=size=640x360:rate=25:duration=6"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "mpeg4", "-f", "mov", str(path)],
        check=True,
        timeout=120,
    )
    return path.read_bytes()


def upload(stack: LiveStack, headers: dict[str, str], ticket: RefundTicket, content: bytes, index: int) -> None:
    Sha256Uploader(
        file_stream=io.BytesIO(content),
        client=TusClient(f"{stack.url}/api/v1/uploads/", headers=headers),
        chunk_size=len(content),
        metadata={"ticket": str(ticket.pk), "filename": f"unboxing-{index}.mov", "filetype": "video/quicktime"},
        upload_checksum=True,
    ).upload()


def notify(stack: LiveStack, agent_browser: Browser, tickets: list[RefundTicket]) -> list[float]:
    """Change each ticket's state through the console; return each notification's seconds from stored to sent."""
    started = time.time()
    for ticket in tickets:
        ask_for_evidence(agent_browser, ticket.pk)
    outbox = OutboxMessage.objects.filter(ticket__in=tickets, created_at__gte=_aware(started))
    deadline = time.monotonic() + 60
    while outbox.filter(status=OutboxStatus.PENDING).exists() or not outbox.exists():
        assert time.monotonic() < deadline, "notifications were not delivered"
        time.sleep(0.05)
    assert not outbox.exclude(status=OutboxStatus.SENT).exists()
    return [(m.sent_at - m.created_at).total_seconds() for m in outbox if m.sent_at is not None]


def _aware(timestamp: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, tz=UTC)


@pytest.mark.e2e
def test_video_flood_leaves_notification_latency_unchanged(queued_stack: LiveStack, tmp_path: Path) -> None:
    stack = queued_stack
    buyer = factories.with_server_password(factories.buyer(username="alice"))
    agent = factories.with_server_password(factories.agent(username="agent"))
    tickets = []
    for _ in range(2 * NOTIFIED_TICKETS + 1):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(7900, 1)]))
        services.claim_ticket(ticket_id=ticket.pk, agent=agent)
        tickets.append(ticket)
    evidence_ticket, quiet, flooded = tickets[0], tickets[1 : NOTIFIED_TICKETS + 1], tickets[NOTIFIED_TICKETS + 1 :]
    agent_browser = Browser(stack.url)
    agent_browser.log_in(agent.username, PASSWORD)

    baseline = notify(stack, agent_browser, quiet)

    video = mpeg4_video(tmp_path)
    headers = session_headers(buyer)
    uploads = [
        threading.Thread(target=upload, args=(stack, headers, evidence_ticket, video, index)) for index in range(VIDEOS)
    ]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join(timeout=120)
    assert Attachment.objects.filter(ticket=evidence_ticket).count() == VIDEOS
    # The flood is on: the media worker has a backlog of videos to transcode.
    assert Attachment.objects.filter(ticket=evidence_ticket, status=AttachmentStatus.PROCESSING).count() >= 2

    during = notify(stack, agent_browser, flooded)

    # Every notification went out while videos were still waiting for the media worker.
    still_processing = Attachment.objects.filter(ticket=evidence_ticket, status=AttachmentStatus.PROCESSING).count()
    assert still_processing >= 1, "the flood was over before the notifications: nothing was measured"
    sys.stdout.write(  # the figure of docs/benchmarks.md, "Notifications during an upload flood" (pytest -s)
        f"\nnotification latency (stored → sent), {len(baseline)} without and {len(during)} during a flood of "
        f"{VIDEOS} videos ({still_processing} still queued or processing when the last notification was sent): "
        f"median {statistics.median(baseline) * 1000:.0f} ms → {statistics.median(during) * 1000:.0f} ms, "
        f"max {max(baseline) * 1000:.0f} ms → {max(during) * 1000:.0f} ms\n"
    )
    # Then the media worker finishes them all.
    deadline = time.monotonic() + 300
    while Attachment.objects.filter(ticket=evidence_ticket, status=AttachmentStatus.PROCESSING).exists():
        assert time.monotonic() < deadline, f"videos were never processed:\n{stack.logs()}"
        time.sleep(0.5)
    assert Attachment.objects.filter(ticket=evidence_ticket, status=AttachmentStatus.READY).count() == VIDEOS


def wait_for_log(service: ManagedProcess, text: str, *, after: int = 0, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in service.log_tail(1_000_000)[after:]:
        assert time.monotonic() < deadline, f"{service.name} never logged {text!r}:\n{service.log_tail()}"
        time.sleep(0.05)


def pool_processes(worker: ManagedProcess) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.e2e
def test_media_worker_finishes_its_task_on_sigterm_and_a_lost_task_goes_back(queued_stack: LiveStack, tmp_path: Path):
    """acks_late + reject_on_worker_lost: a warm shutdown finishes the video in hand; a pool process killed
    mid-video hands it back, and the worker's next pool process does it."""
    stack = queued_stack
    media = stack["media-worker"]
    buyer = factories.with_server_password(factories.buyer(username="alice"))
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=buyer, items=[(7900, 1)]))
    video, headers = mpeg4_video(tmp_path), session_headers(buyer)
    received = "Task media.tasks.process_attachment["

    # 1. SIGTERM while a video is being processed: the worker finishes it, then exits.
    upload(stack, headers, ticket, video, 1)
    wait_for_log(media, received)
    media.stop(timeout=120)
    assert media.process is not None
    assert media.process.returncode == 0
    first = Attachment.objects.get(ticket=ticket, filename="unboxing-1.mov")
    assert first.status == AttachmentStatus.READY

    # 2. The pool process dies (OOM killer, kill -9) mid-video: the task goes back to the queue and runs again.
    media.start()
    log_start = len(media.log_tail(1_000_000))
    upload(stack, headers, ticket, video, 2)
    wait_for_log(media, received, after=log_start)
    children = pool_processes(media)
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)
    wait_for_log(media, "WorkerLostError", after=log_start)
    second = Attachment.objects.get(ticket=ticket, filename="unboxing-2.mov")
    deadline = time.monotonic() + 120
    while second.status == AttachmentStatus.PROCESSING:
        assert time.monotonic() < deadline, f"the lost task never ran again:\n{media.log_tail()}"
        time.sleep(0.2)
        second.refresh_from_db()
    assert second.status == AttachmentStatus.READY
