"""One error body for every failed API request: {"code", "message"[, "fields"][, "retry_after"]}.

`code` is stable and machine-readable; `message` is in the request's language (zh-hans unless the client
asks for English with Accept-Language). Business refusals of the services (refundchat.errors.Refused)
keep their own codes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from refundchat.errors import Refused

# Service refusal codes that are not "bad input" (400).
REFUSAL_STATUS: dict[str, int] = {
    "not_permitted": status.HTTP_403_FORBIDDEN,
    "not_allowed": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
    "ticket_not_found": status.HTTP_404_NOT_FOUND,
    "wrong_state": status.HTTP_409_CONFLICT,
    "closed": status.HTTP_409_CONFLICT,
    "unchanged": status.HTTP_409_CONFLICT,
    "rate_limited": status.HTTP_429_TOO_MANY_REQUESTS,
}

# DRF's own codes, renamed where the default says less than it could.
API_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class ErrorSerializer(serializers.Serializer[Any]):
    """The body of every 4xx answer."""

    code = serializers.CharField(help_text="Machine-readable, stable: what went wrong.")
    message = serializers.CharField(help_text="For people, in the request's language (zh-hans or en).")
    retry_after = serializers.FloatField(required=False, help_text="Seconds to wait before trying again (429).")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "fields" would shadow Serializer.fields as a class attribute.
        return {
            **super().get_fields(),
            "fields": serializers.DictField(
                required=False,
                help_text="Validation errors by field name: a list of {code, message} (nested for nested fields).",
            ),
        }


class ServiceRefused(exceptions.APIException):
    """A Refused from a service, as an API error with its code."""

    def __init__(self, refused: Refused) -> None:
        self.status_code = REFUSAL_STATUS.get(refused.code, status.HTTP_400_BAD_REQUEST)
        super().__init__(detail=refused.message, code=refused.code)
        self.retry_after: float | None = getattr(refused, "retry_after", None)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Refused):
        exc = ServiceRefused(exc)
    elif isinstance(exc, Http404 | ObjectDoesNotExist):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response  # not an API error: a 500, logged as such
    body: dict[str, Any] = {"code": _code(exc), "message": _message(exc)}
    if isinstance(exc, exceptions.ValidationError):
        body["fields"] = exc.get_full_details() if isinstance(exc.detail, dict) else {}
        body["message"] = _("The request has invalid fields.") if body["fields"] else body["message"]
    retry_after = getattr(exc, "wait", None) or getattr(exc, "retry_after", None)
    if exc.status_code == status.HTTP_429_TOO_MANY_REQUESTS and retry_after is not None:
        body["retry_after"] = float(retry_after)
        response["Retry-After"] = str(max(1, round(retry_after)))
    response.data = body
    return response


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, ServiceRefused):
        codes = exc.get_codes()
        return codes if isinstance(codes, str) else "refused"
    for klass, code in API_CODES.items():
        if isinstance(exc, klass):
            return code
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _message(exc: exceptions.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list) and detail:
        return str(detail[0])
    if isinstance(detail, dict):
        return _("The request has invalid fields.")
    return str(detail)
