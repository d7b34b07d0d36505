"""A standard tus client (tuspy) against a real HTTP server (Django's threaded live server).

Nothing about the protocol is mocked: requests go over loopback TCP to the full middleware stack
(session, CSRF, locale), the services and the disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client
from tusclient.client import TusClient
from tusclient.exceptions import TusUploadFailed
from tusclient.uploader import Uploader

from media import storage
from media.models import Attachment, Upload
from tests.media import samples

pytestmark = [pytest.mark.django_db(transaction=True)]

CHUNK = 64 * 1024
CSRF_TOKEN = "t" * 32  # the CSRF cookie a page of ours would have set; tus clients echo it in a header


class Sha256Uploader(Uploader):
    """tuspy sends sha1 by default; our clients use sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def session_headers(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return {
        "Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CSRF_COOKIE_NAME}={CSRF_TOKEN}",
        "X-CSRFToken": CSRF_TOKEN,
        "Accept-Language": "en",
    }


def wait_for_offset_change(upload_id, *, old: int, timeout: float = 10.0) -> Upload:
    """The server thread finishes a request whose client hung up in its own time: wait for it to commit."""
    deadline = time.monotonic() + timeout
    while True:
        upload = Upload.objects.get(pk=upload_id)
        if (upload.offset != old and upload.lease_token is None) or time.monotonic() > deadline:
            return upload
        time.sleep(0.05)


def patch_and_drop_the_connection(url: str, headers: dict[str, str], *, offset: int, chunk: bytes, sent: int) -> None:
    """Start a PATCH announcing the whole chunk, send only `sent` bytes of it, and hang up (a phone losing signal)."""
    parts = urlsplit(url)
    lines = [
        f"PATCH {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Tus-Resumable: 1.0.0",
        "Content-Type: application/offset+octet-stream",
        f"Content-Length: {len(chunk)}",
        f"Upload-Offset: {offset}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + chunk[:sent])


def test_upload_interrupted_mid_chunk_resumes_from_the_servers_offset(live_server, alice, ticket):
    content = samples.jpeg(width=800, height=800, noise=True)
    assert len(content) > 8 * CHUNK
    headers = session_headers(alice)
    endpoint = f"{live_server.url}/api/v1/uploads/"
    metadata = {"ticket": str(ticket.pk), "filename": "破损.jpg", "filetype": "image/jpeg"}

    # 1. A client sends three chunks, each with its sha256, then stops.
    first = Sha256Uploader(
        file_stream=io.BytesIO(content),
        client=TusClient(endpoint, headers=headers),
        chunk_size=CHUNK,
        metadata=metadata,
        upload_checksum=True,
    )
    first.upload(stop_at=3 * CHUNK)
    assert first.offset == 3 * CHUNK
    url = first.url
    upload_id = Upload.objects.get().pk

    # 2. The next PATCH dies mid-body: the server keeps what arrived (no checksum was promised).
    patch_and_drop_the_connection(url, headers, offset=3 * CHUNK, chunk=content[3 * CHUNK : 4 * CHUNK], sent=CHUNK // 2)
    upload = wait_for_offset_change(upload_id, old=3 * CHUNK)
    assert upload.offset == 3 * CHUNK + CHUNK // 2

    # 3. A new client (a reloaded page) asks the server where to go on, and finishes.
    second = Sha256Uploader(
        file_stream=io.BytesIO(content),
        url=url,
        client=TusClient(endpoint, headers=headers),
        chunk_size=CHUNK,
        upload_checksum=True,
    )
    assert second.offset == 3 * CHUNK + CHUNK // 2  # from HEAD
    second.upload()
    assert second.offset == len(content)

    attachment = Attachment.objects.get()
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    with attachment.original.open("rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == hashlib.sha256(content).hexdigest()
    assert not storage.partial_path(upload_id).exists()

    # The buyer downloads the original over HTTP, and a video player would seek with Range.
    download = requests.get(
        f"{live_server.url}/attachments/{attachment.pk}/original",
        headers={**headers, "Range": "bytes=1000-1999"},
        timeout=10,
    )
    assert download.status_code == 206
    assert download.content == content[1000:2000]


def test_wrong_checksum_over_http_is_460_and_nothing_is_kept(live_server, alice, ticket):
    content = samples.jpeg(width=400, height=400, noise=True)
    assert len(content) > 2 * CHUNK
    headers = {**session_headers(alice), "Tus-Resumable": "1.0.0"}
    endpoint = f"{live_server.url}/api/v1/uploads/"
    uploader = Sha256Uploader(
        file_stream=io.BytesIO(content),
        client=TusClient(endpoint, headers=session_headers(alice)),
        chunk_size=CHUNK,
        metadata={"ticket": str(ticket.pk), "filename": "a.jpg"},
        upload_checksum=True,
    )
    uploader.upload(stop_at=CHUNK)

    chunk = content[CHUNK : 2 * CHUNK]
    wrong = base64.b64encode(hashlib.sha256(chunk + b"!").digest()).decode()
    response = requests.patch(
        uploader.url,
        data=chunk,
        headers={
            **headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(CHUNK),
            "Upload-Checksum": f"sha256 {wrong}",
        },
        timeout=10,
    )
    assert response.status_code == 460
    assert response.json()["code"] == "checksum_mismatch"
    head = requests.head(uploader.url, headers=headers, timeout=10)
    assert head.headers["Upload-Offset"] == str(CHUNK)
    assert head.headers["Cache-Control"] == "no-store"
    assert storage.partial_path(Upload.objects.get().pk).read_bytes() == content[:CHUNK]

    # tuspy itself resumes and finishes with correct checksums.
    uploader.offset = uploader.get_offset()
    uploader.upload()
    assert Attachment.objects.get().sha256 == hashlib.sha256(content).hexdigest()


def test_tuspy_sees_a_refusal_with_its_message(live_server, alice, ticket):
    uploader = Sha256Uploader(
        file_stream=io.BytesIO(samples.elf_executable()),
        client=TusClient(f"{live_server.url}/api/v1/uploads/", headers=session_headers(alice)),
        metadata={"ticket": str(ticket.pk), "filename": "photo.jpg"},
        upload_checksum=True,
    )
    with pytest.raises(TusUploadFailed) as failed:
        uploader.upload()
    assert failed.value.status_code == 415
    assert b"Programs and scripts cannot be sent." in failed.value.response_content
    assert not Attachment.objects.exists()
    assert not storage.partial_path(Upload.objects.get().pk).exists()
