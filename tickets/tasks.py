"""Celery tasks: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task

from tickets import notifications


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def notify_ticket_created(ticket_id: int) -> None:
    notifications.send_ticket_created_notification(ticket_id=ticket_id)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, retry_backoff_max=600, max_retries=8)
def notify_status_changed(event_id: int) -> None:
    notifications.send_status_changed_notification(event_id=event_id)
