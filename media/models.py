"""Evidence attachments (photos, videos, voice notes, PDFs) and the resumable uploads that bring them.

An `Upload` is one tus 1.0.0 upload in progress: its bytes go to a partial file named after the
upload's UUID (never after the buyer's filename). Once the last byte has arrived and the content
passed validation, the original is kept bit-for-bit as an `Attachment`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length
from django.db.models.lookups import Exact, GreaterThan
from django.utils.translation import gettext_lazy as _

from media.storage import derived_storage, evidence_storage
from tickets.models import RefundTicket

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise  # a development dependency

SHA256_HEX_LENGTH = 64


class AttachmentKind(models.TextChoices):
    IMAGE = "image", _("Photo")
    VIDEO = "video", _("Video")
    AUDIO = "audio", _("Audio")
    PDF = "pdf", _("PDF document")


class UploadStatus(models.TextChoices):
    RECEIVING = "receiving", _("Receiving")
    COMPLETE = "complete", _("Complete")
    REFUSED = "refused", _("Refused")


class Upload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ticket = models.ForeignKey(RefundTicket, on_delete=models.CASCADE, related_name="uploads", verbose_name=_("ticket"))
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads", verbose_name=_("uploader")
    )
    status = models.CharField(_("status"), max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVING)
    length = models.PositiveBigIntegerField(_("length (bytes)"))
    offset = models.PositiveBigIntegerField(_("offset (bytes)"), default=0)
    # The decoded Upload-Metadata, echoed on HEAD.
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # What the client says; shown to people, never used as a path or to decide the type.
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    filetype = models.CharField(_("declared file type"), max_length=100, blank=True)
    # Known from the first bytes; the per-kind size limit applies from then on.
    detected_kind = models.CharField(_("detected kind"), max_length=16, choices=AttachmentKind.choices, blank=True)
    refusal_code = models.CharField(_("refusal code"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=SHA256_HEX_LENGTH, blank=True)
    # The writer lease: while a PATCH streams into the partial file, no other PATCH may write.
    lease_token = models.UUIDField(_("lease token"), null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        indexes = [
            models.Index(fields=["status", "expires_at"], name="upload_status_expires_idx"),
            models.Index(fields=["ticket", "status"], name="upload_ticket_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(offset__lte=F("length")), name="upload_offset_within_length"),
            models.CheckConstraint(condition=Q(status__in=UploadStatus.values), name="upload_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=UploadStatus.COMPLETE)
                | Q(Exact(Length("sha256"), SHA256_HEX_LENGTH), completed_at__isnull=False, offset=F("length")),
                name="upload_complete_has_all_bytes_and_hash",
            ),
            models.CheckConstraint(
                condition=Q(status=UploadStatus.COMPLETE) | Q(completed_at__isnull=True),
                name="upload_completed_at_only_when_complete",
            ),
            models.CheckConstraint(
                condition=~Q(status=UploadStatus.REFUSED) | ~Q(refusal_code=""),
                name="upload_refused_has_code",
            ),
            models.CheckConstraint(
                condition=Q(lease_token__isnull=True, lease_expires_at__isnull=True)
                | Q(lease_token__isnull=False, lease_expires_at__isnull=False),
                name="upload_lease_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename or self.pk} ({self.offset}/{self.length})"


class AttachmentStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


def _evidence_name(instance: Attachment, filename: str) -> str:
    # Only reached through FileField.save(); the services name files themselves.
    return filename


# The Attachment fields media.processing fills, each served as a `variant` by the download view.
DERIVED_FIELDS = ("thumbnail_small", "thumbnail_large", "shareable", "poster", "playable")


def _derived_file(verbose_name: StrOrPromise) -> models.FileField:
    # Written by media.processing only, under a name it makes from the attachment's id; empty until then.
    return models.FileField(
        verbose_name, storage=derived_storage, upload_to=_evidence_name, max_length=200, blank=True, default=""
    )


class Attachment(models.Model):
    """A validated evidence file; the original is stored bit-for-bit under a name the server chose."""

    ticket = models.ForeignKey(
        RefundTicket, on_delete=models.PROTECT, related_name="attachments", verbose_name=_("ticket")
    )
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="attachments", verbose_name=_("uploader")
    )
    upload = models.OneToOneField(
        Upload,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attachment",
        verbose_name=_("upload"),
    )
    # The chat message that carries it (set when messages can carry attachments).
    message = models.ForeignKey(
        "messaging.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attachments",
        verbose_name=_("message"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=AttachmentKind.choices)
    # Sniffed from the bytes, never taken from the client.
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=SHA256_HEX_LENGTH)
    original = models.FileField(
        _("original"), storage=evidence_storage, upload_to=_evidence_name, max_length=200, unique=True
    )
    # What the buyer's device called it: display only.
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=AttachmentStatus.choices, default=AttachmentStatus.PROCESSING
    )
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(_("duration (ms)"), null=True, blank=True)
    # Derived by media.processing; what the chat shows. The original above is never changed.
    thumbnail_small = _derived_file(_("small thumbnail"))
    thumbnail_large = _derived_file(_("large thumbnail"))
    # The photo with EXIF (GPS), XMP and every other metadata removed: what staff view and pass on.
    shareable = _derived_file(_("shareable copy"))
    poster = _derived_file(_("poster frame"))
    # Only when the original does not play in every browser (HEVC video, Ogg audio...).
    playable = _derived_file(_("web-playable copy"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["ticket", "created_at", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [models.Index(fields=["ticket", "created_at"], name="attachment_ticket_created_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="attachment_size_positive"),
            models.CheckConstraint(condition=Q(kind__in=AttachmentKind.values), name="attachment_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=AttachmentStatus.values), name="attachment_status_valid"),
            models.CheckConstraint(
                condition=Q(Exact(Length("sha256"), SHA256_HEX_LENGTH)), name="attachment_sha256_length"
            ),
            models.CheckConstraint(condition=Q(GreaterThan(Length("original"), 0)), name="attachment_original_named"),
            models.CheckConstraint(
                condition=~Q(status=AttachmentStatus.FAILED) | ~Q(failure_reason=""),
                name="attachment_failure_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket} {self.get_kind_display()} #{self.pk}"
