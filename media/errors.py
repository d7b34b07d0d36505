"""Why an upload request is refused: an HTTP status for tus clients, a code for code, a message for people."""

from __future__ import annotations

from refundchat.errors import Refused


class UploadError(Refused):
    """A refused request. Nothing it was about is left half-written.

    `status` is what the tus client sees (4xx, or tus' own 460), `code` is stable and machine-readable,
    `message` is translated into the requester's language for the chat composer to show.
    """

    def __init__(self, status: int, code: str, message: str, *, offset: int | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        # The upload's offset after the refusal, when the upload still exists (tus clients resume from it).
        self.offset = offset


# Status codes, named.
BAD_REQUEST = 400
FORBIDDEN = 403
NOT_FOUND = 404
CONFLICT = 409
GONE = 410
PRECONDITION_FAILED = 412
TOO_LARGE = 413
UNSUPPORTED_MEDIA_TYPE = 415
UNPROCESSABLE = 422
LOCKED = 423
TOO_MANY_REQUESTS = 429
CHECKSUM_MISMATCH = 460
