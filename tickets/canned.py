"""Canned replies: an agent's own and the team's, with variables filled from the ticket.

Variables are written {buyer_name}, {order_no}, {refund_amount} and {eta}. An
unknown variable, or a brace the agent typed, stays in the text as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from refundchat.errors import Refused
from tickets.formatting import format_cny
from tickets.models import CannedReply, RefundTicket, ReplyLanguage, TicketEvent, TicketStatus

VARIABLES = ("buyer_name", "order_no", "refund_amount", "eta")
VARIABLE = re.compile(r"\{([a-z_]+)\}")
MAX_TITLE_LENGTH = 80
MAX_BODY_LENGTH = 2000
# The picker lists at most this many replies.
PICKER_LIMIT = 200


class CannedReplyRefused(Refused):
    """A canned reply that was not saved or deleted."""


def can_manage_team_replies(user: User) -> bool:
    return bool(user.is_authenticated and user.has_perm("tickets.manage_team_replies"))


# --- reads -------------------------------------------------------------------------------------


def replies_for(*, user: User) -> QuerySet[CannedReply]:
    """The replies `user` may use: their own and the team's."""
    return CannedReply.objects.filter(Q(owner=user) | Q(owner__isnull=True)).order_by("title", "id")


def ticket_variables(*, ticket: RefundTicket, events: list[TicketEvent] | None = None) -> dict[str, str]:
    """The values of the variables for one ticket (the buyer, the order, what is refunded and when)."""
    buyer = ticket.buyer
    return {
        "buyer_name": buyer.get_full_name() or buyer.get_username(),
        "order_no": ticket.order.order_no,
        "refund_amount": format_cny(ticket.approved_amount_cents or ticket.requested_amount_cents),
        "eta": _eta(ticket=ticket, events=events),
    }


def _eta(*, ticket: RefundTicket, events: list[TicketEvent] | None) -> str:
    """When the current step is promised to be done, as the buyer reads it elsewhere (MM-DD HH:MM)."""
    from tickets.notifications import promised_by

    if ticket.status == TicketStatus.REFUNDED:
        return _("already paid")
    since: datetime | None = None
    if events is not None:
        reached = [event.created_at for event in events if event.to_status == ticket.status]
        since = reached[-1] if reached else None
    else:
        since = (
            TicketEvent.objects.filter(ticket=ticket, to_status=ticket.status)
            .order_by("-created_at", "-id")
            .values_list("created_at", flat=True)
            .first()
        )
    due = promised_by(status=ticket.status, since=since) if since else None
    if due is None and not ticket.first_responded_at:
        due = ticket.first_response_due_at
    return timezone.localtime(due).strftime("%m-%d %H:%M") if due else "—"


def render_text(*, body: str, values: dict[str, str]) -> str:
    """Fill the known {variables}; anything else stays visible for the agent to fix."""
    return VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), body)


@dataclass(frozen=True)
class RenderedReply:
    id: int
    title: str
    language: str
    language_label: str
    team: bool
    text: str


def rendered_replies(
    *, user: User, ticket: RefundTicket, events: list[TicketEvent] | None = None
) -> list[RenderedReply]:
    """The picker's list for a ticket: every usable reply with its variables filled (one query)."""
    values = ticket_variables(ticket=ticket, events=events)
    replies = replies_for(user=user)[:PICKER_LIMIT]
    # The ticket's language first: that is what the buyer reads.
    ordered = sorted(replies, key=lambda reply: reply.language != ticket.language)
    return [
        RenderedReply(
            id=reply.pk,
            title=reply.title,
            language=reply.language,
            language_label=str(reply.get_language_display()),
            team=reply.owner_id is None,
            text=render_text(body=reply.body, values=values),
        )
        for reply in ordered
    ]


def editable_reply(*, user: User, reply_id: int) -> CannedReply:
    """A reply `user` may change: their own, or a team one for managers; DoesNotExist otherwise."""
    scope = Q(owner=user)
    if can_manage_team_replies(user):
        scope |= Q(owner__isnull=True)
    return CannedReply.objects.filter(scope).get(pk=reply_id)


# --- writes ------------------------------------------------------------------------------------


def _check(*, title: str, language: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title:
        raise CannedReplyRefused("title_required", _("Give the reply a title."))
    if len(title) > MAX_TITLE_LENGTH:
        raise CannedReplyRefused("title_too_long", _("The title is too long."))
    if not body:
        raise CannedReplyRefused("body_required", _("Write the reply's text."))
    if len(body) > MAX_BODY_LENGTH:
        raise CannedReplyRefused(
            "body_too_long", _("A reply can have at most %(max)d characters.") % {"max": MAX_BODY_LENGTH}
        )
    if language not in ReplyLanguage.values:
        raise CannedReplyRefused("bad_language", _("Choose Chinese or English."))
    return title, body


def save_reply(
    *, user: User, title: str, language: str, body: str, team: bool = False, reply_id: int | None = None
) -> CannedReply:
    """Create (reply_id None) or change a personal reply, or a team reply when `user` is a manager."""
    title, body = _check(title=title, language=language, body=body)
    if team and not can_manage_team_replies(user):
        raise CannedReplyRefused("not_permitted", _("Only managers edit the team's replies."))
    with transaction.atomic():
        if reply_id is None:
            return CannedReply.objects.create(owner=None if team else user, title=title, language=language, body=body)
        try:
            reply = CannedReply.objects.select_for_update().get(pk=editable_reply(user=user, reply_id=reply_id).pk)
        except CannedReply.DoesNotExist:
            raise CannedReplyRefused("not_found", _("No such reply.")) from None
        reply.title, reply.language, reply.body = title, language, body
        reply.owner = None if team else user
        reply.save(update_fields=["title", "language", "body", "owner", "updated_at"])
    return reply


def delete_reply(*, user: User, reply_id: int) -> None:
    try:
        reply = editable_reply(user=user, reply_id=reply_id)
    except CannedReply.DoesNotExist:
        raise CannedReplyRefused("not_found", _("No such reply.")) from None
    reply.delete()
