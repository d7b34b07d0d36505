"""The refund state machine: every (state, transition, role) cell, inputs, amounts and side effects."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from messaging.models import Message
from tests import factories
from tickets import workflow
from tickets.models import Order, RefundTicket, TicketEvent, TicketEventKind, TicketStatus
from tickets.roles import Role
from tickets.workflow import TRANSITIONS, Actor, TransitionInput, TransitionRefused

pytestmark = pytest.mark.django_db

VALID_INPUT = TransitionInput(
    reason="照片不清楚", amount_cents=7900, carrier="SF", tracking_no="SF1234567890123", condition="intact"
)
ROLES = ["buyer", "other_buyer", "agent", "finance", "warehouse", "manager", "system", "bot"]
ROLE_ACTOR = {
    "buyer": Actor.BUYER,
    "agent": Actor.AGENT,
    "finance": Actor.FINANCE,
    "warehouse": Actor.WAREHOUSE,
    "manager": Actor.MANAGER,
    "system": Actor.SYSTEM,
    "bot": Actor.BOT,
}


@pytest.fixture
def people() -> dict[str, Any]:
    alice = factories.buyer(username="alice")
    return {
        "buyer": alice,
        "other_buyer": factories.buyer(username="bob"),
        "agent": factories.agent(username="agent"),
        "finance": factories.staff(Role.FINANCE, username="finance"),
        "warehouse": factories.staff(Role.WAREHOUSE, username="warehouse"),
        "manager": factories.staff(Role.MANAGER, username="manager"),
    }


@pytest.fixture
def ticket(people: dict[str, Any]) -> RefundTicket:
    order = factories.order_with_items(buyer=people["buyer"], items=[(7900, 1)])
    return factories.open_ticket(order=order, kind="return_and_refund")


def put_in_state(ticket: RefundTicket, status: str) -> None:
    """Place the ticket in `status` with the money consistent with it."""
    committed = status in workflow.COMMITTED_STATUSES
    amount = ticket.requested_amount_cents if committed else None
    RefundTicket.objects.filter(pk=ticket.pk).update(status=status, approved_amount_cents=amount)
    Order.objects.filter(pk=ticket.order_id).update(refund_committed_cents=amount or 0)


def act(ticket: RefundTicket, name: str, role: str, people: dict[str, Any], given: TransitionInput) -> TicketEvent:
    if role in ("system", "bot"):
        return workflow.do_transition(ticket_id=ticket.pk, name=name, user=None, system=ROLE_ACTOR[role], given=given)
    return workflow.do_transition(ticket_id=ticket.pk, name=name, user=people[role], given=given)


def attempt(ticket: RefundTicket, name: str, role: str, people: dict[str, Any]) -> TicketEvent | TransitionRefused:
    try:
        return act(ticket, name, role, people, VALID_INPUT)
    except TransitionRefused as refused:
        return refused


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_every_state_and_role_for_transition(ticket, people, name):
    """Allowed cells move the ticket and write one event; every other cell is refused and changes nothing."""
    transition = TRANSITIONS[name]
    for role in ROLES:
        for status in TicketStatus:
            with transaction.atomic():
                put_in_state(ticket, status)
                state_events = TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.STATUS_CHANGED)
                events_before = state_events.count()
                all_events_before = TicketEvent.objects.filter(ticket=ticket).count()
                allowed_actor = ROLE_ACTOR.get(role) in transition.actors
                allowed = allowed_actor and status in transition.sources
                cell = f"{name} by {role} from {status}"
                outcome = attempt(ticket, name, role, people)
                if allowed:
                    assert isinstance(outcome, TicketEvent), f"{cell} was refused: {outcome}"
                    assert RefundTicket.objects.get(pk=ticket.pk).status == transition.target
                    assert state_events.count() == events_before + 1
                    assert (outcome.kind, outcome.from_status, outcome.to_status) == (
                        TicketEventKind.STATUS_CHANGED,
                        status,
                        transition.target,
                    )
                    assert outcome.data["transition"] == name
                else:
                    assert isinstance(outcome, TransitionRefused), f"{cell} should have been refused"
                    assert outcome.code == ("wrong_state" if allowed_actor else "not_permitted"), cell
                    assert RefundTicket.objects.get(pk=ticket.pk).status == status
                    assert TicketEvent.objects.filter(ticket=ticket).count() == all_events_before
                transaction.set_rollback(True)


def test_refund_only_request_cannot_be_turned_into_a_return(people):
    order = factories.order_with_items(buyer=people["buyer"], items=[(7900, 1)])
    ticket = factories.open_ticket(order=order, kind="refund_only")
    with pytest.raises(TransitionRefused) as refused:
        act(ticket, "require_return", "agent", people, VALID_INPUT)
    assert refused.value.code == "wrong_state"


@pytest.mark.parametrize(
    ("name", "given", "code"),
    [
        ("reject", TransitionInput(reason="  "), "reason_required"),
        ("approve_refund_only", TransitionInput(), "amount_required"),
        ("approve_refund_only", TransitionInput(amount_cents=0), "amount_required"),
        ("approve_refund_only", TransitionInput(amount_cents=7901), "amount_too_high"),
        ("require_return", TransitionInput(amount_cents=-5), "amount_required"),
    ],
)
def test_missing_or_bad_inputs_are_refused_and_change_nothing(ticket, people, name, given, code):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    with pytest.raises(TransitionRefused) as refused:
        act(ticket, name, "agent", people, given)
    assert refused.value.code == code
    ticket.refresh_from_db()
    assert (ticket.status, ticket.approved_amount_cents) == (TicketStatus.UNDER_REVIEW, None)
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 0


def test_shipping_fee_can_be_refunded_on_top(ticket, people):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    act(ticket, "approve_refund_only", "agent", people, TransitionInput(amount_cents=7900, refund_shipping_fee=True))
    ticket.refresh_from_db()
    assert (ticket.approved_amount_cents, ticket.refund_shipping_fee) == (8700, True)
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 8700


@pytest.mark.parametrize(
    ("carrier", "number", "ok"),
    [
        ("SF", "SF1234567890123", True),
        ("sf", "sf 1234 5678 9012", True),
        ("JD", "JDVA12345678901", True),
        ("ZTO", "731234567890", True),
        ("YTO", "YT1234567890123", True),
        ("STO", "7712345678901", True),
        ("EMS", "EA123456789CN", True),
        ("YUNDA", "4312345678901", True),
        ("SF", "12345", False),
        ("EMS", "EA12345678CN", False),
        ("DHL", "1234567890", False),
    ],
)
def test_tracking_numbers_are_checked_per_carrier(carrier, number, ok):
    if ok:
        assert workflow.check_tracking(carrier=carrier, tracking_no=number)[0] == carrier.upper()
    else:
        with pytest.raises(TransitionRefused) as refused:
            workflow.check_tracking(carrier=carrier, tracking_no=number)
        assert refused.value.code in ("bad_carrier", "bad_tracking_no")


def test_return_path_records_tracking_condition_and_a_reduced_refund(ticket, people):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    act(ticket, "require_return", "agent", people, TransitionInput(amount_cents=7900))
    act(ticket, "ship_return", "buyer", people, TransitionInput(carrier="sf", tracking_no="SF 1234 5678 9012 3"))
    ticket.refresh_from_db()
    assert (ticket.return_carrier, ticket.return_tracking_no) == ("SF", "SF1234567890123")
    # The parcel arrives damaged: the warehouse lowers the refund, it may not raise it.
    with pytest.raises(TransitionRefused):
        act(ticket, "receive_return", "warehouse", people, TransitionInput(condition="damaged", amount_cents=9000))
    act(ticket, "receive_return", "warehouse", people, TransitionInput(condition="damaged", amount_cents=5000))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.return_condition, ticket.approved_amount_cents) == (
        "return_received",
        "damaged",
        5000,
    )
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 5000


def test_withdrawn_approval_gives_the_amount_back_to_the_order(ticket, people):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    act(ticket, "require_return", "agent", people, TransitionInput(amount_cents=7900))
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 7900
    act(ticket, "cancel", "buyer", people, TransitionInput())
    ticket.refresh_from_db()
    assert (ticket.status, ticket.approved_amount_cents, ticket.resolved_at is not None) == ("cancelled", None, True)
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 0


def test_second_approval_names_who_was_first(ticket, people):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    act(ticket, "approve_refund_only", "agent", people, TransitionInput(amount_cents=7900))
    with pytest.raises(TransitionRefused) as refused:
        act(ticket, "approve_refund_only", "agent", people, TransitionInput(amount_cents=7900))
    assert refused.value.code == "wrong_state"
    assert "Already “Approved (refund only)” by" in refused.value.message
    assert Order.objects.get(pk=ticket.order_id).refund_committed_cents == 7900


def test_transition_publishes_and_posts_the_next_step_once(
    ticket, people, django_capture_on_commit_callbacks, published
):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    with django_capture_on_commit_callbacks(execute=True):
        event = act(ticket, "require_return", "agent", people, TransitionInput(amount_cents=7900))
    ticket.refresh_from_db()
    update = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "return_required", "assigned_agent_id": None}
    assert [(group, frame) for group, frame in published if frame["type"] == "ticket.updated"] == [
        ("queue", update),
        (f"conversation.{ticket.conversation.pk}", update),
        (f"user.{ticket.buyer_id}", update),
    ]
    notes = Message.objects.filter(conversation=ticket.conversation, kind="system", body__contains="¥79.00")
    assert notes.count() == 1
    assert "运单号" in notes.get().body  # in the language of the ticket
    # A redelivered task posts nothing new.
    from tickets import outbox
    from tickets.models import OutboxMessage

    for message in OutboxMessage.objects.filter(event=event):
        assert outbox.deliver(message_id=message.pk) is False
    assert notes.count() == 1


def test_available_transitions_are_what_the_user_may_do_now(ticket, people):
    put_in_state(ticket, TicketStatus.UNDER_REVIEW)
    ticket.refresh_from_db()
    names = {t.name for t in workflow.available_transitions(ticket=ticket, user=people["agent"])}
    assert names == {"request_evidence", "approve_refund_only", "require_return", "reject", "escalate"}
    assert {t.name for t in workflow.available_transitions(ticket=ticket, user=people["buyer"])} == {
        "cancel",
        "escalate",
    }
    assert workflow.available_transitions(ticket=ticket, user=people["other_buyer"]) == []
