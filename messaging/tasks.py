"""Celery tasks of the messaging app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from messaging import presence


@shared_task
def sweep_stale_sockets() -> int:
    return presence.sweep_stale_sockets()
