"""Small response-header middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# Calls (messaging/calls.py) and voice notes use the camera and the microphone of pages from this origin;
# nothing else, and no embedded frame, may ask for them.
PERMISSIONS_POLICY = "camera=(self), microphone=(self), display-capture=(), geolocation=()"


def permissions_policy(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response

    return middleware
