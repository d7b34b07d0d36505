"""Files staff attach to a ticket through a plain form (the warehouse's condition photos), not through tus.

The same checks as a chat upload (media.validation: by content, the same kinds, limits and refusal
messages; media.services: the ticket's file quota, the sha256, the server-made name) and the same
processing afterwards (thumbnails, metadata stripped). Two steps, so that a caller can refuse everything
before anything is kept:

1. `check_file` copies one posted file to a scratch file and validates it; a refusal leaves nothing.
2. `store_file` (inside the caller's transaction, the ticket row locked) moves the checked file into the
   evidence storage and records the Attachment; processing is queued after commit. If the caller's
   transaction fails afterwards, it calls `discard` so that no moved original is left behind.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from media import errors, sniffing, storage, validation
from media.errors import UploadError
from media.models import Attachment, AttachmentKind
from media.services import _PartialFile, check_ticket_room, clean_filename, file_sha256
from messaging.selectors import can_view
from refundchat.celery import queue_after_commit
from tickets.models import RefundTicket

PROCESS_TASK = "media.tasks.process_attachment"


@dataclass
class CheckedFile:
    """A posted file that passed validation, waiting in a scratch file until it is stored or discarded."""

    path: Path
    verdict: validation.Verdict
    size: int
    sha256: str
    filename: str
    # Set by store_file: the name of the original in the evidence storage.
    stored_name: str | None = field(default=None)


def check_file(*, fileobj: UploadedFile, kinds: frozenset[str] = frozenset({AttachmentKind.IMAGE})) -> CheckedFile:
    """Validate a posted file by its content; only `kinds` are accepted. Raises UploadError, keeping nothing."""
    size = int(fileobj.size or 0)
    validation.check_upload_length(length=size)
    fileobj.seek(0)
    head = fileobj.read(sniffing.HEAD_BYTES)
    possible = validation.check_head(head=head, length=size)
    if not possible & kinds:
        raise _wrong_kind(kinds)
    path = storage.partial_path(uuid.uuid4())
    try:
        fileobj.seek(0)
        with path.open("wb") as scratch:
            shutil.copyfileobj(fileobj, scratch, length=1024 * 1024)
        verdict = validation.check_complete_file(path=path, size=size)
        if verdict.sniffed.kind not in kinds:
            raise _wrong_kind(kinds)
        return CheckedFile(
            path=path,
            verdict=verdict,
            size=size,
            sha256=file_sha256(path),
            filename=clean_filename(fileobj.name or ""),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def check_files(
    *, files: Sequence[UploadedFile], kinds: frozenset[str] = frozenset({AttachmentKind.IMAGE})
) -> list[CheckedFile]:
    """Check every file; the first refusal discards the ones already checked and is raised."""
    checked: list[CheckedFile] = []
    try:
        for fileobj in files:
            checked.append(check_file(fileobj=fileobj, kinds=kinds))
    except BaseException:
        discard(checked)
        raise
    return checked


def store_file(*, ticket: RefundTicket, uploader: User, checked: CheckedFile) -> Attachment:
    """Keep a checked file as an attachment of `ticket`, the original bit for bit.

    Call inside a transaction that holds the ticket's row lock (the file quota is checked under it).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("store_file runs inside the caller's transaction")
    if not can_view(user=uploader, ticket=ticket):
        raise UploadError(errors.NOT_FOUND, "ticket_not_found", _("This ticket does not exist."))
    check_ticket_room(ticket_id=ticket.pk, length=checked.size, now=timezone.now())
    sniffed = checked.verdict.sniffed
    name = f"tickets/{ticket.pk}/{uuid.uuid4().hex}{sniffed.extension}"
    with _PartialFile(checked.path) as original:
        checked.stored_name = storage.evidence_storage().save(name, original)
    attachment = Attachment.objects.create(
        ticket=ticket,
        uploader=uploader,
        kind=sniffed.kind,
        content_type=sniffed.content_type,
        size=checked.size,
        sha256=checked.sha256,
        original=checked.stored_name,
        filename=checked.filename,
        width=checked.verdict.width,
        height=checked.verdict.height,
    )
    queue_after_commit(PROCESS_TASK, attachment.pk)
    return attachment


def discard(checked: Iterable[CheckedFile]) -> None:
    """Remove the scratch files, and the originals already moved, of files that will not be kept."""
    for item in checked:
        item.path.unlink(missing_ok=True)
        if item.stored_name is not None:
            storage.evidence_storage().delete(item.stored_name)
            item.stored_name = None


def _wrong_kind(kinds: frozenset[str]) -> UploadError:
    if kinds == {AttachmentKind.IMAGE}:
        message = _("Only photos can be attached here (JPEG, PNG, WebP, HEIC, GIF).")
    else:
        message = validation.allowed_types_message()
    return UploadError(errors.UNSUPPORTED_MEDIA_TYPE, "wrong_kind", message)
