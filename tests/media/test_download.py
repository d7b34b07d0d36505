"""The original goes out only through a permission-checked view, with Range for video seeking."""

from __future__ import annotations

import os
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from tests import factories
from tickets.roles import Role

pytestmark = pytest.mark.django_db

CONTENT = os.urandom(10_000)


@pytest.fixture
def attachment(ticket):
    return factories.stored_attachment(
        ticket=ticket, content=CONTENT, kind="video", content_type="video/mp4", extension=".mp4"
    )


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(attachment) -> str:
    return f"/attachments/{attachment.pk}/original"


def test_buyer_gets_the_original_with_safe_headers(alice, attachment):
    response = logged_in(alice).get(url(attachment))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Type"] == "video/mp4"
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == f'inline; filename="{attachment.ticket.number}-{attachment.pk}.mp4"'
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["ETag"] == f'"{attachment.sha256}"'
    download = logged_in(alice).get(url(attachment), {"download": "1"})
    assert download["Content-Disposition"].startswith("attachment;")


def test_range_request_returns_206_with_exactly_those_bytes(alice, attachment):
    client = logged_in(alice)
    response = client.get(url(attachment), headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert response["Content-Length"] == "100"
    assert b"".join(response.streaming_content) == CONTENT[100:200]

    open_ended = client.get(url(attachment), headers={"Range": "bytes=9990-"})
    assert open_ended.status_code == 206
    assert b"".join(open_ended.streaming_content) == CONTENT[9990:]

    suffix = client.get(url(attachment), headers={"Range": "bytes=-5"})
    assert b"".join(suffix.streaming_content) == CONTENT[-5:]
    assert suffix["Content-Range"] == f"bytes {len(CONTENT) - 5}-{len(CONTENT) - 1}/{len(CONTENT)}"

    past_the_end = client.get(url(attachment), headers={"Range": "bytes=10000-"})
    assert past_the_end.status_code == 416
    assert past_the_end["Content-Range"] == f"bytes */{len(CONTENT)}"

    stale = client.get(url(attachment), headers={"Range": "bytes=0-9", "If-Range": '"older"'})
    assert stale.status_code == 200


def test_range_under_asgi_streams_asynchronously(alice, attachment):
    """Under Daphne a synchronous iterator would be read whole into memory first; ours is async."""

    async def fetch() -> tuple[int, bool, bytes]:
        client = AsyncClient()
        await client.aforce_login(alice)
        response: Any = await client.get(url(attachment), headers={"Range": "bytes=5000-5999"})
        body = b"".join([chunk async for chunk in response.streaming_content])
        return response.status_code, response.is_async, body

    assert async_to_sync(fetch)() == (206, True, CONTENT[5000:6000])


def test_another_buyer_gets_404(attachment):
    mallory = factories.buyer(username="mallory")
    assert logged_in(mallory).get(url(attachment)).status_code == 404
    assert logged_in(mallory).get(url(attachment), headers={"Range": "bytes=0-1"}).status_code == 404


def test_console_staff_may_fetch_it(attachment):
    for role in (Role.AGENT, Role.FINANCE):
        assert logged_in(factories.staff(role)).get(url(attachment)).status_code == 200


def test_anonymous_is_sent_to_log_in(attachment):
    response = Client().get(url(attachment))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_missing_attachment_is_404(alice):
    assert logged_in(alice).get("/attachments/999999/original").status_code == 404
