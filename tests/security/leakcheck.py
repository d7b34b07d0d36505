"""Every HTTP response of the suite checked for leaked secrets (docs/security.md, "Attacks tried in CI").

tests/conftest.py turns this on for every test: a response from Django's test client (and DRF's, its subclass)
that carries a payout number of the test data in clear, a field encryption key, the SECRET_KEY, or the session
id in a URL fails the test that asked for it. A test that must see one (the payout step itself) says so with
@pytest.mark.allow_leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

# The payout account numbers the suite's tests use (tests/tickets/test_privacy.py, tests/refundchat/test_crypto.py,
# tests/security/...): their clear form must never be in a response; the masked form (622848******5671) may.
KNOWN_PAYOUT_NUMBERS = (
    "6228480012345671",
    "6228480012345672",
    "6222021234567890128",
    "6222 0212 3456 7890 128",
    "4111111111111111",
    "501234567896",
)
_URL_ATTRIBUTE = re.compile(rb"""(?:href|src|action|content)\s*=\s*["']([^"']*)["']""", re.I)


class LeakFound(AssertionError):
    pass


def secrets() -> dict[str, str]:
    found = {"SECRET_KEY": settings.SECRET_KEY}
    for n, key in enumerate(getattr(settings, "REFUNDCHAT_FIELD_KEYS", [])):
        found[f"REFUNDCHAT_FIELD_KEYS[{n}]"] = key
    for number in KNOWN_PAYOUT_NUMBERS:
        found[f"payout number {number}"] = number
    return found


def check_response(response: Any, *, session_key: str | None) -> None:
    """Raise LeakFound when the response shows a secret."""
    if getattr(response, "streaming", False):
        return  # file downloads: the evidence itself, checked by the media tests
    body = bytes(response.content)
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items() if name.lower() != "set-cookie")
    for what, secret in secrets().items():
        if secret and (secret.encode() in body or secret in headers):
            raise LeakFound(f"{response.request.get('PATH_INFO', '?')} shows {what}")
    location = response.headers.get("Location", "")
    urls = [location.encode(), *_URL_ATTRIBUTE.findall(body)]
    for url in urls:
        if b"sessionid=" in url.lower() or (session_key and session_key.encode() in url):
            raise LeakFound(f"{response.request.get('PATH_INFO', '?')} puts the session id in a URL: {url[:80]!r}")


def _session_key(client: Client) -> str | None:
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return cookie.value if cookie is not None else None


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.node.get_closest_marker("allow_leak") is not None:
        yield
        return
    original: Callable[..., Any] = Client.request

    def checked(self: Client, **kwargs: Any) -> Any:
        response = original(self, **kwargs)
        check_response(response, session_key=_session_key(self))
        return response

    monkeypatch.setattr(Client, "request", checked)
    yield
