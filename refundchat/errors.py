"""The one shape of a refused request, shared by every app's services."""

from __future__ import annotations


class Refused(Exception):
    """A request refused by a business rule; nothing was changed.

    `code` is stable and machine-readable (socket error frames, API bodies, tests); `message` is for
    people, already in their language.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
