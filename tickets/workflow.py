"""The refund state machine: one table of transitions, one function that performs them.

Every state change of a ticket goes through `do_transition`: views, the API,
the consumer, Celery timers and the payout callback all call it. It locks the
ticket (and, when money is promised, its order), checks the table, the actor and
the inputs, writes the new state and a TicketEvent in one transaction, and
schedules the side effects on commit.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from refundchat.errors import Refused
from tickets.models import (
    FINAL_STATUSES,
    Order,
    RefundKind,
    RefundTicket,
    ReturnCondition,
    TicketEvent,
    TicketEventKind,
)
from tickets.models import TicketStatus as S


class Actor(enum.StrEnum):
    BUYER = "buyer"
    BOT = "bot"
    AGENT = "agent"
    FINANCE = "finance"
    WAREHOUSE = "warehouse"
    MANAGER = "manager"
    SYSTEM = "system"  # timers and payout callbacks


# Which permission makes a staff member act as which actor.
ACTOR_PERMISSIONS: dict[Actor, str] = {
    Actor.AGENT: "tickets.handle_ticket",
    Actor.FINANCE: "tickets.manage_payout",
    Actor.WAREHOUSE: "tickets.receive_return",
    Actor.MANAGER: "tickets.arbitrate",
}


class Need(enum.StrEnum):
    """What a transition needs from the person taking it."""

    REASON = "reason"
    AMOUNT = "amount"
    TRACKING = "tracking"
    CONDITION = "condition"


# Tracking number formats of the carriers buyers use most (uppercase, no spaces).
CARRIERS: dict[str, tuple[Promise, re.Pattern[str]]] = {
    "SF": (gettext_lazy("SF Express"), re.compile(r"^SF\d{12,13}$")),
    "JD": (gettext_lazy("JD Logistics"), re.compile(r"^JD[A-Z0-9]{11,13}$")),
    "ZTO": (gettext_lazy("ZTO Express"), re.compile(r"^(7[0-9]|5[0-9])\d{10,12}$")),
    "YTO": (gettext_lazy("YTO Express"), re.compile(r"^YT\d{13,16}$")),
    "STO": (gettext_lazy("STO Express"), re.compile(r"^(77|88|55)\d{10,13}$")),
    "EMS": (gettext_lazy("China Post EMS"), re.compile(r"^([A-Z]{2}\d{9}CN|1\d{12})$")),
    "YUNDA": (gettext_lazy("Yunda Express"), re.compile(r"^(31|43|46|53)\d{11,13}$")),
}

# Photos attached to one step (the warehouse's condition photos); the ticket's file quota applies too.
MAX_PHOTOS = 10

OPEN_BEFORE_DECISION = frozenset({S.REQUESTED, S.AWAITING_EVIDENCE, S.UNDER_REVIEW})


@dataclass(frozen=True)
class Transition:
    name: str
    label: Promise
    sources: frozenset[S]
    target: S
    actors: frozenset[Actor]
    needs: frozenset[Need] = frozenset()
    # Only for these kinds of request (None: any).
    kinds: frozenset[RefundKind] | None = None
    # The buyer sees this step in their history.
    visible_to_buyer: bool = True


def _t(
    name: str,
    label: Promise,
    sources: set[S] | frozenset[S],
    target: S,
    actors: set[Actor],
    needs: set[Need] | None = None,
    *,
    kinds: frozenset[RefundKind] | None = None,
) -> Transition:
    return Transition(
        name=name,
        label=label,
        sources=frozenset(sources),
        target=target,
        actors=frozenset(actors),
        needs=frozenset(needs or ()),
        kinds=kinds,
    )


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        _t(
            "request_evidence",
            gettext_lazy("Ask for evidence"),
            {S.REQUESTED, S.UNDER_REVIEW},
            S.AWAITING_EVIDENCE,
            {Actor.AGENT, Actor.BOT},
            {Need.REASON},
        ),
        _t(
            "submit_evidence",
            gettext_lazy("Evidence sent"),
            {S.AWAITING_EVIDENCE},
            S.UNDER_REVIEW,
            {Actor.BUYER, Actor.BOT},
        ),
        _t(
            "start_review",
            gettext_lazy("Start review"),
            {S.REQUESTED, S.AWAITING_EVIDENCE},
            S.UNDER_REVIEW,
            {Actor.AGENT, Actor.BOT},
        ),
        _t(
            "approve_refund_only",
            gettext_lazy("Approve refund (no return)"),
            OPEN_BEFORE_DECISION,
            S.APPROVED_REFUND_ONLY,
            {Actor.AGENT, Actor.SYSTEM},
            {Need.AMOUNT},
        ),
        _t(
            "require_return",
            gettext_lazy("Require a return"),
            OPEN_BEFORE_DECISION,
            S.RETURN_REQUIRED,
            {Actor.AGENT},
            {Need.AMOUNT},
            kinds=frozenset({RefundKind.RETURN_AND_REFUND}),
        ),
        _t(
            "ship_return",
            gettext_lazy("Return shipped"),
            {S.RETURN_REQUIRED},
            S.RETURN_IN_TRANSIT,
            {Actor.BUYER},
            {Need.TRACKING},
        ),
        _t(
            "receive_return",
            gettext_lazy("Return received"),
            {S.RETURN_IN_TRANSIT},
            S.RETURN_RECEIVED,
            {Actor.WAREHOUSE},
            {Need.CONDITION},
        ),
        _t(
            "request_payout",
            gettext_lazy("Pay out"),
            {S.APPROVED_REFUND_ONLY, S.RETURN_RECEIVED},
            S.REFUND_PENDING,
            {Actor.AGENT, Actor.FINANCE, Actor.SYSTEM},
        ),
        _t(
            "complete_payout",
            gettext_lazy("Payout completed"),
            {S.REFUND_PENDING},
            S.REFUNDED,
            {Actor.FINANCE, Actor.SYSTEM},
        ),
        _t(
            "reject",
            gettext_lazy("Reject"),
            OPEN_BEFORE_DECISION | {S.RETURN_RECEIVED},
            S.REJECTED,
            {Actor.AGENT},
            {Need.REASON},
        ),
        _t(
            "cancel",
            gettext_lazy("Cancel the request"),
            OPEN_BEFORE_DECISION | {S.RETURN_REQUIRED},
            S.CANCELLED,
            {Actor.BUYER},
        ),
        _t(
            "close",
            gettext_lazy("Close"),
            {S.AWAITING_EVIDENCE, S.RETURN_REQUIRED},
            S.CLOSED,
            {Actor.SYSTEM},
            {Need.REASON},
        ),
        _t(
            "escalate",
            gettext_lazy("Escalate to the platform"),
            OPEN_BEFORE_DECISION | {S.RETURN_RECEIVED},
            S.ESCALATED,
            {Actor.BUYER, Actor.AGENT, Actor.SYSTEM},
            {Need.REASON},
        ),
        _t(
            "arbitrate_refund",
            gettext_lazy("Arbitration: refund"),
            {S.ESCALATED},
            S.APPROVED_REFUND_ONLY,
            {Actor.MANAGER},
            {Need.AMOUNT, Need.REASON},
        ),
        _t(
            "arbitrate_return",
            gettext_lazy("Arbitration: return first"),
            {S.ESCALATED},
            S.RETURN_REQUIRED,
            {Actor.MANAGER},
            {Need.AMOUNT, Need.REASON},
        ),
        _t(
            "arbitrate_reject",
            gettext_lazy("Arbitration: reject"),
            {S.ESCALATED},
            S.REJECTED,
            {Actor.MANAGER},
            {Need.REASON},
        ),
    )
}

# States in which the ticket's approved amount counts against what the order paid.
COMMITTED_STATUSES = frozenset(
    {S.APPROVED_REFUND_ONLY, S.RETURN_REQUIRED, S.RETURN_IN_TRANSIT, S.RETURN_RECEIVED, S.REFUND_PENDING, S.REFUNDED}
)


class TransitionRefused(Refused):
    """A transition that was not performed."""


@dataclass(frozen=True)
class TransitionInput:
    reason: str = ""
    # The refund for the goods, in cents; the order's shipping fee is added when refund_shipping_fee is set.
    amount_cents: int | None = None
    refund_shipping_fee: bool = False
    carrier: str = ""
    tracking_no: str = ""
    condition: str = ""
    data: dict[str, object] = field(default_factory=dict)


def actors_of(*, user: User | None, ticket: RefundTicket, system: Actor | None = None) -> set[Actor]:
    """The roles in which `user` (or the system, when user is None) may act on `ticket`."""
    if user is None:
        if system not in (Actor.SYSTEM, Actor.BOT):
            raise ValueError("a transition without a user needs system=Actor.SYSTEM or Actor.BOT")
        return {system}
    actors = {actor for actor, perm in ACTOR_PERMISSIONS.items() if user.has_perm(perm)}
    if user.pk == ticket.buyer_id:
        actors.add(Actor.BUYER)
    return actors


def available_transitions(*, ticket: RefundTicket, user: User) -> list[Transition]:
    """What `user` may do with `ticket` now, for the console's and the buyer's buttons."""
    actors = actors_of(user=user, ticket=ticket)
    return [t for t in TRANSITIONS.values() if _applies(t, ticket) and t.actors & actors]


def _applies(transition: Transition, ticket: RefundTicket) -> bool:
    return ticket.status in transition.sources and (transition.kinds is None or ticket.kind in transition.kinds)


def check_tracking(*, carrier: str, tracking_no: str) -> tuple[str, str]:
    carrier = carrier.strip().upper()
    number = re.sub(r"\s+", "", tracking_no).upper()
    if carrier not in CARRIERS:
        raise TransitionRefused("bad_carrier", _("Choose the carrier that ships the parcel."))
    if not CARRIERS[carrier][1].match(number):
        raise TransitionRefused(
            "bad_tracking_no",
            _("“%(number)s” is not a %(carrier)s tracking number. Check it on the shipping receipt.")
            % {"number": tracking_no.strip(), "carrier": CARRIERS[carrier][0]},
        )
    return carrier, number


def refund_total_cents(*, ticket: RefundTicket, given: TransitionInput) -> int:
    """What the refund pays: the amount for the goods, plus the shipping fee when it is refunded too."""
    assert given.amount_cents is not None
    return given.amount_cents + (ticket.order.shipping_fee_cents if given.refund_shipping_fee else 0)


def check_inputs(*, transition: Transition, ticket: RefundTicket, given: TransitionInput) -> None:
    if Need.REASON in transition.needs and not given.reason.strip():
        raise TransitionRefused("reason_required", _("Give a reason: the buyer will see it."))
    if Need.AMOUNT in transition.needs:
        if given.amount_cents is None or isinstance(given.amount_cents, bool) or given.amount_cents <= 0:
            raise TransitionRefused("amount_required", _("Enter the amount to refund."))
        if given.amount_cents > ticket.requested_amount_cents:
            raise TransitionRefused(
                "amount_too_high",
                _("At most %(max)s can be refunded for these items.") % {"max": _cny(ticket.requested_amount_cents)},
            )
    if Need.TRACKING in transition.needs:
        check_tracking(carrier=given.carrier, tracking_no=given.tracking_no)
    if Need.CONDITION in transition.needs and given.condition not in ReturnCondition.values:
        raise TransitionRefused("condition_required", _("Record the condition of the returned items."))


def do_transition(
    *,
    ticket_id: int,
    name: str,
    user: User | None,
    system: Actor | None = None,
    given: TransitionInput | None = None,
) -> TicketEvent:
    """Move a ticket along `name` of TRANSITIONS; returns the event written."""
    given = given or TransitionInput()
    transition = TRANSITIONS.get(name)
    if transition is None:
        raise TransitionRefused("unknown_transition", _("Unknown action."))
    with transaction.atomic():
        ticket = (
            RefundTicket.objects.select_for_update(of=("self",))
            .select_related("order", "assigned_agent")
            .get(pk=ticket_id)
        )
        actors = actors_of(user=user, ticket=ticket, system=system)
        if not transition.actors & actors:
            raise TransitionRefused("not_permitted", _("You may not do this on this ticket."))
        if not _applies(transition, ticket):
            raise TransitionRefused("wrong_state", _refusal_for_state(ticket))
        check_inputs(transition=transition, ticket=ticket, given=given)
        previous = ticket.status
        changed = ["status", "updated_at"]
        data: dict[str, object] = {
            "transition": name,
            "actor_role": sorted(transition.actors & actors)[0],
            **given.data,
        }
        if Need.AMOUNT in transition.needs:
            data.update(_commit_amount(ticket=ticket, amount_cents=refund_total_cents(ticket=ticket, given=given)))
            ticket.refund_shipping_fee = given.refund_shipping_fee
            changed += ["approved_amount_cents", "refund_shipping_fee"]
        if Need.TRACKING in transition.needs:
            ticket.return_carrier, ticket.return_tracking_no = check_tracking(
                carrier=given.carrier, tracking_no=given.tracking_no
            )
            ticket.return_shipped_at = timezone.now()
            changed += ["return_carrier", "return_tracking_no", "return_shipped_at"]
            data.update(carrier=ticket.return_carrier, tracking_no=ticket.return_tracking_no)
        if Need.CONDITION in transition.needs:
            ticket.return_condition = given.condition
            ticket.return_received_at = timezone.now()
            changed += ["return_condition", "return_received_at"]
            data["condition"] = given.condition
            if given.amount_cents is not None and given.amount_cents != ticket.approved_amount_cents:
                # A damaged or incomplete return can lower the refund, never raise it.
                if not 0 < given.amount_cents <= (ticket.approved_amount_cents or 0):
                    raise TransitionRefused(
                        "amount_too_high", _("After inspection the refund can only stay the same or go down.")
                    )
                data.update(_commit_amount(ticket=ticket, amount_cents=given.amount_cents))
                changed.append("approved_amount_cents")
        if transition.target not in COMMITTED_STATUSES and previous in COMMITTED_STATUSES:
            # Rejected or cancelled after approval: the promise to pay is withdrawn.
            data.update(_commit_amount(ticket=ticket, amount_cents=0))
            changed.append("approved_amount_cents")
        ticket.status = transition.target
        if transition.target in FINAL_STATUSES:
            ticket.resolved_at = timezone.now()
            changed.append("resolved_at")
        ticket.save(update_fields=sorted(set(changed)))
        if transition.target == S.REFUND_PENDING:
            from tickets import payouts

            # One payout per ticket (a database constraint): a refund is never paid twice.
            try:
                payouts.open_payout(ticket=ticket, user=user)
            except payouts.PayoutError as error:
                raise TransitionRefused(error.code, error.message) from None
        event = TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.STATUS_CHANGED,
            actor=user,
            from_status=previous,
            to_status=ticket.status,
            reason=given.reason.strip()[:500],
            data=data,
            visible_to_buyer=transition.visible_to_buyer,
        )
        _schedule_side_effects(ticket=ticket, event=event)
    return event


def do_transition_with_photos(
    *,
    ticket_id: int,
    name: str,
    user: User,
    given: TransitionInput | None = None,
    photos: Sequence[UploadedFile] = (),
) -> TicketEvent:
    """`do_transition`, with photos kept as attachments of the ticket and linked from the event
    (data["photos"]: the attachment ids), e.g. the warehouse's photos of a returned item's condition.

    All or nothing: every photo is checked by its content first (media.staff_files, the rules of chat
    uploads); a refused photo, or a refused transition, keeps no photo and changes nothing.
    """
    from media import staff_files

    given = given or TransitionInput()
    if len(photos) > MAX_PHOTOS:
        raise TransitionRefused(
            "too_many_photos", _("At most %(count)d photos can be attached at once.") % {"count": MAX_PHOTOS}
        )
    checked = staff_files.check_files(files=photos)
    try:
        with transaction.atomic():
            ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
            attachments = [staff_files.store_file(ticket=ticket, uploader=user, checked=item) for item in checked]
            data = (
                {**given.data, "photos": [attachment.pk for attachment in attachments]} if attachments else given.data
            )
            return do_transition(ticket_id=ticket_id, name=name, user=user, given=replace(given, data=data))
    except BaseException:
        # Nothing was committed: no moved original may stay behind.
        staff_files.discard(checked)
        raise


def _commit_amount(*, ticket: RefundTicket, amount_cents: int) -> dict[str, object]:
    """Set the ticket's approved amount and move the order's committed total by the difference.

    The order row is locked, so approvals of two tickets of one order are serialised;
    the check constraint `order_refund_within_paid` stands behind this check.
    """
    order = Order.objects.select_for_update().get(pk=ticket.order_id)
    previous = ticket.approved_amount_cents or 0
    difference = amount_cents - previous
    if order.refund_committed_cents + difference > order.paid_total_cents:
        raise TransitionRefused(
            "over_refund",
            _("Only %(left)s of this order is left to refund (paid %(paid)s, already promised %(promised)s).")
            % {
                "left": _cny(order.paid_total_cents - order.refund_committed_cents + previous),
                "paid": _cny(order.paid_total_cents),
                "promised": _cny(order.refund_committed_cents - previous),
            },
        )
    Order.objects.filter(pk=order.pk).update(refund_committed_cents=F("refund_committed_cents") + difference)
    ticket.approved_amount_cents = amount_cents or None
    return {"amount_cents": amount_cents, "previous_amount_cents": previous}


def _refusal_for_state(ticket: RefundTicket) -> str:
    """Why the ticket cannot take this step: name who moved it to where it is, when someone did."""
    last = (
        TicketEvent.objects.filter(ticket=ticket, to_status=ticket.status)
        .select_related("actor")
        .order_by("-created_at", "-id")
        .first()
    )
    status = ticket.get_status_display()
    if last is not None and last.actor is not None and last.kind == TicketEventKind.STATUS_CHANGED:
        return _("Already “%(status)s” by %(name)s at %(time)s.") % {
            "status": status,
            "name": last.actor.get_full_name() or last.actor.get_username(),
            "time": timezone.localtime(last.created_at).strftime("%H:%M"),
        }
    return _("Not possible while the ticket is “%(status)s”.") % {"status": status}


def _schedule_side_effects(*, ticket: RefundTicket, event: TicketEvent) -> None:
    from tickets import csat, notifications, services

    services.publish_ticket_changed(ticket=ticket)
    notifications.notify_status_changed(ticket=ticket, event=event)
    csat.request_rating(ticket=ticket)


def _cny(cents: int) -> str:
    from tickets.formatting import format_cny

    return format_cny(cents)
