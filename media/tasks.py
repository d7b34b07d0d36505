"""Celery tasks of the media app: thin wrappers around services."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval

from media import processing, services
from media.models import Attachment

PROCESSING_MAX_RETRIES = 5
# Seconds: 2, 4, 8... with full jitter, so that a worker that lost its disk is not hammered in step.
PROCESSING_BACKOFF = 2
PROCESSING_BACKOFF_MAX = 600


@shared_task(acks_late=True)
def sweep_uploads() -> int:
    return services.sweep_uploads()


@shared_task(bind=True, acks_late=True, max_retries=PROCESSING_MAX_RETRIES)
def process_attachment(self: Task[Any, Any], attachment_id: int) -> None:
    try:
        processing.process_attachment(attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        return  # deleted before a worker got to it: nothing to show
    except processing.TRANSIENT_ERRORS as error:
        if self.request.retries >= PROCESSING_MAX_RETRIES:
            processing.give_up(attachment_id=attachment_id)
            raise
        countdown = get_exponential_backoff_interval(
            factor=PROCESSING_BACKOFF, retries=self.request.retries, maximum=PROCESSING_BACKOFF_MAX, full_jitter=True
        )
        raise self.retry(exc=error, countdown=countdown) from error
