from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.utils import translation

from messaging import realtime

# Every HTTP response of every test is checked for leaked secrets (tests/security/leakcheck.py).
from tests.security.leakcheck import leak_check  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--screenshots", action="store_true", help="save screenshots of key pages to docs/screenshots/")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_leak: this test may see a secret in a response (leakcheck)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last: the fast tests give their answer first."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture(scope="session", autouse=True)
def _chat_write_connections_closed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The chat-write threads keep their connections open; close them before the test database is dropped."""
    yield
    with django_db_blocker.unblock():
        realtime.close_chat_write_connections()


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Service-level tests read English messages; pages and sockets pick their own language."""
    with translation.override("en"):
        yield


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every (group, frame) a service hands to the channel layer after commit, in order."""
    sent: list[tuple[str, dict[str, Any]]] = []
    original = realtime._send_to_group

    def record(group: str, frame: dict[str, Any]) -> None:
        sent.append((group, frame))
        original(group, frame)

    monkeypatch.setattr(realtime, "_send_to_group", record)
    return sent


@pytest.fixture
def flush_channel_layer() -> Iterator[None]:
    """Empty the channel layer after the test, so groups and messages do not leak into the next."""
    yield
    layer = get_channel_layer()
    flush = getattr(layer, "flush", None)
    if flush is not None:
        from asgiref.sync import async_to_sync

        async_to_sync(flush)()
