"""Celery tasks of the media app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from media import services
from media.models import Attachment


@shared_task(acks_late=True)
def sweep_uploads() -> int:
    return services.sweep_uploads()


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def process_attachment(attachment_id: int) -> None:
    try:
        services.process_attachment(attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        return
