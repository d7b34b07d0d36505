"""Celery tasks: thin wrappers that call a service."""

from __future__ import annotations

from celery import shared_task

from tickets import outbox, payouts, timers


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
def try_express_refund(ticket_id: int) -> bool:
    return timers.try_express_refund(ticket_id=ticket_id)
