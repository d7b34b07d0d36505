"""OpenAPI: every operation documents the error body for the statuses it can answer with."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from refundchat.api.errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid input, or refused by a business rule (`code` tells which).",
    "401": "No credentials, or a token that is not valid.",
    "403": "Authenticated, but this role, permission or token scope may not do this.",
    "404": "No such object, or one the caller may not see.",
    "405": "Method not allowed.",
    "406": "The Accept header asks for a format the API does not speak.",
    "409": "Not possible in the object's current state.",
    "415": "Unsupported request body format (send JSON).",
    "429": "Too many requests: wait `retry_after` seconds.",
}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "405", "406", "429"]
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["409", "415"]
        for code in codes:
            responses.setdefault(code, self._get_response_for_code(ErrorSerializer, code, direction=direction))
            responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        return responses
