"""Writes on uploads and attachments: create, append (streamed), complete, refuse, terminate, sweep.

One PATCH at a time writes into an upload's partial file. It takes a *writer lease* on the Upload
row (row lock, short transaction), streams the body to disk in 64 KiB reads outside any transaction
(a body can take minutes on a phone network; holding a transaction that long would stall SQLite's
single writer in `make run` and idle a PostgreSQL connection), then commits the new offset under the
row lock again, checking the lease is still its own. A crashed writer's lease runs out by itself,
and bytes past the committed offset are cut off by the next writer: the database offset is the truth.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from media import errors, processing, selectors, sniffing, storage, validation
from media.errors import UploadError
from media.models import DERIVED_FIELDS, Attachment, Upload, UploadStatus
from media.tus import Checksum
from refundchat import rate_limits
from tickets.models import RefundTicket

logger = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
LEASE_DURATION = timedelta(minutes=2)
LEASE_RENEW_AFTER = 30.0  # seconds of streaming between two renewals
# A partial file with no upload row (a crash between the two) is removed after this long.
ORPHAN_PARTIAL_AGE = timedelta(hours=1)
SWEEP_BATCH = 500


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Written:
    upload: Upload
    # Set when this write completed the upload and its content passed validation.
    attachment: Attachment | None = None


# --- Create ----------------------------------------------------------------------------------------


def clean_filename(raw: str) -> str:
    """A name to show people: no directories, no control characters, at most 255 characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable())
    return name.strip()[:255]


def check_metadata(*, metadata: dict[str, str]) -> int:
    """The ticket id from Upload-Metadata, which must also name the file."""
    raw_ticket = metadata.get("ticket", "").strip()
    if not raw_ticket.isdigit() or len(raw_ticket) > 18:
        raise UploadError(
            errors.BAD_REQUEST, "bad_metadata", _("The upload's metadata must name the ticket it belongs to.")
        )
    if "filename" not in metadata:
        raise UploadError(errors.BAD_REQUEST, "bad_metadata", _("The upload's metadata must name the file."))
    return int(raw_ticket)


def create_upload(*, uploader: User, length: int, metadata: dict[str, str], now: datetime | None = None) -> Upload:
    """Open an upload of `length` bytes to a ticket the uploader may write in, within the ticket's limits."""
    now = now or timezone.now()
    validation.check_upload_length(length=length)
    ticket_id = check_metadata(metadata=metadata)
    rate_limits.do_take_upload_slot(user_id=uploader.pk)
    with transaction.atomic():
        # The ticket's row lock serialises concurrent creations, so two cannot both take the last slot.
        ticket = RefundTicket.objects.select_for_update(of=("self",)).filter(pk=ticket_id).first()
        ticket = selectors.check_may_upload(user=uploader, ticket=ticket)
        check_ticket_room(ticket_id=ticket.pk, length=length, now=now)
        return Upload.objects.create(
            ticket=ticket,
            uploader=uploader,
            length=length,
            metadata=metadata,
            filename=clean_filename(metadata.get("filename", "")),
            filetype=metadata.get("filetype", "").strip()[:100],
            expires_at=now + settings.REFUNDCHAT_UPLOAD_EXPIRY,
        )


def check_ticket_room(*, ticket_id: int, length: int, now: datetime) -> None:
    files, total = selectors.ticket_usage(ticket_id=ticket_id, now=now)
    max_files = settings.REFUNDCHAT_UPLOAD_TICKET_MAX_FILES
    if files >= max_files:
        raise UploadError(
            errors.UNPROCESSABLE,
            "ticket_full",
            _("This ticket already holds %(count)d files, the most it can take.") % {"count": max_files},
        )
    max_bytes = settings.REFUNDCHAT_UPLOAD_TICKET_MAX_BYTES
    if total + length > max_bytes:
        raise UploadError(
            errors.TOO_LARGE,
            "ticket_quota",
            _("This file does not fit: the files of one ticket can take at most %(limit)s in total.")
            % {"limit": validation.format_size(max_bytes)},
        )


# --- Append ----------------------------------------------------------------------------------------


def write_chunk(
    *,
    upload_id: uuid.UUID,
    user: User,
    offset: int,
    stream: Readable,
    content_length: int | None,
    checksum: Checksum | None,
    now: datetime | None = None,
) -> Written:
    """Append a PATCH body at `offset`, streaming; complete and validate the upload at its last byte.

    A checksum mismatch (or a body cut short while a checksum was promised) keeps nothing of the
    chunk: the file is cut back and the offset stays. Without a checksum, the bytes that did arrive
    are kept, as tus asks.
    """
    token = uuid.uuid4()
    upload = take_lease(
        upload_id=upload_id, user=user, offset=offset, content_length=content_length, token=token, now=now
    )
    if upload.status == UploadStatus.COMPLETE:
        return Written(upload=upload, attachment=selectors.attachment_for_upload(upload=upload))
    path = storage.partial_path(upload.pk)
    try:
        received = _stream_into(
            upload=upload, token=token, path=path, stream=stream, content_length=content_length, checksum=checksum
        )
        new_offset = upload.offset + received
        if new_offset == upload.length:
            return complete_upload(upload_id=upload.pk, token=token, path=path)
        advanced = advance_offset(
            upload_id=upload.pk, token=token, offset=new_offset, detected_kind=upload.detected_kind
        )
        return Written(upload=advanced)
    except UploadError as error:
        if error.code in REFUSALS_THAT_END_THE_UPLOAD:
            refuse_upload(upload_id=upload.pk, token=token, code=error.code)
        else:
            release_lease(upload_id=upload.pk, token=token)
        raise
    except BaseException:
        release_lease(upload_id=upload.pk, token=token)
        raise


# Content refusals end an upload for good; protocol errors (checksum, cut-off body) leave it resumable.
REFUSALS_THAT_END_THE_UPLOAD = frozenset(
    {
        "empty",
        "executable",
        "markup",
        "polyglot",
        "pdf_active_content",
        "damaged",
        "unsupported_type",
        "too_large",
        "too_many_pixels",
    }
)


def take_lease(
    *,
    upload_id: uuid.UUID,
    user: User,
    offset: int,
    content_length: int | None,
    token: uuid.UUID,
    now: datetime | None = None,
) -> Upload:
    """Check a PATCH against the upload under its row lock, and make this request its only writer."""
    now = now or timezone.now()
    with transaction.atomic():
        upload = Upload.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk=upload_id).first()
        upload = selectors.check_own_upload(user=user, upload=upload)
        check_writable(upload=upload, now=now)
        if offset != upload.offset:
            raise UploadError(
                errors.CONFLICT,
                "offset_mismatch",
                _("The upload is at byte %(offset)d, not at byte %(sent)d. Resume from the upload's offset.")
                % {"offset": upload.offset, "sent": offset},
                offset=upload.offset,
            )
        if content_length is not None and content_length > upload.length - upload.offset:
            raise UploadError(
                errors.BAD_REQUEST,
                "beyond_length",
                _("This data goes beyond the size declared for the upload."),
                offset=upload.offset,
            )
        if upload.status == UploadStatus.COMPLETE:
            return upload
        if upload.lease_expires_at is not None and upload.lease_expires_at > now:
            raise UploadError(
                errors.LOCKED,
                "busy",
                _("Another request is writing to this upload. Try again in a moment."),
                offset=upload.offset,
            )
        check_partial_file(upload=upload)
        upload.lease_token, upload.lease_expires_at = token, now + LEASE_DURATION
        upload.save(update_fields=["lease_token", "lease_expires_at"])
    return upload


def check_writable(*, upload: Upload, now: datetime) -> None:
    if upload.status == UploadStatus.REFUSED:
        raise UploadError(
            errors.GONE, "refused", _("This upload was refused and cannot be continued. Choose another file.")
        )
    if upload.status == UploadStatus.RECEIVING and upload.expires_at <= now:
        raise UploadError(errors.GONE, "expired", _("This upload has expired. Send the file again."))


def check_partial_file(*, upload: Upload) -> None:
    """The partial file must hold at least the committed bytes; a lost file cannot be resumed."""
    path = storage.partial_path(upload.pk)
    size = path.stat().st_size if path.exists() else 0
    if size < upload.offset:
        logger.error("Upload %s: partial file holds %d bytes, offset is %d", upload.pk, size, upload.offset)
        raise UploadError(errors.GONE, "lost", _("The data received so far was lost. Send the file again."))


def _stream_into(
    *,
    upload: Upload,
    token: uuid.UUID,
    path: Path,
    stream: Readable,
    content_length: int | None,
    checksum: Checksum | None,
) -> int:
    """Write the body after the committed offset; return how many bytes are kept."""
    remaining = upload.length - upload.offset
    wanted = remaining if content_length is None else content_length
    head_needed = min(sniffing.HEAD_BYTES, upload.length)
    hasher = checksum.new_hasher() if checksum else None
    received = 0
    renewed = time.monotonic()
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "r+b") as partial:
        # Bytes past the committed offset belong to a writer that died: they are not part of the upload.
        partial.truncate(upload.offset)
        partial.seek(upload.offset)
        while received < wanted:
            data = stream.read(min(READ_SIZE, wanted - received))
            if not data:
                break  # the client went away: keep what arrived (unless a checksum was promised)
            partial.write(data)
            if hasher is not None:
                hasher.update(data)
            received += len(data)
            if upload.offset < head_needed <= upload.offset + received:
                _check_head(upload=upload, partial=partial, head_needed=head_needed)
                partial.seek(upload.offset + received)
            if time.monotonic() - renewed > LEASE_RENEW_AFTER:
                renew_lease(upload_id=upload.pk, token=token)
                renewed = time.monotonic()
        if content_length is None and received == remaining and stream.read(1):
            partial.truncate(upload.offset)
            raise UploadError(
                errors.BAD_REQUEST,
                "beyond_length",
                _("This data goes beyond the size declared for the upload."),
                offset=upload.offset,
            )
        if hasher is not None and checksum is not None:
            if content_length is not None and received < content_length:
                partial.truncate(upload.offset)
                raise UploadError(
                    errors.BAD_REQUEST,
                    "incomplete_chunk",
                    _("The data was cut off before its checksum could be verified. Send it again."),
                    offset=upload.offset,
                )
            if hasher.digest() != checksum.digest:
                partial.truncate(upload.offset)
                raise UploadError(
                    errors.CHECKSUM_MISMATCH,
                    "checksum_mismatch",
                    _("The data was damaged on the way (checksum mismatch). Send it again."),
                    offset=upload.offset,
                )
        partial.flush()
        # The offset is committed next: the bytes it counts must be on disk first.
        os.fsync(partial.fileno())
    return received


def _check_head(*, upload: Upload, partial: BinaryIO, head_needed: int) -> None:
    """As soon as the first bytes are in: refuse a forbidden type, or a size over its kind's limit."""
    partial.seek(0)
    head = partial.read(head_needed)
    kinds = validation.check_head(head=head, length=upload.length)
    if len(kinds) == 1:
        (upload.detected_kind,) = kinds


def renew_lease(*, upload_id: uuid.UUID, token: uuid.UUID) -> None:
    """Extend this writer's lease; a compare-and-set on the token, so a lost lease is noticed."""
    renewed = Upload.objects.filter(pk=upload_id, lease_token=token).update(
        lease_expires_at=timezone.now() + LEASE_DURATION
    )
    if not renewed:
        raise UploadError(
            errors.LOCKED, "lease_lost", _("This upload was changed by another request. Check its offset and resume.")
        )


def _locked_leased_upload(*, upload_id: uuid.UUID, token: uuid.UUID) -> Upload:
    upload = Upload.objects.select_for_update(of=("self",)).filter(pk=upload_id).first()
    if upload is None or upload.lease_token != token:
        raise UploadError(
            errors.LOCKED, "lease_lost", _("This upload was changed by another request. Check its offset and resume.")
        )
    return upload


def release_lease(*, upload_id: uuid.UUID, token: uuid.UUID) -> None:
    with transaction.atomic():
        Upload.objects.filter(pk=upload_id, lease_token=token).update(lease_token=None, lease_expires_at=None)


def advance_offset(*, upload_id: uuid.UUID, token: uuid.UUID, offset: int, detected_kind: str = "") -> Upload:
    """Commit the bytes a PATCH kept, give the lease back, and push the expiry out."""
    with transaction.atomic():
        upload = _locked_leased_upload(upload_id=upload_id, token=token)
        upload.offset = offset
        upload.detected_kind = detected_kind or upload.detected_kind
        upload.expires_at = timezone.now() + settings.REFUNDCHAT_UPLOAD_EXPIRY
        upload.lease_token, upload.lease_expires_at = None, None
        upload.save(update_fields=["offset", "detected_kind", "expires_at", "lease_token", "lease_expires_at"])
    return upload


# --- Complete or refuse ----------------------------------------------------------------------------


class _PartialFile(File):
    """A complete partial file handed to the storage; a file-system storage moves it instead of copying."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.open("rb"), name=path.name)
        self._path = path

    def temporary_file_path(self) -> str:
        return str(self._path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fileobj:
        while chunk := fileobj.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def complete_upload(*, upload_id: uuid.UUID, token: uuid.UUID, path: Path) -> Written:
    """Validate the complete file, keep the original bit-for-bit, and record the attachment."""
    upload = Upload.objects.get(pk=upload_id)
    verdict = validation.check_complete_file(path=path, size=upload.length)
    sha256 = file_sha256(path)
    sniffed = verdict.sniffed
    name = f"tickets/{upload.ticket_id}/{uuid.uuid4().hex}{sniffed.extension}"
    evidence = storage.evidence_storage()
    stored_name: str | None = None
    try:
        with transaction.atomic():
            upload = _locked_leased_upload(upload_id=upload_id, token=token)
            with _PartialFile(path) as original:
                stored_name = evidence.save(name, original)
            attachment = Attachment.objects.create(
                ticket_id=upload.ticket_id,
                uploader_id=upload.uploader_id,
                upload=upload,
                kind=sniffed.kind,
                content_type=sniffed.content_type,
                size=upload.length,
                sha256=sha256,
                original=stored_name,
                filename=upload.filename,
                width=verdict.width,
                height=verdict.height,
            )
            upload.status = UploadStatus.COMPLETE
            upload.offset = upload.length
            upload.detected_kind = sniffed.kind
            upload.sha256 = sha256
            upload.completed_at = timezone.now()
            upload.lease_token, upload.lease_expires_at = None, None
            upload.save(
                update_fields=[
                    "status",
                    "offset",
                    "detected_kind",
                    "sha256",
                    "completed_at",
                    "lease_token",
                    "lease_expires_at",
                ]
            )
            from media import tasks

            # The chat learns that the file arrived and is being prepared (docs/uploads.md).
            processing.publish_update(attachment=attachment)
            transaction.on_commit(functools.partial(tasks.process_attachment.delay, attachment.pk))
    except BaseException:
        if stored_name is not None:
            # Nothing points at the moved original: do not leave it behind.
            evidence.delete(stored_name)
        raise
    return Written(upload=upload, attachment=attachment)


def refuse_upload(*, upload_id: uuid.UUID, token: uuid.UUID | None, code: str) -> None:
    """End an upload whose content is not acceptable; its partial file goes after commit."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update(of=("self",)).filter(pk=upload_id).first()
        if upload is None or upload.status != UploadStatus.RECEIVING:
            return
        if token is not None and upload.lease_token not in (None, token):
            return
        upload.status = UploadStatus.REFUSED
        upload.refusal_code = code
        upload.lease_token, upload.lease_expires_at = None, None
        upload.save(update_fields=["status", "refusal_code", "lease_token", "lease_expires_at"])
        transaction.on_commit(functools.partial(delete_partial_files, upload_ids=[upload.pk]))


def delete_partial_files(*, upload_ids: list[uuid.UUID]) -> None:
    for upload_id in upload_ids:
        storage.partial_path(upload_id).unlink(missing_ok=True)


# --- Terminate, sweep ------------------------------------------------------------------------------


def terminate_upload(*, upload_id: uuid.UUID, user: User) -> None:
    """tus termination: the upload and its partial file go. A received file is evidence and stays."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk=upload_id).first()
        upload = selectors.check_own_upload(user=user, upload=upload)
        if upload.status == UploadStatus.COMPLETE:
            raise UploadError(
                errors.FORBIDDEN,
                "already_received",
                _("This file has already been received and cannot be withdrawn here."),
            )
        upload.delete()
        transaction.on_commit(functools.partial(delete_partial_files, upload_ids=[upload_id]))


def sweep_uploads(*, now: datetime | None = None) -> int:
    """Delete expired unfinished uploads and refused ones, with their partial files; orphan files; and
    the scratch folders of processing runs whose worker died.

    An upload whose writer still holds a live lease is left for the next sweep.
    """
    now = now or timezone.now()
    with transaction.atomic():
        stale = Q(status=UploadStatus.RECEIVING, expires_at__lte=now) & (
            Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
        )
        refused = Q(status=UploadStatus.REFUSED, expires_at__lte=now)
        upload_ids = list(
            Upload.objects.select_for_update(skip_locked=True)
            .filter(stale | refused)
            .order_by("expires_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        Upload.objects.filter(pk__in=upload_ids).delete()
        transaction.on_commit(functools.partial(delete_partial_files, upload_ids=upload_ids))
    delete_orphan_partial_files(now=now)
    processing.delete_stale_scratch(now=now)
    return len(upload_ids)


def delete_orphan_partial_files(*, now: datetime) -> None:
    directory = storage.partial_path(uuid.UUID(int=0)).parent
    cutoff = (now - ORPHAN_PARTIAL_AGE).timestamp()
    live = {
        upload_id.hex for upload_id in Upload.objects.filter(status=UploadStatus.RECEIVING).values_list("pk", flat=True)
    }
    for path in directory.glob("*.part"):
        if path.stem not in live and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


# --- Deleting evidence (issue #9: erasure and retention, tickets/privacy.py) --------------------------


def delete_ticket_media(*, ticket_ids: list[int]) -> int:
    """Delete every attachment and upload of these tickets: rows now, files once the transaction commits
    (a rollback keeps both). Messages that carried them stay, showing no file. Returns the attachments deleted."""
    attachments = list(Attachment.objects.filter(ticket_id__in=ticket_ids))
    uploads = list(Upload.objects.filter(ticket_id__in=ticket_ids).values_list("pk", flat=True))
    files = [
        stored
        for attachment in attachments
        for stored in (attachment.original, *(getattr(attachment, name) for name in DERIVED_FIELDS))
        if stored
    ]
    names = [(stored.storage, stored.name) for stored in files]
    Attachment.objects.filter(pk__in=[attachment.pk for attachment in attachments]).delete()
    Upload.objects.filter(pk__in=uploads).delete()
    transaction.on_commit(functools.partial(_delete_files, names=names, upload_ids=uploads))
    return len(attachments)


def _delete_files(*, names: list[tuple[Storage, str]], upload_ids: list[uuid.UUID]) -> None:
    for file_storage, name in names:
        file_storage.delete(name)
    delete_partial_files(upload_ids=upload_ids)
