"""Celery tasks: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task

from tickets import outbox


# No autoretry: a failed delivery stays pending in the outbox with its next attempt time,
# and dispatch_outbox hands it out again then.
@shared_task(acks_late=True)
def deliver_outbox_message(message_id: int) -> bool:
    return outbox.deliver(message_id=message_id)


@shared_task
def dispatch_outbox() -> int:
    return outbox.dispatch_due()
