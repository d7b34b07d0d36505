"""Checks on evidence content and sizes, each refusal with a message for the person who sent it.

Validation is by content (OWASP ASVS V12): media.sniffing reads the bytes; images are opened with
Pillow under a decompression-bomb guard. Names and declared types are never trusted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from media import errors, sniffing
from media.errors import UploadError
from media.models import AttachmentKind

# Pillow's name for each image format media.sniffing recognises.
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "heic": "HEIF", "heif": "HEIF"}


@dataclass(frozen=True)
class Verdict:
    """A complete file that passed: what it is, and what could be read cheaply on the way."""

    sniffed: sniffing.Sniffed
    width: int | None = None
    height: int | None = None


def format_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.0f} MB" if size % (1024 * 1024) == 0 else f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} B"


def kind_limit(kind: str) -> int:
    return int(settings.REFUNDCHAT_UPLOAD_KIND_LIMITS[kind])


def too_large_for_kind(kind: str) -> UploadError:
    limit = format_size(kind_limit(kind))
    messages = {
        AttachmentKind.IMAGE: _("This photo is too large: photos can be at most %(limit)s."),
        AttachmentKind.VIDEO: _("This video is too large: videos can be at most %(limit)s."),
        AttachmentKind.AUDIO: _("This recording is too large: audio files can be at most %(limit)s."),
        AttachmentKind.PDF: _("This PDF is too large: PDF documents can be at most %(limit)s."),
    }
    return UploadError(errors.TOO_LARGE, "too_large", messages[AttachmentKind(kind)] % {"limit": limit})


def check_upload_length(*, length: int) -> None:
    """The declared size, against the largest file of any kind."""
    if length == 0:
        raise UploadError(errors.BAD_REQUEST, "empty", _("The file is empty."))
    if length > settings.REFUNDCHAT_UPLOAD_MAX_SIZE:
        raise UploadError(
            errors.TOO_LARGE,
            "too_large",
            _("This file is too large: files can be at most %(limit)s.")
            % {"limit": format_size(settings.REFUNDCHAT_UPLOAD_MAX_SIZE)},
        )


def check_head(*, head: bytes, length: int) -> frozenset[str]:
    """The first bytes: refuse what can never be allowed, and a declared size over the kind's limit.

    Returns the kinds the file may still be (one, or video and audio for MP4 and WebM).
    """
    try:
        found = sniffing.sniff_head(head)
    except sniffing.Refused as refused:
        raise refusal(refused) from refused
    if length > max(kind_limit(kind) for kind in found.kinds):
        raise too_large_for_kind(max(found.kinds, key=kind_limit))
    return found.kinds


def check_complete_file(*, path: Path, size: int) -> Verdict:
    """Decide what a complete file is and whether it may be kept."""
    with path.open("rb") as fileobj:
        try:
            sniffed = sniffing.classify(fileobj, size=size)
        except sniffing.Refused as refused:
            raise refusal(refused) from refused
    if size > kind_limit(sniffed.kind):
        raise too_large_for_kind(sniffed.kind)
    if sniffed.kind == AttachmentKind.IMAGE:
        width, height = check_image(path=path, expected_format=PILLOW_FORMATS[sniffed.format])
        return Verdict(sniffed=sniffed, width=width, height=height)
    return Verdict(sniffed=sniffed)


def check_image(*, path: Path, expected_format: str) -> tuple[int, int]:
    """Open and verify an image with Pillow, refusing pixel bombs before any pixel is decoded.

    media.apps sets Image.MAX_IMAGE_PIXELS from settings and turns DecompressionBombWarning into an
    error for the whole process (warnings.catch_warnings here would not be thread-safe); the explicit
    count below holds even if someone reset the warnings filters.
    """
    max_pixels = settings.REFUNDCHAT_UPLOAD_MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as image:
            if image.format != expected_format:
                raise refusal(sniffing.Refused("polyglot", f"{image.format} is not {expected_format}"))
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            if width * height * frames > max_pixels:
                raise too_many_pixels()
            image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
        raise too_many_pixels() from bomb
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as broken:
        raise refusal(sniffing.Refused("damaged", str(broken))) from broken
    return width, height


def too_many_pixels() -> UploadError:
    return UploadError(
        errors.UNPROCESSABLE,
        "too_many_pixels",
        _("This image has too many pixels (at most %(megapixels)d megapixels). Send a smaller photo or a screenshot.")
        % {"megapixels": settings.REFUNDCHAT_UPLOAD_MAX_IMAGE_PIXELS // 1_000_000},
    )


def allowed_types_message() -> str:
    return _(
        "You can send photos (JPEG, PNG, WebP, HEIC, GIF), videos (MP4, MOV, WebM), "
        "audio (WebM, M4A, AAC, MP3, WAV, OGG) and PDF documents."
    )


def refusal(refused: sniffing.Refused) -> UploadError:
    """The message for a content refusal from media.sniffing."""
    code = refused.code
    if code == "empty":
        return UploadError(errors.BAD_REQUEST, code, _("The file is empty."))
    if code == "executable":
        message = _("Programs and scripts cannot be sent.")
        return UploadError(errors.UNSUPPORTED_MEDIA_TYPE, code, f"{message} {allowed_types_message()}")
    if code == "markup":
        return UploadError(
            errors.UNSUPPORTED_MEDIA_TYPE,
            code,
            _("SVG and HTML files cannot be sent because they can contain scripts. Send a screenshot instead."),
        )
    if code == "polyglot":
        return UploadError(
            errors.UNSUPPORTED_MEDIA_TYPE,
            code,
            _("This file has content of another type hidden inside it and cannot be sent."),
        )
    if code == "pdf_active_content":
        return UploadError(
            errors.UNSUPPORTED_MEDIA_TYPE,
            code,
            _(
                "This PDF contains scripts, actions or embedded files and cannot be sent. "
                "Save it as a new PDF without them, or send a screenshot."
            ),
        )
    if code == "damaged":
        return UploadError(errors.UNPROCESSABLE, code, _("This file is damaged or incomplete and cannot be opened."))
    message = _("This type of file cannot be sent.")
    return UploadError(errors.UNSUPPORTED_MEDIA_TYPE, "unsupported_type", f"{message} {allowed_types_message()}")
