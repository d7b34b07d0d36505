"""deploy/: the nginx limits follow the upload limits of the settings, and the Procfile runs what docs/deploy.md
says (one worker per queue, one beat)."""

from __future__ import annotations

import re

from django.conf import settings

from tests.stack import NGINX_LOCATIONS, ROOT

MiB = 1024 * 1024


def body_sizes() -> dict[str, int]:
    """client_max_body_size by location ("" for the server level), in bytes."""
    sizes: dict[str, int] = {}
    location = ""
    for line in NGINX_LOCATIONS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("location "):
            location = line.removeprefix("location ").rstrip("{ ").strip()
        elif line == "}":
            location = ""
        elif match := re.fullmatch(r"client_max_body_size (\d+)m;", line):
            sizes[location] = int(match.group(1)) * MiB
    return sizes


def test_nginx_body_limits_match_the_upload_limits():
    sizes = body_sizes()
    # tus: a body may be a whole file of the largest kind (creation-with-upload or one PATCH).
    assert sizes["/api/v1/uploads/"] == settings.REFUNDCHAT_UPLOAD_MAX_SIZE
    # Elsewhere: staff form uploads, every kind but video.
    limits = settings.REFUNDCHAT_UPLOAD_KIND_LIMITS
    assert sizes[""] == max(size for kind, size in limits.items() if kind != "video")


def test_nginx_streams_uploads_and_keeps_sockets_open_longer_than_the_browser_pings():
    text = NGINX_LOCATIONS.read_text()
    uploads = text[text.index("location /api/v1/uploads/") :]
    uploads = uploads[: uploads.index("}")]
    assert "proxy_request_buffering off;" in uploads
    sockets = text[text.index("location /ws/") :]
    sockets = sockets[: sockets.index("}")]
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", sockets).group(1))
    assert read_timeout > 30 * 2  # static/js/realtime.js pings every 30 s


def test_the_production_procfile_runs_one_worker_per_queue_and_beat():
    lines = dict(
        line.split(": ", 1)
        for line in (ROOT / "deploy" / "Procfile.production").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(lines) == {"web", "worker", "media", "beat"}
    assert "refundchat.serve" in lines["web"]
    assert "$PORT" in lines["web"]
    assert "--queues ${REFUNDCHAT_CELERY_QUEUE:-celery}" in lines["worker"]
    assert "--queues ${REFUNDCHAT_CELERY_MEDIA_QUEUE:-${REFUNDCHAT_CELERY_QUEUE:-celery}.media}" in lines["media"]
    assert f"{settings.CELERY_TASK_DEFAULT_QUEUE}.media" == settings.REFUNDCHAT_MEDIA_QUEUE


def test_daphne_waits_longer_than_a_client_for_a_busy_handshake_unless_told_otherwise():
    from daphne.cli import CommandLineInterface

    from refundchat.serve import daphne_arguments

    parser = CommandLineInterface().parser
    default = parser.parse_args(daphne_arguments(["refundchat.asgi:application"]))
    # Daphne's own 5 s would answer a reconnect storm's queued handshakes with 403 (docs/benchmarks.md).
    assert default.websocket_connect_timeout == 30
    given = parser.parse_args(daphne_arguments(["--websocket_connect_timeout", "7", "refundchat.asgi:application"]))
    assert given.websocket_connect_timeout == 7
