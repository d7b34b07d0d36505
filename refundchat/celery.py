"""The Celery application: tasks are discovered in each app's tasks.py."""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from celery import Celery
from django.db import transaction
from django.utils.module_loading import import_string

from refundchat.logging import connect_celery_signals as connect_log_signals
from refundchat.metrics import connect_celery_signals as connect_metric_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refundchat.settings")

app = Celery("refundchat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every task logs with the ids of the request that queued it, and failures and retries are counted
# (refundchat/logging.py, refundchat/metrics.py).
connect_log_signals()
connect_metric_signals()

logger = logging.getLogger(__name__)


def queue_after_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task once the current transaction commits (see queue_task)."""
    transaction.on_commit(partial(queue_task, task_name, *args, countdown=countdown))


def queue_task(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task now. A broker that is down is logged, not raised: a committed change must not
    become an error page, and every caller has a beat task that later picks up what was not queued."""
    try:
        options: dict[str, Any] = {} if countdown is None else {"countdown": countdown}
        # Imported by its dotted path: outside a worker, app.tasks holds only the task modules
        # something has imported already.
        import_string(task_name).apply_async(args=args, **options)
    except Exception:
        logger.warning("task %s%r not queued; its beat task will pick the work up", task_name, args, exc_info=True)
