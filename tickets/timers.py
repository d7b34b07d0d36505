"""Promises with a deadline, kept by Celery beat: escalate, remind, close, alarm, and express refunds.

`run_timers` is idempotent: every rule locks the ticket, records what it did as
a TicketEvent of kind "timer" (with the rule's name), and does nothing for a
ticket that already has that record (the next-response rule: for a waiting
period that already has one). Run it as often as you like.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import BigIntegerField, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from messaging.models import Message, MessageKind
from tickets import outbox, services, workflow
from tickets.formatting import format_cny, format_duration
from tickets.models import (
    OPEN_STATUSES,
    OutboxKind,
    RefundKind,
    RefundTicket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from tickets.notifications import system_message_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    name: str
    # Tickets the rule may act on at `now` (before the per-ticket check under the lock).
    candidates: Callable[[datetime], QuerySet[RefundTicket]]
    act: Callable[[RefundTicket, datetime], None]
    # Most rules act once per ticket (a timer event with the rule's name says it is done). A rule that
    # may act again later (once per waiting period) says in its own candidates what is done.
    once_per_ticket: bool = True


def _entered_before(status: TicketStatus, moment: datetime) -> QuerySet[RefundTicket]:
    return RefundTicket.objects.filter(status=status).filter(
        Exists(TicketEvent.objects.filter(ticket=OuterRef("pk"), to_status=status, created_at__lte=moment))
    )


def _not_done(rule: str) -> Q:
    return ~Q(Exists(TicketEvent.objects.filter(ticket=OuterRef("pk"), kind=TicketEventKind.TIMER, data__timer=rule)))


# --- the rules --------------------------------------------------------------------


def _unanswered(now: datetime) -> QuerySet[RefundTicket]:
    return RefundTicket.objects.filter(
        status__in=OPEN_STATUSES, first_responded_at__isnull=True, first_response_due_at__lt=now
    )


def _escalate_unanswered(ticket: RefundTicket, now: datetime) -> None:
    """Past the first-response promise: flag it in the queue and tell the team leads."""
    ticket.sla_breached_at = now
    ticket.save(update_fields=["sla_breached_at", "updated_at"])
    _record(ticket, "first_response_breached")
    services.publish_ticket_changed(ticket=ticket, notify_buyer=False)
    _email_role(
        ticket,
        permission="tickets.arbitrate",
        subject=_("[RefundChat] %(number)s has had no answer past its promised time") % {"number": ticket.number},
        body=_("Nobody has answered %(number)s; the buyer was promised an answer by %(due)s.")
        % {"number": ticket.number, "due": timezone.localtime(ticket.first_response_due_at).strftime("%m-%d %H:%M")},
    )


NEXT_RESPONSE_RULE = "next_response_breached"


def _with_waiting_buyer_message() -> QuerySet[Any]:
    """Tickets annotated with the buyer message that waits for a staff reply: the buyer's first chat message
    after the last one staff wrote (`waiting_seq`, `waiting_since`; None when staff spoke last).

    Staff are the people other than the buyer who write in the chat (text, files, cards); system messages
    have no sender and do not answer the buyer.
    """
    said = Message.objects.filter(conversation__ticket_id=OuterRef("pk"), sender__isnull=False).exclude(
        kind=MessageKind.SYSTEM
    )
    last_staff_seq = said.exclude(sender_id=OuterRef("buyer_id")).order_by("-seq").values("seq")[:1]
    waiting = (
        Message.objects.filter(conversation__ticket_id=OuterRef("pk"), sender_id=OuterRef("buyer_id"))
        .exclude(kind=MessageKind.SYSTEM)
        .filter(seq__gt=Coalesce(OuterRef("last_staff_seq"), 0))
        .order_by("seq")
    )
    return RefundTicket.objects.annotate(last_staff_seq=Subquery(last_staff_seq)).annotate(
        waiting_seq=Subquery(waiting.values("seq")[:1]), waiting_since=Subquery(waiting.values("created_at")[:1])
    )


def _unanswered_reply(now: datetime) -> QuerySet[RefundTicket]:
    """Answered once, and now a buyer message has waited past the next-response promise, in a waiting
    period not reported yet (a timer event names the period by the seq of the message that opened it)."""
    reported = (
        TicketEvent.objects.filter(ticket=OuterRef("pk"), kind=TicketEventKind.TIMER, data__timer=NEXT_RESPONSE_RULE)
        .annotate(since_seq=Cast(KT("data__since_seq"), BigIntegerField()))
        .filter(since_seq=OuterRef("waiting_seq"))
    )
    return (
        _with_waiting_buyer_message()
        .filter(
            status__in=OPEN_STATUSES,
            first_responded_at__isnull=False,
            waiting_since__lt=now - settings.REFUNDCHAT_NEXT_RESPONSE_SLA,
        )
        .filter(~Exists(reported))
    )


def _waiting_period(ticket_id: int) -> tuple[int, datetime] | None:
    """The seq and time of the buyer message that opened the current waiting period, if one is open."""
    row = _with_waiting_buyer_message().filter(pk=ticket_id).values_list("waiting_seq", "waiting_since").first()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def _escalate_unanswered_reply(ticket: RefundTicket, now: datetime) -> None:
    """A buyer has waited past the next-response promise: flag it in the queue and tell the team leads,
    once per waiting period (the period is named by the seq of the buyer message that opened it)."""
    period = _waiting_period(ticket.pk)
    assert period is not None  # checked by the candidates query under the ticket's lock
    since_seq, since = period
    ticket.next_response_breached_at = now
    ticket.save(update_fields=["next_response_breached_at", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.TIMER,
        data={"timer": NEXT_RESPONSE_RULE, "since_seq": since_seq, "waiting_since": since.isoformat()},
        visible_to_buyer=False,
    )
    services.publish_ticket_changed(ticket=ticket, notify_buyer=False)
    _email_role(
        ticket,
        permission="tickets.arbitrate",
        subject=_("[RefundChat] %(number)s: the buyer is waiting for a reply") % {"number": ticket.number},
        body=_(
            "The buyer of %(number)s wrote at %(since)s and has had no reply since; "
            "the promise is an answer within %(sla)s."
        )
        % {
            "number": ticket.number,
            "since": timezone.localtime(since).strftime("%m-%d %H:%M"),
            "sla": format_duration(settings.REFUNDCHAT_NEXT_RESPONSE_SLA),
        },
    )


def clear_answered_replies() -> int:
    """Lower the next-response flag of tickets whose waiting buyer got a staff reply (or that ended).

    The message path is not touched for this: the beat run does it, so the flag lags a reply by at most
    one run. Returns how many flags were lowered.
    """
    cleared = 0
    for ticket_id in RefundTicket.objects.filter(next_response_breached_at__isnull=False).values_list("pk", flat=True):
        with transaction.atomic():
            ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
            if ticket.next_response_breached_at is None:
                continue
            reported = (
                TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.TIMER, data__timer=NEXT_RESPONSE_RULE)
                .order_by("-created_at", "-id")
                .values_list("data__since_seq", flat=True)
                .first()
            )
            period = _waiting_period(ticket.pk)
            if ticket.is_open and period is not None and period[0] == reported:
                continue  # the same buyer message is still waiting
            ticket.next_response_breached_at = None
            ticket.save(update_fields=["next_response_breached_at", "updated_at"])
            services.publish_ticket_changed(ticket=ticket, notify_buyer=False)
            cleared += 1
    return cleared


def _return_reminder_due(now: datetime) -> QuerySet[RefundTicket]:
    return _entered_before(TicketStatus.RETURN_REQUIRED, now - settings.REFUNDCHAT_RETURN_REMINDER_AFTER)


def _remind_return(ticket: RefundTicket, now: datetime) -> None:
    closes = _last_entered(ticket, TicketStatus.RETURN_REQUIRED) + settings.REFUNDCHAT_RETURN_CLOSE_AFTER
    with translation.override(ticket.language):
        text = _(
            "Reminder: please send the items back and enter the tracking number here. "
            "Without it the request closes on %(date)s."
        ) % {"date": timezone.localtime(closes).strftime("%m-%d %H:%M")}
    _record(ticket, "return_reminder")
    outbox.enqueue(
        ticket=ticket,
        kind=OutboxKind.CHAT,
        payload={"body": text},
        idempotency_key=system_message_key(ticket_id=ticket.pk, event="return_reminder"),
    )


def _return_close_due(now: datetime) -> QuerySet[RefundTicket]:
    return _entered_before(TicketStatus.RETURN_REQUIRED, now - settings.REFUNDCHAT_RETURN_CLOSE_AFTER)


def _close_unshipped(ticket: RefundTicket, now: datetime) -> None:
    _close(ticket, "return_not_shipped", _("the items were not sent back within 7 days."))


def _evidence_close_due(now: datetime) -> QuerySet[RefundTicket]:
    return _entered_before(TicketStatus.AWAITING_EVIDENCE, now - settings.REFUNDCHAT_EVIDENCE_CLOSE_AFTER)


def _close_without_evidence(ticket: RefundTicket, now: datetime) -> None:
    _close(ticket, "evidence_not_sent", _("the evidence asked for did not arrive within 7 days."))


def _refund_overdue(now: datetime) -> QuerySet[RefundTicket]:
    return _entered_before(TicketStatus.RETURN_RECEIVED, now - settings.REFUNDCHAT_REFUND_AFTER_RECEIPT)


def _alarm_refund_overdue(ticket: RefundTicket, now: datetime) -> None:
    _record(ticket, "refund_overdue")
    _email_role(
        ticket,
        permission="tickets.manage_payout",
        subject=_("[RefundChat] Refund overdue: %(number)s") % {"number": ticket.number},
        body=_("The warehouse received the return of %(number)s over 24 hours ago; the refund of %(amount)s is unpaid.")
        % {"number": ticket.number, "amount": format_cny(ticket.approved_amount_cents or 0)},
    )


RULES = (
    Rule("first_response_breached", _unanswered, _escalate_unanswered),
    Rule(NEXT_RESPONSE_RULE, _unanswered_reply, _escalate_unanswered_reply, once_per_ticket=False),
    Rule("return_reminder", _return_reminder_due, _remind_return),
    Rule("return_not_shipped", _return_close_due, _close_unshipped),
    Rule("evidence_not_sent", _evidence_close_due, _close_without_evidence),
    Rule("refund_overdue", _refund_overdue, _alarm_refund_overdue),
)


def run_timers(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every rule to every ticket it is due for; returns how many tickets each rule acted on."""
    now = now or timezone.now()
    clear_answered_replies()
    done: dict[str, int] = {}
    for rule in RULES:
        done[rule.name] = 0
        for ticket_id in _due(rule, now).values_list("pk", flat=True):
            if _apply(rule, ticket_id, now):
                done[rule.name] += 1
    return done


def _due(rule: Rule, now: datetime) -> QuerySet[RefundTicket]:
    candidates = rule.candidates(now)
    return candidates.filter(_not_done(rule.name)) if rule.once_per_ticket else candidates


def _apply(rule: Rule, ticket_id: int, now: datetime) -> bool:
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).select_related("order").get(pk=ticket_id)
        # Checked again under the lock: the ticket may have moved, or another beat run got here first.
        due = _due(rule, now).filter(pk=ticket_id).exists()
        if not due:
            return False
        rule.act(ticket, now)
    return True


def _close(ticket: RefundTicket, rule: str, why: str) -> None:
    _record(ticket, rule)
    with translation.override(ticket.language):
        reason = str(why)
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="close",
        user=None,
        system=workflow.Actor.SYSTEM,
        given=workflow.TransitionInput(reason=reason, data={"timer": rule}),
    )


def _record(ticket: RefundTicket, rule: str) -> None:
    TicketEvent.objects.create(ticket=ticket, kind=TicketEventKind.TIMER, data={"timer": rule}, visible_to_buyer=False)


def _last_entered(ticket: RefundTicket, status: TicketStatus) -> datetime:
    event = TicketEvent.objects.filter(ticket=ticket, to_status=status).order_by("-created_at").first()
    return event.created_at if event else ticket.created_at


def _email_role(ticket: RefundTicket, *, permission: str, subject: str, body: str) -> None:
    app_label, codename = permission.split(".")
    people = User.objects.filter(
        Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
        | Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label),
        is_active=True,
    ).exclude(email="")
    recipients = sorted(set(people.values_list("email", flat=True)))
    if recipients:
        outbox.enqueue(
            ticket=ticket, kind=OutboxKind.EMAIL, payload={"subject": subject, "body": body, "to": recipients}
        )
    else:
        logger.warning("nobody with %s to tell about %s: %s", permission, ticket.number, subject)


# --- express refunds (极速退款) ----------------------------------------------------


def express_refund_rule(ticket: RefundTicket) -> dict[str, object] | None:
    """Why this request may be refunded at once, or None. Recorded in the approval event."""
    limit = settings.REFUNDCHAT_EXPRESS_REFUND_MAX_CENTS
    if ticket.kind != RefundKind.REFUND_ONLY or ticket.requested_amount_cents > limit:
        return None
    since = timezone.now() - timedelta(days=90)
    history = RefundTicket.objects.filter(buyer_id=ticket.buyer_id).exclude(pk=ticket.pk)
    recent_refunds = history.filter(created_at__gte=since, status=TicketStatus.REFUNDED).count()
    ever_rejected = history.filter(status__in=[TicketStatus.REJECTED, TicketStatus.ESCALATED]).exists()
    account_days = (timezone.now() - ticket.buyer.date_joined).days
    if ever_rejected or recent_refunds >= settings.REFUNDCHAT_EXPRESS_REFUND_MAX_RECENT or account_days < 30:
        return None
    return {
        "rule": "express_refund",
        "max_amount_cents": limit,
        "recent_refunds_90d": recent_refunds,
        "account_age_days": account_days,
    }


def try_express_refund(*, ticket_id: int) -> bool:
    """Approve and pay a small refund-only request of a trustworthy buyer at once."""
    ticket = RefundTicket.objects.select_related("buyer", "order").get(pk=ticket_id)
    if ticket.status != TicketStatus.REQUESTED:
        return False
    rule = express_refund_rule(ticket)
    if rule is None:
        return False
    try:
        workflow.do_transition(
            ticket_id=ticket.pk,
            name="approve_refund_only",
            user=None,
            system=workflow.Actor.SYSTEM,
            given=workflow.TransitionInput(amount_cents=ticket.requested_amount_cents, data=rule),
        )
        workflow.do_transition(ticket_id=ticket.pk, name="request_payout", user=None, system=workflow.Actor.SYSTEM)
    except workflow.TransitionRefused as refused:
        # Someone acted first, or the order has nothing left to refund: a human takes it from here.
        logger.info("express refund of %s not applied: %s", ticket.number, refused.code)
        return False
    return True
