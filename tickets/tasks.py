"""Celery tasks: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from tickets import outbox, payouts, routing, timers


# No autoretry: a failed delivery stays pending in the outbox with its next attempt time,
# and dispatch_outbox hands it out again then.
@shared_task(acks_late=True)
def deliver_outbox_message(message_id: int) -> bool:
    return outbox.deliver(message_id=message_id)


@shared_task
def dispatch_outbox() -> int:
    return outbox.dispatch_due()


@shared_task(acks_late=True)
def settle_fake_payout(body: dict[str, object]) -> None:
    """The fake gateway reporting back (tickets.payouts.FakePayoutProvider)."""
    payouts.send_fake_callback(body=body)


@shared_task
def run_timers() -> dict[str, int]:
    return timers.run_timers()


@shared_task(acks_late=True)
def triage_new_ticket(ticket_id: int) -> None:
    """A new ticket: the triage assistant takes it when it is on (routing waits for its hand-off); else
    refunded at once when the express rule allows, else routed to an agent."""
    if settings.REFUNDCHAT_ASSISTANT_ENABLED:
        from messaging.assistant import services as assistant

        if assistant.start_dialog(ticket_id=ticket_id) is not None:
            return
    if not timers.try_express_refund(ticket_id=ticket_id):
        routing.auto_assign(ticket_id=ticket_id)


@shared_task(acks_late=True)
def route_ticket(ticket_id: int) -> None:
    """The assistant handed a ticket off: give it to an agent (assign_waiting retries if nobody has room)."""
    routing.auto_assign(ticket_id=ticket_id)


@shared_task
def assign_waiting() -> int:
    return routing.assign_waiting()


@shared_task(acks_late=True)
def release_agent_tickets(agent_id: int) -> int:
    return routing.release_tickets_of(agent_id=agent_id)


@shared_task(acks_late=True)
def build_data_export(export_id: int) -> None:
    """A buyer's data export (issue #9, tickets/privacy.py); a repeat of a finished one does nothing."""
    from tickets import privacy

    privacy.build_export(export_id=export_id)


@shared_task
def purge_expired_media() -> int:
    """Retention (issue #9): media of tickets closed longer than REFUNDCHAT_MEDIA_RETENTION_DAYS, old exports."""
    from tickets import privacy

    return privacy.purge_expired_media()
