"""Prometheus metrics at /metrics (docs/deploy.md, "Metrics").

Every Daphne process and Celery worker of a host writes its samples to files in PROMETHEUS_MULTIPROC_DIR
(prometheus-client's multiprocess mode: set it, empty, before the processes start); /metrics, answered by any
one process, merges them. Without the variable (development, unit tests) each process reports its own.

What the database and the broker know (queue depths, outbox backlog, tickets past their SLA) is read when
Prometheus scrapes, so it is right whichever process answers.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HTTP_LATENCY = Histogram(
    "refundchat_http_request_duration_seconds",
    "Time to answer an HTTP request, by view (URL name), method and status.",
    ["view", "method", "status"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "refundchat_websocket_connections",
    "WebSocket connections open now (accepted, not yet closed).",
    multiprocess_mode="livesum",
)
MESSAGES = Counter(
    "refundchat_messages",
    "Chat messages broadcast to their conversation (rate() of it: messages per second).",
)
DELIVERY_LATENCY = Histogram(
    "refundchat_message_delivery_seconds",
    "From a chat message being stored to its frame handed to the channel layer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CATCH_UP_SIZE = Histogram(
    "refundchat_catch_up_messages",
    "Messages a socket was sent from the database in one catch-up (subscribe, reconnect, a gap).",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
TASK_FAILURES = Counter("refundchat_celery_task_failures", "Celery tasks that raised, by task.", ["task"])
TASK_RETRIES = Counter("refundchat_celery_task_retries", "Celery task retries, by task.", ["task"])


# --- HTTP -------------------------------------------------------------------------------------------------


def http_metrics(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = get_response(request)
        match = request.resolver_match
        view = (match.view_name or "unnamed") if match is not None else "unmatched"
        HTTP_LATENCY.labels(view=view, method=request.method or "", status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    return middleware


# --- WebSocket and chat -----------------------------------------------------------------------------------

ASGIApp = Callable[..., Any]


def websocket_metrics(app: ASGIApp) -> ASGIApp:
    """ASGI middleware counting open WebSocket connections: from the accept the app sends to its end."""

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        accepted = False

        async def counting_send(message: dict[str, Any]) -> None:
            nonlocal accepted
            if message.get("type") == "websocket.accept" and not accepted:
                accepted = True
                WEBSOCKET_CONNECTIONS.inc()
            await send(message)

        try:
            return await app(scope, receive, counting_send)
        finally:
            if accepted:
                WEBSOCKET_CONNECTIONS.dec()

    return middleware


def observe_broadcast(frame: dict[str, Any]) -> None:
    """A frame was handed to the channel layer: count chat messages and how long after storing they went out."""
    if frame.get("type") != "message":
        return
    MESSAGES.inc()
    created_at = frame.get("message", {}).get("created_at")
    if isinstance(created_at, str):
        try:
            stored = datetime.fromisoformat(created_at)
        except ValueError:
            return
        DELIVERY_LATENCY.observe(max(0.0, (timezone.now() - stored).total_seconds()))


def observe_catch_up(count: int) -> None:
    CATCH_UP_SIZE.observe(count)


# --- Celery -----------------------------------------------------------------------------------------------


def _task_failure(sender: Any = None, **_kwargs: Any) -> None:
    TASK_FAILURES.labels(task=getattr(sender, "name", "unknown")).inc()


def _task_retry(sender: Any = None, **_kwargs: Any) -> None:
    TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()


def connect_celery_signals() -> None:
    from celery import signals

    signals.task_failure.connect(_task_failure, weak=False, dispatch_uid="refundchat.metrics.failure")
    signals.task_retry.connect(_task_retry, weak=False, dispatch_uid="refundchat.metrics.retry")


# --- read at scrape time ------------------------------------------------------------------------------------


def queue_depths() -> dict[str, int]:
    """Tasks waiting in each of this deployment's Celery queues."""
    from refundchat.celery import app

    depths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        channel: Any = connection.default_channel
        for queue in app.conf.task_queues or ():
            # Declaring is idempotent and answers the count even for a queue never used yet (passive would fail).
            depths[queue.name] = int(channel.queue_declare(queue=queue.name, passive=False).message_count)
    return depths


class StateCollector(Collector):
    """Gauges read from the broker and the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        from tickets.models import OPEN_STATUSES, OutboxMessage, OutboxStatus, RefundTicket

        depth = GaugeMetricFamily("refundchat_celery_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"])
        for queue, count in queue_depths().items():
            depth.add_metric([queue], count)
        yield depth
        backlog = GaugeMetricFamily(
            "refundchat_outbox_backlog", "Notifications not yet delivered (pending outbox messages)."
        )
        backlog.add_metric([], OutboxMessage.objects.filter(status=OutboxStatus.PENDING).count())
        yield backlog
        open_tickets = RefundTicket.objects.filter(status__in=OPEN_STATUSES)
        breached = GaugeMetricFamily(
            "refundchat_sla_breached_tickets", "Open tickets past a response promise, by rule.", labels=["rule"]
        )
        breached.add_metric(["first_response"], open_tickets.filter(sla_breached_at__isnull=False).count())
        breached.add_metric(["next_response"], open_tickets.filter(next_response_breached_at__isnull=False).count())
        yield breached


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges of processes that are gone (a crash, kill -9): their sockets are closed too."""
    for path in directory.glob("gauge_live*_*.db"):
        match = _LIVE_GAUGE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:
            pass  # alive, owned by someone else


def exposition() -> bytes:
    """The text Prometheus reads: every process's samples, then the scrape-time gauges."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        _forget_dead_processes(Path(directory))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        samples = generate_latest(registry)
    else:
        samples = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(StateCollector())
    return samples + generate_latest(state)


def _allowed(request: HttpRequest) -> bool:
    token = settings.REFUNDCHAT_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    return request.META.get("REMOTE_ADDR", "") in settings.REFUNDCHAT_METRICS_ALLOWED_IPS


@require_GET
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape target; a 404 to anyone neither on the allow-list nor holding the token."""
    if not _allowed(request):
        raise Http404
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
