"""Helpers for the upload tests: a ticket, a tus-speaking test client, and files."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from tests import factories

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"


def metadata_header(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


class TusClient:
    """Django's test client speaking tus: real views, middleware and services, no network."""

    def __init__(self, client: Client, *, language: str = "en") -> None:
        self.client = client
        self.language = language

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {**TUS, "Accept-Language": self.language, **(extra or {})}

    def create(self, *, ticket: Any, length: int, filename: str = "photo.jpg", body: bytes | None = None, **extra: str):
        headers = self._headers(
            {
                "Upload-Length": str(length),
                "Upload-Metadata": metadata_header(ticket=str(ticket.pk), filename=filename, filetype="image/jpeg"),
                **extra,
            }
        )
        if body is None:
            return self.client.post("/api/v1/uploads/", headers=headers)
        return self.client.post("/api/v1/uploads/", data=body, content_type=OFFSET_STREAM, headers=headers)

    def patch(self, location: str, data: bytes, *, offset: int, **extra: str):
        headers = self._headers({"Upload-Offset": str(offset), **extra})
        return self.client.generic("PATCH", location, data=data, content_type=OFFSET_STREAM, headers=headers)

    def head(self, location: str, **extra: str):
        return self.client.head(location, headers=self._headers(extra))

    def delete(self, location: str, **extra: str):
        return self.client.delete(location, headers=self._headers(extra))

    def upload(self, *, ticket: Any, content: bytes, filename: str = "photo.jpg"):
        """Create and send in one PATCH; returns the PATCH response (or the POST's on refusal)."""
        created = self.create(ticket=ticket, length=len(content), filename=filename)
        if created.status_code != 201:
            return created
        return self.patch(created["Location"], content, offset=0)


@pytest.fixture
def alice():
    return factories.buyer(username="alice")


@pytest.fixture
def ticket(alice):
    return factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))


def tus_client_for(user: Any, *, language: str = "en") -> TusClient:
    client = Client()
    client.force_login(user)
    return TusClient(client, language=language)


@pytest.fixture
def tus(alice) -> TusClient:
    return tus_client_for(alice)
