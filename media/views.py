"""HTTP for evidence: the tus 1.0.0 endpoint, the permission-checked download of originals and derived
files, and the retry of a failed processing.

Views only translate HTTP to service calls and back; media.services holds the rules.
CSRF: Django's CSRF middleware stays on. A tus client sends the CSRF token in the `X-CSRFToken`
header (tus-js-client: `headers: {"X-CSRFToken": token}`), which Django accepts for POST, PATCH
and DELETE; see docs/uploads.md.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from media import errors, processing, selectors, services, tus
from media.errors import UploadError
from media.models import DERIVED_FIELDS, Attachment, Upload, UploadStatus
from tickets import access_log
from tickets.models import AccessAction
from tickets.roles import AuthenticatedRequest

DOWNLOAD_CHUNK = 256 * 1024
RANGE_HEADER = re.compile(r"^bytes=(\d*)-(\d*)$")
# A range that starts past the end of the file (416).
UNSATISFIABLE = (-1, -1)
# The sandbox keeps a served file from running anything even if a browser rendered it as a page.
SANDBOX_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


# --- tus -------------------------------------------------------------------------------------------


def upload_collection(request: HttpRequest) -> HttpResponse:
    """`/api/v1/uploads/`: OPTIONS (capabilities) and POST (creation, creation-with-upload)."""
    return _tus(request, {"POST": _create}, upload_id=None)


def upload_resource(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    """`/api/v1/uploads/<id>`: HEAD (offset), PATCH (append) and DELETE (termination)."""
    return _tus(request, {"HEAD": _head, "PATCH": _patch, "DELETE": _delete}, upload_id=upload_id)


Handler = Callable[[HttpRequest, "uuid.UUID | None"], HttpResponse]


def _tus(request: HttpRequest, handlers: dict[str, Handler], *, upload_id: uuid.UUID | None) -> HttpResponse:
    try:
        method = tus.effective_method(request)
        if method == "OPTIONS":
            response = tus.add_capabilities(HttpResponse(status=204))
        elif method not in handlers:
            response = _error(UploadError(405, "bad_method", _("This request method is not supported.")))
            response["Allow"] = ", ".join(["OPTIONS", *handlers])
        else:
            tus.check_version(request)
            if not request.user.is_authenticated:
                raise UploadError(errors.FORBIDDEN, "not_authenticated", _("Log in to send files."))
            response = handlers[method](request, upload_id)
    except UploadError as error:
        response = _error(error)
        if error.status == errors.PRECONDITION_FAILED:
            response["Tus-Version"] = tus.TUS_VERSION
    return tus.add_tus_headers(response)


def _error(error: UploadError) -> HttpResponse:
    response = JsonResponse(
        {"code": error.code, "message": error.message}, status=error.status, json_dumps_params={"ensure_ascii": False}
    )
    if error.offset is not None:
        response["Upload-Offset"] = str(error.offset)
    return response


def _user(request: HttpRequest) -> AuthenticatedRequest:
    assert request.user.is_authenticated
    return request  # type: ignore[return-value]


def _create(request: HttpRequest, _upload_id: uuid.UUID | None) -> HttpResponse:
    if request.headers.get("Upload-Defer-Length") is not None or request.headers.get("Upload-Concat") is not None:
        raise UploadError(
            errors.BAD_REQUEST,
            "not_supported",
            _("The size of the file must be given when the upload starts (Upload-Length)."),
        )
    length = tus.parse_non_negative(request, "Upload-Length")
    assert length is not None
    metadata = tus.parse_metadata(request.headers.get("Upload-Metadata", ""))
    with_body = tus.has_body(request)
    checksum = tus.parse_checksum(request) if with_body else None
    body_length = tus.content_length(request) if with_body else 0
    upload = services.create_upload(uploader=_user(request).user, length=length, metadata=metadata)
    location = request.build_absolute_uri(reverse("media:upload", args=[upload.pk]))
    attachment = None
    if with_body and body_length != 0:
        try:
            written = services.write_chunk(
                upload_id=upload.pk,
                user=_user(request).user,
                offset=0,
                stream=request,
                content_length=body_length,
                checksum=checksum,
            )
        except UploadError as error:
            response = _error(error)
            response["Location"] = location
            return response
        upload, attachment = written.upload, written.attachment
    response = HttpResponse(status=201)
    response["Location"] = location
    if with_body:
        response["Upload-Offset"] = str(upload.offset)
    _describe(response, upload, attachment)
    return response


def _head(request: HttpRequest, upload_id: uuid.UUID | None) -> HttpResponse:
    assert upload_id is not None
    upload = selectors.get_own_upload(user=_user(request).user, upload_id=upload_id)
    services.check_writable(upload=upload, now=timezone.now())
    response = HttpResponse(status=200)
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.length)
    if upload.metadata:
        response["Upload-Metadata"] = tus.encode_metadata(upload.metadata)
    attachment = selectors.attachment_for_upload(upload=upload) if upload.status == UploadStatus.COMPLETE else None
    _describe(response, upload, attachment)
    return response


def _patch(request: HttpRequest, upload_id: uuid.UUID | None) -> HttpResponse:
    assert upload_id is not None
    tus.check_patch_content_type(request)
    offset = tus.parse_non_negative(request, "Upload-Offset")
    assert offset is not None
    written = services.write_chunk(
        upload_id=upload_id,
        user=_user(request).user,
        offset=offset,
        stream=request,
        content_length=tus.content_length(request),
        checksum=tus.parse_checksum(request),
    )
    response = HttpResponse(status=204)
    response["Upload-Offset"] = str(written.upload.offset)
    _describe(response, written.upload, written.attachment)
    return response


def _delete(request: HttpRequest, upload_id: uuid.UUID | None) -> HttpResponse:
    assert upload_id is not None
    services.terminate_upload(upload_id=upload_id, user=_user(request).user)
    return HttpResponse(status=204)


def _describe(response: HttpResponse, upload: Upload, attachment: Attachment | None) -> None:
    if upload.status == UploadStatus.RECEIVING:
        response["Upload-Expires"] = tus.expires_header(upload.expires_at)
    if attachment is not None:
        # Where the kept original is: the chat will attach it to a message by this id.
        response["RefundChat-Attachment-Id"] = str(attachment.pk)
        response["RefundChat-Attachment-Url"] = reverse("media:attachment_file", args=[attachment.pk])


# --- Download --------------------------------------------------------------------------------------


# What each derived file is, by the extension media.processing gives it.
DERIVED_CONTENT_TYPES = {".webp": "image/webp", ".jpg": "image/jpeg", ".png": "image/png", ".m4a": "audio/mp4"}
VARIANTS = frozenset({"original", *DERIVED_FIELDS})


@dataclass(frozen=True)
class Served:
    """One stored file of an attachment, and how to describe it."""

    file: FieldFile
    size: int
    content_type: str
    etag: str
    modified: float
    download_name: str


@login_required
@require_http_methods(["GET", "HEAD"])
def attachment_file(
    request: AuthenticatedRequest, attachment_id: int, variant: str = "original"
) -> HttpResponse | StreamingHttpResponse:
    """The original or a derived file (thumbnail, shareable copy, poster, playable copy), for the
    ticket's buyer and console staff only; Range requests for video seeking."""
    attachment = selectors.viewable_attachment(user=request.user, attachment_id=attachment_id)
    if variant not in VARIANTS:
        raise Http404("No such variant")
    served = _served(attachment, variant)
    _log_staff_download(request, attachment=attachment, variant=variant)
    size = served.size
    byte_range = _requested_range(request, size=size, etag=served.etag)
    if byte_range == UNSATISFIABLE:
        unsatisfiable = HttpResponse(status=416)
        unsatisfiable["Content-Range"] = f"bytes */{size}"
        return unsatisfiable
    start, end = byte_range or (0, size - 1)
    length = end - start + 1
    status = 206 if byte_range else 200
    response: HttpResponse | StreamingHttpResponse
    if request.method == "HEAD":
        response = HttpResponse(status=status)
    else:
        response = StreamingHttpResponse(_file_chunks(request, served.file, start=start, length=length), status=status)
    if byte_range:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Content-Type"] = served.content_type
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = served.etag
    response["Last-Modified"] = http_date(served.modified)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{served.download_name}"'
    if served.content_type != "application/pdf":
        # Chromium refuses to show a PDF in a sandboxed document; PDFs with active content are refused.
        response["Content-Security-Policy"] = SANDBOX_CSP
    return response


def _log_staff_download(request: AuthenticatedRequest, *, attachment: Attachment, variant: str) -> None:
    """Staff opening an original or downloading a file is personal data access (issue #9). Thumbnails shown
    in pages are not logged one by one, nor the later Range requests of one video being played."""
    if not access_log.is_staff_reader(request.user, buyer_id=attachment.ticket.buyer_id):
        return
    if variant != "original" and not request.GET.get("download"):
        return
    if not request.headers.get("Range", "bytes=0-").startswith("bytes=0-") or request.method == "HEAD":
        return
    access_log.record_access(
        actor=request.user,
        action=AccessAction.ATTACHMENT_DOWNLOADED,
        ticket_id=attachment.ticket_id,
        target=f"attachment:{attachment.pk}:{variant}",
    )


def _served(attachment: Attachment, variant: str) -> Served:
    if variant == "original":
        return Served(
            file=attachment.original,
            size=attachment.size,
            content_type=attachment.content_type,
            etag=f'"{attachment.sha256}"',
            modified=attachment.created_at.timestamp(),
            download_name=_download_name(attachment, name=str(attachment.original.name)),
        )
    derived: FieldFile = getattr(attachment, variant)
    if not derived:
        raise Http404("Not derived (yet)")
    name = str(derived.name)
    extension = Path(name).suffix
    content_type = DERIVED_CONTENT_TYPES.get(extension, f"{attachment.kind}/mp4")
    try:
        stat = os.stat(derived.path)
    except FileNotFoundError as missing:
        raise Http404("Derived file missing") from missing
    return Served(
        file=derived,
        size=stat.st_size,
        content_type=content_type,
        # A retry may write the file again: its size and time tell the versions apart.
        etag=f'"{attachment.sha256[:16]}-{variant}-{stat.st_size}-{stat.st_mtime_ns}"',
        modified=stat.st_mtime,
        download_name=_download_name(attachment, name=name, variant=variant),
    )


@login_required
@require_http_methods(["POST"])
def attachment_retry(request: AuthenticatedRequest, attachment_id: int) -> JsonResponse:
    """Run a failed attachment's processing again (the chat's retry button)."""
    attachment = processing.retry_processing(attachment_id=attachment_id, user=request.user)
    return JsonResponse(
        selectors.attachment_payload(attachment=attachment), status=202, json_dumps_params={"ensure_ascii": False}
    )


def _download_name(attachment: Attachment, *, name: str, variant: str = "original") -> str:
    """A safe ASCII name the server makes up: ticket number, attachment id, variant, extension."""
    extension = name.rsplit(".", 1)[-1] if "." in name else "bin"
    suffix = "" if variant == "original" else f"-{variant.replace('_', '-')}"
    return f"{attachment.ticket.number}-{attachment.pk}{suffix}.{extension}"


def _requested_range(request: HttpRequest, *, size: int, etag: str) -> tuple[int, int] | None:
    """One byte range (start, end inclusive), UNSATISFIABLE, or None for the whole file.

    Several ranges, a malformed header or a stale If-Range get the whole file (RFC 9110 allows it).
    """
    header = request.headers.get("Range", "").strip()
    if not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    match = RANGE_HEADER.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, end


def _file_chunks(
    request: HttpRequest, stored: FieldFile, *, start: int, length: int
) -> Iterator[bytes] | AsyncIterator[bytes]:
    """The bytes, read a chunk at a time. Under ASGI (Daphne) an async iterator: a sync one would
    make Django read the whole file into memory before sending it."""
    if isinstance(request, ASGIRequest):
        return _async_chunks(stored, start=start, length=length)
    return _sync_chunks(stored, start=start, length=length)


def _sync_chunks(stored: FieldFile, *, start: int, length: int) -> Iterator[bytes]:
    with stored.storage.open(str(stored.name), "rb") as fileobj:
        fileobj.seek(start)
        remaining = length
        while remaining > 0:
            data = fileobj.read(min(DOWNLOAD_CHUNK, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


async def _async_chunks(stored: FieldFile, *, start: int, length: int) -> AsyncIterator[bytes]:
    chunks = _sync_chunks(stored, start=start, length=length)
    read = sync_to_async(lambda: next(chunks, b""), thread_sensitive=False)
    while data := await read():
        yield data
