"""Reads on uploads and attachments, each scoped to who is asking.

Who may do what follows messaging.selectors: whoever may write in a ticket's conversation (its
buyer, its assigned agent) may upload evidence to it; whoever may read it (its buyer, console
users) may fetch its attachments. Another buyer's ticket, upload or attachment is a 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Sum
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _

from media import errors
from media.errors import UploadError
from media.models import DERIVED_FIELDS, Attachment, Upload, UploadStatus
from messaging.selectors import can_send, can_view
from tickets.models import RefundTicket


def check_may_upload(*, user: User | AnonymousUser, ticket: RefundTicket | None) -> RefundTicket:
    if ticket is None or not can_view(user=user, ticket=ticket):
        raise UploadError(errors.NOT_FOUND, "ticket_not_found", _("This ticket does not exist."))
    if not can_send(user=user, ticket=ticket):
        raise UploadError(
            errors.FORBIDDEN,
            "not_allowed",
            _("Only the buyer and the agent handling this ticket can send files in its conversation."),
        )
    return ticket


def check_own_upload(*, user: User | AnonymousUser, upload: Upload | None) -> Upload:
    """The requester's own upload, on a ticket they may still write in."""
    if upload is None or not can_view(user=user, ticket=upload.ticket):
        raise UploadError(errors.NOT_FOUND, "upload_not_found", _("This upload does not exist."))
    if upload.uploader_id != user.pk:
        raise UploadError(errors.FORBIDDEN, "not_allowed", _("This upload belongs to someone else."))
    check_may_upload(user=user, ticket=upload.ticket)
    return upload


def get_own_upload(*, user: User | AnonymousUser, upload_id: uuid.UUID) -> Upload:
    upload = Upload.objects.select_related("ticket").filter(pk=upload_id).first()
    return check_own_upload(user=user, upload=upload)


def ticket_usage(*, ticket_id: int, now: datetime) -> tuple[int, int]:
    """(files, bytes) a ticket holds or has reserved: its attachments plus the uploads still arriving."""
    attachments = Attachment.objects.filter(ticket_id=ticket_id).aggregate(total=Sum("size"))
    attachment_count = Attachment.objects.filter(ticket_id=ticket_id).count()
    arriving = Upload.objects.filter(ticket_id=ticket_id, status=UploadStatus.RECEIVING, expires_at__gt=now)
    reserved = arriving.aggregate(total=Sum("length"))
    files = attachment_count + arriving.count()
    total = (attachments["total"] or 0) + (reserved["total"] or 0)
    return files, total


def viewable_attachment(*, user: User | AnonymousUser, attachment_id: int) -> Attachment:
    attachment = Attachment.objects.select_related("ticket").filter(pk=attachment_id).first()
    if attachment is None or not can_view(user=user, ticket=attachment.ticket):
        raise Http404("No such attachment")
    return attachment


def attachment_for_upload(*, upload: Upload) -> Attachment | None:
    return Attachment.objects.filter(upload=upload).first()


def attachment_url(*, attachment: Attachment, variant: str) -> str | None:
    """The permission-checked URL of the original or of a derived file; None while it does not exist."""
    if variant != "original" and not getattr(attachment, variant):
        return None
    return reverse("media:attachment_variant", args=[attachment.pk, variant])


def attachment_payload(*, attachment: Attachment) -> dict[str, Any]:
    """An attachment as the chat sees it (the `attachment.updated` frame, docs/uploads.md)."""
    return {
        "id": attachment.pk,
        "ticket_id": attachment.ticket_id,
        "kind": attachment.kind,
        "status": attachment.status,
        "failure_reason": attachment.failure_reason,
        "width": attachment.width,
        "height": attachment.height,
        "duration_ms": attachment.duration_ms,
        "urls": {
            variant: attachment_url(attachment=attachment, variant=variant) for variant in ("original", *DERIVED_FIELDS)
        },
    }


def message_attachment_payload(*, attachment: Attachment) -> dict[str, Any]:
    """An attachment inside a `message` frame: the `attachment.updated` payload plus what the bubble shows
    (the name the buyer's device gave it, the sniffed type, the size)."""
    return {
        **attachment_payload(attachment=attachment),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
    }


def ticket_evidence(*, user: User | AnonymousUser, ticket: RefundTicket) -> list[Attachment]:
    """Every attachment of a ticket, oldest first, with who sent it: one query. Empty for whoever may not see it."""
    if not can_view(user=user, ticket=ticket):
        return []
    return list(
        Attachment.objects.filter(ticket=ticket).select_related("uploader", "message").order_by("created_at", "pk")
    )
