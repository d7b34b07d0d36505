"""Checks of the services RefundChat depends on, for /healthz and /readyz."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from refundchat.celery import app as celery_app


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel("healthz.")  # type: ignore[call-arg]
        await layer.send(channel, {"type": "healthz.ping"})
        message = await layer.receive(channel)
        if message.get("type") != "healthz.ping":
            raise RuntimeError("channel layer returned a different message")

    async_to_sync(round_trip)()


def check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def check_migrations() -> None:
    """Every migration on disk is applied: a process of a newer release must not serve an older schema."""
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied, first {pending[0][0]}")


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
}
# /readyz: the load balancer sends traffic only to a process for which all of these pass.
READY_CHECKS = {**CHECKS, "migrations": check_migrations}


def run_checks(checks: dict[str, Callable[[], None]] = CHECKS) -> dict[str, str]:
    """Name → "ok" or the error, for every dependency."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as error:  # a health check reports every failure, whatever its kind
            results[name] = f"error: {type(error).__name__}: {error}"[:300]
        else:
            results[name] = "ok"
    return results
