"""Writes on orders and refund tickets.

Every function here that changes a ticket locks its row, writes the change and
its TicketEvent in one transaction, and schedules side effects (socket pushes,
Celery tasks) with `transaction.on_commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging import realtime
from messaging.models import Conversation
from refundchat import rate_limits
from refundchat.celery import queue_after_commit
from refundchat.errors import Refused
from tickets import notifications, selectors
from tickets.models import (
    Label,
    Order,
    RefundKind,
    RefundReason,
    RefundTicket,
    RefundTicketItem,
    Team,
    TicketEvent,
    TicketEventKind,
    TicketLabel,
)
from tickets.roles import can_handle_tickets, can_use_console


class TicketError(Exception):
    """A request that breaks a business rule; the message is shown to the user as it is."""


@dataclass(frozen=True)
class RequestedItem:
    order_item_id: int
    quantity: int


def check_refund_request(
    *, order: Order, kind: str, reason: str, items: Sequence[RequestedItem]
) -> list[tuple[int, int, int]]:
    """Validate a refund request against the order; return (item id, quantity, unit price) rows.

    Must run while the order row is locked, so that two requests for the same
    item cannot both pass.
    """
    if kind not in RefundKind.values:
        raise TicketError(_("Choose refund only or return and refund."))
    if reason not in RefundReason.values:
        raise TicketError(_("Choose a reason for the refund."))
    if not items:
        raise TicketError(_("Choose at least one item to refund."))
    order_items = {item.pk: item for item in order.items.all()}
    available = selectors.refundable_quantities(order=order)
    blocked = selectors.items_in_open_tickets(order=order)
    rows: list[tuple[int, int, int]] = []
    seen: set[int] = set()
    for requested in items:
        order_item = order_items.get(requested.order_item_id)
        if order_item is None or requested.order_item_id in seen:
            raise TicketError(_("That item is not part of this order."))
        seen.add(requested.order_item_id)
        if requested.order_item_id in blocked:
            raise TicketError(
                _("“%(title)s” already has an open refund request. Continue in that conversation.")
                % {"title": order_item.title}
            )
        if not 1 <= requested.quantity <= available[order_item.pk]:
            raise TicketError(
                _("You can ask a refund for at most %(count)d of “%(title)s”.")
                % {"count": available[order_item.pk], "title": order_item.title}
            )
        rows.append((order_item.pk, requested.quantity, order_item.unit_price_cents))
    return rows


def create_refund_ticket(
    *,
    buyer: User,
    order_no: str,
    kind: str,
    reason: str,
    items: Sequence[RequestedItem],
    description: str = "",
    language: str = "zh-hans",
    payout_method: str = "",
    payout_account: str = "",
) -> RefundTicket:
    """Open a refund ticket and its conversation for items of one of the buyer's orders.

    A payout account (bank card, Alipay, WeChat) is checked and stored encrypted, with its masked form.
    """
    from messaging import services as messaging_services
    from tickets import payouts

    rate_limits.check_new_ticket_allowed(buyer_id=buyer.pk)
    sealed = payouts.seal_payout_account(method=payout_method, account=payout_account)
    with transaction.atomic():
        # The lock serialises requests on one order: no item can end up in two open tickets.
        order = selectors.get_buyer_order(buyer=buyer, order_no=order_no, for_update=True)
        rows = check_refund_request(order=order, kind=kind, reason=reason, items=items)
        now = timezone.now()
        ticket = RefundTicket.objects.create(
            order=order,
            buyer=buyer,
            kind=kind,
            reason=reason,
            description=description.strip(),
            language=language,
            requested_amount_cents=sum(quantity * price for _id, quantity, price in rows),
            first_response_due_at=now + settings.REFUNDCHAT_FIRST_RESPONSE_SLA,
            payout_method=sealed.method,
            payout_account_encrypted=sealed.encrypted,
            payout_account_masked=sealed.masked,
        )
        RefundTicketItem.objects.bulk_create(
            RefundTicketItem(ticket=ticket, order_item_id=item_id, quantity=quantity)
            for item_id, quantity, _price in rows
        )
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.CREATED,
            actor=buyer,
            to_status=ticket.status,
            data={"kind": kind, "reason": reason, "items": [[item_id, quantity] for item_id, quantity, _p in rows]},
        )
        messaging_services.open_conversation(ticket=ticket)
        publish_ticket_changed(ticket=ticket)
        notifications.notify_ticket_created(ticket=ticket)
        # Not queued (broker down): the beat task assign_waiting routes it a minute later.
        queue_after_commit("tickets.tasks.triage_new_ticket", ticket.pk)
    return ticket


def claim_ticket(*, ticket_id: int, agent: User) -> RefundTicket:
    """Assign an open ticket to `agent`; refused when another agent already holds it."""
    if not can_handle_tickets(agent):
        raise TicketError(_("You do not have permission to handle tickets."))
    with transaction.atomic():
        ticket = _locked_open_ticket(ticket_id=ticket_id)
        if ticket.assigned_agent_id == agent.pk:
            return ticket
        if ticket.assigned_agent is not None:
            raise TicketError(_("Already claimed by %(name)s.") % {"name": ticket.assigned_agent.get_username()})
        set_assignee(ticket=ticket, agent=agent, actor=agent, how="claim")
    return ticket


def transfer_ticket(*, ticket_id: int, by: User, to_agent_id: int, note: str = "") -> RefundTicket:
    """Hand a ticket to another agent, with a note for them (internal, never shown to the buyer)."""
    if not can_handle_tickets(by):
        raise TicketError(_("You do not have permission to handle tickets."))
    target = User.objects.filter(pk=to_agent_id, is_active=True).first()
    if target is None or not can_handle_tickets(target):
        raise TicketError(_("Choose an agent to hand the ticket to."))
    with transaction.atomic():
        ticket = _locked_open_ticket(ticket_id=ticket_id)
        if ticket.assigned_agent_id == target.pk:
            raise TicketError(_("%(name)s already has this ticket.") % {"name": target.get_username()})
        set_assignee(ticket=ticket, agent=target, actor=by, how="transfer", note=note.strip()[:500])
    return ticket


def unassign_ticket(*, ticket_id: int, by: User) -> RefundTicket:
    """Put a ticket back in the unassigned queue."""
    if not can_handle_tickets(by):
        raise TicketError(_("You do not have permission to handle tickets."))
    with transaction.atomic():
        ticket = _locked_open_ticket(ticket_id=ticket_id)
        if ticket.assigned_agent_id is not None:
            set_assignee(ticket=ticket, agent=None, actor=by, how="unassign")
    return ticket


def _locked_open_ticket(*, ticket_id: int) -> RefundTicket:
    ticket = RefundTicket.objects.select_for_update(of=("self",)).select_related("assigned_agent").get(pk=ticket_id)
    if not ticket.is_open:
        raise TicketError(_("This ticket is closed."))
    return ticket


def set_assignee(*, ticket: RefundTicket, agent: User | None, actor: User | None, how: str, note: str = "") -> None:
    """Change who handles a locked ticket: the field, its event, the agent's seat in the chat, the consoles."""
    from messaging import services as messaging_services

    previous = ticket.assigned_agent_id
    ticket.assigned_agent = agent
    ticket.save(update_fields=["assigned_agent", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.ASSIGNED,
        actor=actor,
        reason=note,
        data={"agent_id": agent.pk if agent else None, "previous_agent_id": previous, "how": how},
        visible_to_buyer=False,
    )
    if agent is not None:
        messaging_services.add_agent(conversation_id=ticket.conversation.pk, agent=agent)
    publish_ticket_changed(ticket=ticket)


def record_staff_reply(*, ticket_id: int, agent: User) -> None:
    """Note the first human answer on a ticket (the first-response SLA stops here).

    Called inside the transaction that stores the reply.
    """
    ticket = RefundTicket.objects.select_for_update().get(pk=ticket_id)
    if ticket.first_responded_at is not None:
        return
    ticket.first_responded_at = timezone.now()
    ticket.save(update_fields=["first_responded_at", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.FIRST_RESPONSE,
        actor=agent,
        visible_to_buyer=False,
    )
    publish_ticket_changed(ticket=ticket, notify_buyer=False)


def publish_ticket_changed(*, ticket: RefundTicket, notify_buyer: bool = True) -> None:
    """Tell consoles, the pages open on the ticket and, unless the change is internal, the buyer's tabs."""
    frame = {
        "type": "ticket.updated",
        "ticket_id": ticket.pk,
        "status": ticket.status,
        "assigned_agent_id": ticket.assigned_agent_id,
    }
    realtime.publish(group=realtime.QUEUE_GROUP, frame=frame)
    conversation_id = Conversation.objects.filter(ticket_id=ticket.pk).values_list("pk", flat=True).first()
    if conversation_id is not None:
        realtime.publish(group=realtime.conversation_group(conversation_id), frame=frame)
    if notify_buyer:
        realtime.publish(group=realtime.user_group(ticket.buyer_id), frame=frame)


# --- The agents' workspace: labels and team hand-overs ---------------------------------------------------------


class WorkspaceRefused(Refused):
    """A label or team change that was not made; nothing changed."""


def set_labels(*, ticket_id: int, by: User, label_ids: Iterable[int]) -> RefundTicket:
    """Put exactly these labels on a ticket; one event lists what was added and removed."""
    if not can_use_console(by):
        raise WorkspaceRefused("not_permitted", _("You may not label tickets."))
    wanted = set(label_ids)
    known = set(Label.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted - known:
        raise WorkspaceRefused("unknown_label", _("That label does not exist (any more)."))
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
        current = set(TicketLabel.objects.filter(ticket=ticket).values_list("label_id", flat=True))
        added, removed = sorted(wanted - current), sorted(current - wanted)
        if not added and not removed:
            return ticket
        TicketLabel.objects.filter(ticket=ticket, label_id__in=removed).delete()
        TicketLabel.objects.bulk_create(TicketLabel(ticket=ticket, label_id=label_id) for label_id in added)
        names = dict(Label.objects.filter(pk__in=added + removed).values_list("pk", "name"))
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.LABELS,
            actor=by,
            reason=", ".join([f"+{names[i]}" for i in added] + [f"−{names[i]}" for i in removed])[:500],
            data={"added": added, "removed": removed},
            visible_to_buyer=False,
        )
        ticket.save(update_fields=["updated_at"])
        publish_ticket_changed(ticket=ticket, notify_buyer=False)
    return ticket


def transfer_to_team(*, ticket_id: int, by: User, team: str, note: str = "") -> RefundTicket:
    """Hand an open ticket to the finance or warehouse team with a note ("" hands it back to the agents).

    The assigned agent keeps the conversation with the buyer; the team answers in notes and hands back.
    """
    if not can_use_console(by):
        raise WorkspaceRefused("not_permitted", _("You may not hand tickets over."))
    if team and team not in Team.values:
        raise WorkspaceRefused("unknown_team", _("Choose the finance or the warehouse team."))
    note = note.strip()[:500]
    if team and not note:
        raise WorkspaceRefused("note_required", _("Tell the team what you need from them."))
    with transaction.atomic():
        ticket = RefundTicket.objects.select_for_update(of=("self",)).get(pk=ticket_id)
        if not ticket.is_open:
            raise WorkspaceRefused("closed", _("This ticket is closed."))
        if ticket.team == team:
            raise WorkspaceRefused(
                "unchanged",
                _("The ticket is already with %(team)s.") % {"team": Team(team).label}
                if team
                else _("The ticket is not with a team."),
            )
        previous = ticket.team
        ticket.team = team
        ticket.save(update_fields=["team", "updated_at"])
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.TEAM,
            actor=by,
            reason=note,
            data={"team": team, "previous_team": previous},
            visible_to_buyer=False,
        )
        publish_ticket_changed(ticket=ticket, notify_buyer=False)
    return ticket
