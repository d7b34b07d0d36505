"""Celery tasks of the messaging app: thin wrappers around services."""

from __future__ import annotations

from celery import shared_task

from messaging import calls, presence


@shared_task
def sweep_stale_sockets() -> int:
    return presence.sweep_stale_sockets()


# Call timers (messaging/calls.py): queued on commit with a countdown; each looks at the clock itself, so a
# task that runs early or twice does nothing.
@shared_task
def expire_ringing_call(call_id: int) -> bool:
    return calls.do_expire_ringing(call_id=call_id)


@shared_task
def end_call_if_socket_lost(call_id: int) -> bool:
    return calls.do_end_if_socket_lost(call_id=call_id)


@shared_task
def expire_calls() -> int:
    return calls.expire_calls()


@shared_task(acks_late=True)
def assistant_step(conversation_id: int) -> int:
    """The triage assistant answers the buyer's new messages (idempotent: processed seqs are remembered)."""
    from messaging.assistant import services as assistant

    return assistant.process_pending(conversation_id=conversation_id)
