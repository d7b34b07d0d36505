"""Where evidence bytes live: partial uploads and kept originals, both under MEDIA_ROOT, neither public.

The directories are read from settings at call time, so that a test's MEDIA_ROOT applies.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

PARTIAL_DIR_NAME = "partial"
EVIDENCE_DIR_NAME = "evidence"


class EvidenceStorage(FileSystemStorage):
    """Originals under MEDIA_ROOT/evidence/. It has no URL: files go out only through the download view."""

    @property
    def base_location(self) -> str:
        return str(Path(settings.MEDIA_ROOT) / EVIDENCE_DIR_NAME)

    @property
    def location(self) -> str:
        return str(Path(self.base_location).resolve())

    def url(self, name: str | None) -> str:
        raise ValueError("Evidence files have no public URL; use media:attachment_file.")


def evidence_storage() -> Storage:
    return _EVIDENCE_STORAGE


_EVIDENCE_STORAGE = EvidenceStorage()


def partial_path(upload_id: uuid.UUID) -> Path:
    """The partial file of an upload, named after its UUID only."""
    directory = Path(settings.MEDIA_ROOT) / PARTIAL_DIR_NAME
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{upload_id.hex}.part"
