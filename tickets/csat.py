"""Satisfaction (CSAT): the buyer rates a finished ticket once, from 1 to 5, with an optional comment."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _

from refundchat.errors import Refused
from tickets import outbox
from tickets.models import (
    FINAL_STATUSES,
    OutboxKind,
    OutboxMessage,
    RefundTicket,
    SatisfactionRating,
    TicketEvent,
    TicketEventKind,
)

MIN_SCORE, MAX_SCORE = 1, 5
MAX_COMMENT_LENGTH = 1000


class RatingRefused(Refused):
    """A rating that was not recorded; nothing changed."""


def request_rating(*, ticket: RefundTicket) -> None:
    """Ask the buyer for a rating in the chat, once, when the ticket has reached a final state.

    Runs inside the transaction of the state change: the request goes through the outbox, which
    posts it after commit. Its key makes a second call for the same ticket a no-op.
    """
    if ticket.status not in FINAL_STATUSES:
        return
    from tickets.notifications import system_message_key

    key = system_message_key(ticket_id=ticket.pk, event="csat")
    if OutboxMessage.objects.filter(idempotency_key=key).exists():
        return
    with translation.override(ticket.language):
        text = _("How did we handle your request? Please rate us from 1 to 5 stars below; a comment is welcome.")
    outbox.enqueue(ticket=ticket, kind=OutboxKind.CHAT, payload={"body": text, "csat": True}, idempotency_key=key)


def submit_rating(*, ticket_id: int, buyer: User, score: object, comment: str = "") -> SatisfactionRating:
    """Record the buyer's rating of their finished ticket; refused when out of range or already given."""
    from tickets.services import publish_ticket_changed

    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise RatingRefused("bad_score", _("Choose from 1 to 5 stars."))
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise RatingRefused(
            "comment_too_long", _("The comment can have at most %(max)d characters.") % {"max": MAX_COMMENT_LENGTH}
        )
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).filter(pk=ticket_id, buyer=buyer).first()
        if ticket is None:
            raise RatingRefused("not_found", _("No such ticket."))
        if ticket.status not in FINAL_STATUSES:
            raise RatingRefused("not_finished", _("You can rate the service once the request is finished."))
        if SatisfactionRating.objects.filter(ticket=ticket).exists():
            raise RatingRefused("already_rated", _("You have already rated this request. Thank you!"))
        try:
            with transaction.atomic():
                rating = SatisfactionRating.objects.create(ticket=ticket, score=score, comment=comment)
        except IntegrityError:  # a concurrent rating won, despite the lock (defence in depth)
            raise RatingRefused("already_rated", _("You have already rated this request. Thank you!")) from None
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.RATING,
            actor=buyer,
            reason=comment[:500],
            data={"score": score},
            visible_to_buyer=True,
        )
        publish_ticket_changed(ticket=ticket)
    return rating
