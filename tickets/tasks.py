"""Celery tasks: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task

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
    """A new ticket: refunded at once when the express rule allows, else routed to an agent."""
    if not timers.try_express_refund(ticket_id=ticket_id):
        routing.auto_assign(ticket_id=ticket_id)


@shared_task
def assign_waiting() -> int:
    return routing.assign_waiting()


@shared_task(acks_late=True)
def release_agent_tickets(agent_id: int) -> int:
    return routing.release_tickets_of(agent_id=agent_id)
