"""The tus 1.0.0 wire format: header parsing and the headers every response carries.

Spec: https://tus.io/protocols/resumable-upload (core, creation, creation-with-upload, expiration,
checksum, termination).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.http import http_date
from django.utils.translation import gettext as _

from media import errors
from media.errors import UploadError

if TYPE_CHECKING:
    from hashlib import _Hash

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# sha1 is the algorithm the spec requires every server to accept; sha256 is the one we recommend.
CHECKSUM_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
METADATA_KEY = re.compile(r"^[!-~]+$")  # printable ASCII, no spaces (and no commas, checked apart)
MAX_METADATA_HEADER = 4096
METHODS = ("OPTIONS", "HEAD", "POST", "PATCH", "DELETE")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def new_hasher(self) -> _Hash:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def effective_method(request: HttpRequest) -> str:
    """The method, or X-HTTP-Method-Override for clients that cannot send PATCH or DELETE.

    The override is honoured only on POST, which Django's CSRF middleware has already checked:
    a GET turned into a PATCH would otherwise skip the CSRF check.
    """
    method = (request.method or "").upper()
    override = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
    if override and method == "POST":
        if override not in METHODS:
            raise UploadError(errors.BAD_REQUEST, "bad_method", _("This request method is not supported."))
        return override
    return method


def check_version(request: HttpRequest) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise UploadError(
            errors.PRECONDITION_FAILED,
            "unsupported_version",
            _("This upload client speaks a version of the tus protocol the server does not support."),
        )


def parse_non_negative(request: HttpRequest, header: str, *, required: bool = True) -> int | None:
    raw = request.headers.get(header)
    if raw is None:
        if required:
            raise UploadError(
                errors.BAD_REQUEST, "bad_header", _("The header %(header)s is missing.") % {"header": header}
            )
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 19:
        raise UploadError(
            errors.BAD_REQUEST, "bad_header", _("The header %(header)s is not a valid number.") % {"header": header}
        )
    return int(raw)


def parse_metadata(raw: str) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs; values must be UTF-8 text."""
    invalid = UploadError(errors.BAD_REQUEST, "bad_metadata", _("The upload's metadata is not valid."))
    if len(raw) > MAX_METADATA_HEADER:
        raise invalid
    metadata: dict[str, str] = {}
    for pair in raw.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _space, value = pair.partition(" ")
        if not METADATA_KEY.match(key) or key in metadata:
            raise invalid
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise invalid from error
        if any(ord(char) < 32 and char != "\t" for char in decoded):
            raise invalid
        metadata[key] = decoded
    return metadata


def encode_metadata(metadata: dict[str, str]) -> str:
    pairs = []
    for key, value in metadata.items():
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        pairs.append(f"{key} {encoded}" if encoded else key)
    return ",".join(pairs)


def parse_checksum(request: HttpRequest) -> Checksum | None:
    raw = request.headers.get("Upload-Checksum")
    if raw is None:
        return None
    algorithm, _space, encoded = raw.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise UploadError(
            errors.BAD_REQUEST,
            "bad_checksum_algorithm",
            _("The checksum algorithm is not supported; use sha256 or sha1."),
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as error:
        raise UploadError(errors.BAD_REQUEST, "bad_checksum", _("The checksum is not valid Base64.")) from error
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise UploadError(errors.BAD_REQUEST, "bad_checksum", _("The checksum has the wrong length."))
    return Checksum(algorithm=algorithm, digest=digest)


def has_body(request: HttpRequest) -> bool:
    return request.content_type == OFFSET_CONTENT_TYPE


def check_patch_content_type(request: HttpRequest) -> None:
    if not has_body(request):
        raise UploadError(
            errors.UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            _("Upload data must be sent as %(type)s.") % {"type": OFFSET_CONTENT_TYPE},
        )


def content_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError as error:
        raise UploadError(errors.BAD_REQUEST, "bad_header", _("The Content-Length is not valid.")) from error
    if value < 0:
        raise UploadError(errors.BAD_REQUEST, "bad_header", _("The Content-Length is not valid."))
    return value


def add_tus_headers(response: HttpResponse) -> HttpResponse:
    """Headers on every tus response, errors included."""
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def add_capabilities(response: HttpResponse) -> HttpResponse:
    response["Tus-Version"] = TUS_VERSION
    response["Tus-Extension"] = TUS_EXTENSIONS
    response["Tus-Max-Size"] = str(settings.REFUNDCHAT_UPLOAD_MAX_SIZE)
    response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
    return response


def expires_header(expires_at: datetime) -> str:
    return http_date(expires_at.timestamp())
