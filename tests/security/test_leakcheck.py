"""The leak check (tests/security/leakcheck.py) catches what it is for, and passes what is fine."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.test import Client
from django.urls import path

from tests.security.leakcheck import LeakFound, check_response

pytestmark = pytest.mark.django_db


def response(body: str = "", **headers: str) -> HttpResponse:
    answer = HttpResponse(body)
    for name, value in headers.items():
        answer[name] = value
    answer.request = {"PATH_INFO": "/x/"}  # type: ignore[attr-defined]
    return answer


@pytest.mark.parametrize(
    "body",
    [
        "<p>Card 6228480012345671</p>",
        f"<pre>{settings.SECRET_KEY}</pre>",
        f"key={settings.REFUNDCHAT_FIELD_KEYS[0]}",
        '<a href="/orders/?sessionid=abc">',
        '<img src="/x/SESSIONKEY123/">',
    ],
)
def test_a_leak_in_the_body_is_caught(body: str) -> None:
    with pytest.raises(LeakFound):
        check_response(response(body), session_key="SESSIONKEY123")


def test_a_session_id_in_a_redirect_is_caught() -> None:
    redirect = HttpResponseRedirect("/login/?sid=SESSIONKEY123")
    redirect.request = {"PATH_INFO": "/x/"}  # type: ignore[attr-defined]
    with pytest.raises(LeakFound):
        check_response(redirect, session_key="SESSIONKEY123")


def test_masked_numbers_and_ordinary_pages_pass() -> None:
    check_response(response("<p>622848******5671</p>"), session_key="SESSIONKEY123")


def leaky_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"<p>{settings.SECRET_KEY}</p>")


urlpatterns = [path("leaky/", leaky_view)]


@pytest.mark.urls("tests.security.test_leakcheck")
def test_the_fixture_is_on_for_every_test() -> None:
    """A view that leaks fails the test that calls it, through the plain test client."""
    with pytest.raises(LeakFound):
        Client().get("/leaky/")


@pytest.mark.allow_leak
@pytest.mark.urls("tests.security.test_leakcheck")
def test_a_test_may_allow_a_leak_it_is_about() -> None:
    assert Client().get("/leaky/").status_code == 200
