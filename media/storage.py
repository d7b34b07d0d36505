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
DERIVED_DIR_NAME = "derived"


class EvidenceStorage(FileSystemStorage):
    """Originals under MEDIA_ROOT/evidence/. It has no URL: files go out only through the download view."""

    directory_name = EVIDENCE_DIR_NAME

    @property
    def base_location(self) -> str:
        return str(Path(settings.MEDIA_ROOT) / self.directory_name)

    @property
    def location(self) -> str:
        return str(Path(self.base_location).resolve())

    def url(self, name: str | None) -> str:
        raise ValueError("Evidence files have no public URL; use media:attachment_file.")


def evidence_storage() -> Storage:
    return _EVIDENCE_STORAGE


_EVIDENCE_STORAGE = EvidenceStorage()


class DerivedStorage(EvidenceStorage):
    """What processing makes from an original (thumbnails, stripped copies, posters, playable copies),
    under MEDIA_ROOT/derived/: apart from the originals, so that evidence is never overwritten by mistake."""

    directory_name = DERIVED_DIR_NAME


def derived_storage() -> Storage:
    return _DERIVED_STORAGE


_DERIVED_STORAGE = DerivedStorage()


def partial_path(upload_id: uuid.UUID) -> Path:
    """The partial file of an upload, named after its UUID only."""
    directory = Path(settings.MEDIA_ROOT) / PARTIAL_DIR_NAME
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{upload_id.hex}.part"
