"""The triage assistant's writes: start a dialog, run its steps, hand off to an agent and take it back.

Every step locks the dialog row, so the buyer's messages are processed one at a time in seq order;
`last_seq` on the row makes a resent message or a replayed task a no-op. What the assistant says goes through
messaging.services (its own message kind, no sender); approvals go through the workflow's express-refund rule;
a hand-off writes an ASSISTANT_HANDOFF TicketEvent, the agent's summary note (tickets/notes.py) and queues the
ticket for routing (tickets/routing.py) after commit.
"""

from __future__ import annotations

import uuid
from collections import Counter

from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from messaging import services as messaging_services
from messaging.assistant import dialog as flow
from messaging.assistant import knowledge
from messaging.assistant.classifier import language_of
from messaging.models import AssistantDialog, AssistantState, AssistantStep, Conversation, Message, MessageKind
from refundchat.celery import queue_after_commit
from refundchat.errors import Refused
from tickets.formatting import format_cny
from tickets.models import RefundReason, RefundTicket, TicketEvent, TicketEventKind
from tickets.roles import can_handle_tickets

ASSISTANT_USERNAME = "refund-assistant"
_KEYS = uuid.UUID("6f1c1e52-6a57-4c55-9d0e-7b0c2a6f7a11")


class AssistantRefused(Refused):
    """A hand-back that was not made; nothing changed."""


def assistant_user() -> User:
    """The account the assistant writes its internal notes as: it may use the console, never log in or
    handle tickets (so routing never picks it)."""
    user, created = User.objects.get_or_create(
        username=ASSISTANT_USERNAME, defaults={"first_name": "退款助手", "is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.user_permissions.add(Permission.objects.get(codename="use_console", content_type__app_label="tickets"))
    return user


def start_dialog(*, ticket_id: int) -> AssistantDialog | None:
    """Open the assistant's dialog on a new ticket: greet the buyer, show the order, hold routing."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("ticket__buyer", "ticket__order")
            .get(ticket_id=ticket_id)
        )
        ticket = conversation.ticket
        if not ticket.is_open or ticket.assigned_agent_id is not None:
            return None
        dialog, created = AssistantDialog.objects.get_or_create(
            conversation=conversation,
            defaults={"state": AssistantState.CONFIRM_ORDER, "language": _language(ticket.language)},
        )
        if not created:
            return dialog  # a retried task
        conversation.assistant_active = True
        conversation.save(update_fields=["assistant_active"])
        with translation.override(dialog.language):
            _say(dialog=dialog, replies=flow.opening(dialog=dialog, ticket=ticket), key="opening")
        _record(dialog=dialog, seq=0, before="", action="opened")
    return dialog


def process_pending(*, conversation_id: int) -> int:
    """Run one dialog step for each buyer message not processed yet, in seq order; returns how many ran."""
    ran = 0
    while _step_next(conversation_id=conversation_id):
        ran += 1
    return ran


def _step_next(*, conversation_id: int) -> bool:
    with transaction.atomic():
        dialog = (
            AssistantDialog.objects.select_for_update(of=("self",))
            .select_related("conversation__ticket__order", "conversation__ticket__buyer")
            .filter(conversation_id=conversation_id)
            .first()
        )
        if dialog is None or dialog.state == AssistantState.HANDED_OFF or not settings.REFUNDCHAT_ASSISTANT_ENABLED:
            return False
        ticket = dialog.conversation.ticket
        message = (
            Message.objects.filter(conversation_id=conversation_id, sender_id=ticket.buyer_id, seq__gt=dialog.last_seq)
            .order_by("seq")
            .first()
        )
        if message is None:
            return False
        if _staff_spoke(dialog=dialog, ticket=ticket, before_seq=message.seq):
            # An agent claimed the ticket and answered meanwhile: the conversation is theirs now.
            before = dialog.state
            dialog.last_seq = message.seq
            with translation.override(dialog.language):
                _hand_off(
                    dialog=dialog, ticket=ticket, reason=flow.Reason.AGENT_TOOK_OVER, detail={}, key="", tell=False
                )
            dialog.save()
            _record(dialog=dialog, seq=message.seq, before=before, action="handoff", text=message.body)
            return True
        dialog.last_seq = message.seq
        language = language_of(message.body) if message.kind == MessageKind.TEXT else None
        dialog.language = language or dialog.language
        with translation.override(dialog.language):
            _apply(dialog=dialog, ticket=ticket, message=message)
    return True


def _apply(*, dialog: AssistantDialog, ticket: RefundTicket, message: Message) -> None:
    before = dialog.state
    outcome = flow.do_step(dialog=dialog, ticket=ticket, message=message)
    dialog.misunderstood = outcome.misunderstood
    if outcome.problem:
        dialog.problem = outcome.problem
    if outcome.evidence_from_here:
        dialog.evidence_since_seq = message.seq
    dialog.state = outcome.state
    replies = list(outcome.replies)
    action = outcome.action
    if outcome.approve:
        from tickets import timers

        # The workflow's own rule and transitions: the assistant has no way of its own to approve.
        if timers.try_express_refund(ticket_id=ticket.pk):
            ticket.refresh_from_db(fields=["approved_amount_cents", "status"])
            replies.append(flow.approved_reply(ticket))
            action = "auto_approved"
        else:
            outcome.handoff = flow.Reason.NEEDS_APPROVAL
    key = f"step:{message.seq}"
    _say(dialog=dialog, replies=replies, key=key)
    prediction = outcome.prediction
    detail = dict(outcome.detail)
    if outcome.handoff:
        detail["handoff"] = outcome.handoff
        _hand_off(dialog=dialog, ticket=ticket, reason=outcome.handoff, detail=detail, key=key)
        action = "handoff"
    dialog.save()
    _record(
        dialog=dialog,
        seq=message.seq,
        before=before,
        action=action,
        text=message.body,
        intent=prediction.intent if prediction else "",
        confidence=prediction.confidence if prediction else 0.0,
        detail=detail,
    )


def _staff_spoke(*, dialog: AssistantDialog, ticket: RefundTicket, before_seq: int) -> bool:
    return (
        Message.objects.filter(
            conversation_id=dialog.conversation_id, seq__gt=dialog.last_seq, seq__lt=before_seq, sender__isnull=False
        )
        .exclude(sender_id=ticket.buyer_id)
        .exists()
    )


def _hand_off(
    *,
    dialog: AssistantDialog,
    ticket: RefundTicket,
    reason: str,
    detail: dict[str, object],
    key: str,
    tell: bool = True,
) -> None:
    """Silence the assistant, tell the buyer (unless an agent is already there), leave the agent a summary and
    put the ticket into routing."""
    from tickets import notes

    dialog.resume_state = dialog.state if dialog.state != AssistantState.DONE else AssistantState.PROBLEM
    dialog.state = AssistantState.HANDED_OFF
    dialog.handoff_reason = reason
    Conversation.objects.filter(pk=dialog.conversation_id).update(assistant_active=False)
    if tell:
        _say(dialog=dialog, replies=[flow.handoff_reply()], key=f"{key}:handoff")
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEventKind.ASSISTANT_HANDOFF,
        reason=reason,
        data={**detail, "problem": dialog.problem, "state": dialog.resume_state},
        visible_to_buyer=False,
    )
    with translation.override(settings.LANGUAGE_CODE):
        body = summary_note(dialog=dialog, ticket=ticket, reason=reason)
    notes.add_note(ticket_id=ticket.pk, author=assistant_user(), body=body)
    if ticket.assigned_agent_id is None:
        queue_after_commit("tickets.tasks.route_ticket", ticket.pk)


def hand_back(*, ticket_id: int, by: User) -> AssistantDialog:
    """An agent gives the conversation back to the assistant, which continues where it handed off."""
    if not can_handle_tickets(by):
        raise AssistantRefused("not_permitted", _("You do not have permission to handle tickets."))
    with transaction.atomic():
        dialog = (
            AssistantDialog.objects.select_for_update(of=("self",))
            .select_related("conversation__ticket")
            .filter(conversation__ticket_id=ticket_id)
            .first()
        )
        if dialog is None or dialog.state != AssistantState.HANDED_OFF:
            raise AssistantRefused("not_handed_off", _("The assistant is not waiting for this ticket."))
        ticket = dialog.conversation.ticket
        if not ticket.is_open:
            raise AssistantRefused("closed", _("This ticket is closed."))
        conversation = Conversation.objects.select_for_update(of=("self",)).get(pk=dialog.conversation_id)
        # What the buyer said to the agent meanwhile was for the agent: the assistant starts after it.
        dialog.last_seq = conversation.last_seq
        dialog.state = dialog.resume_state or AssistantState.PROBLEM
        dialog.misunderstood = 0
        dialog.handoff_reason = ""
        dialog.save()
        conversation.assistant_active = True
        conversation.save(update_fields=["assistant_active"])
        event = TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEventKind.ASSISTANT_HANDBACK,
            actor=by,
            data={"state": dialog.state},
            visible_to_buyer=False,
        )
        with translation.override(dialog.language):
            _say(dialog=dialog, replies=flow.handback_replies(dialog.state, dialog.problem), key=f"handback:{event.pk}")
        _record(dialog=dialog, seq=0, before=AssistantState.HANDED_OFF, action="handed_back", detail={"by": by.pk})
    return dialog


# --- the agent's summary -----------------------------------------------------------------------------


def summary_note(*, dialog: AssistantDialog, ticket: RefundTicket, reason: str) -> str:
    """Everything the agent needs to take over without asking the buyer again."""
    from media.models import Attachment, AttachmentKind

    order = ticket.order
    items = "；".join(
        f"{row.order_item.title} × {row.quantity}（{format_cny(row.order_item.unit_price_cents * row.quantity)}）"
        for row in ticket.items.select_related("order_item")
    )
    words = list(
        Message.objects.filter(conversation_id=dialog.conversation_id, sender_id=ticket.buyer_id, kind=MessageKind.TEXT)
        .exclude(body="")
        .order_by("-seq")
        .values_list("body", flat=True)[:6]
    )
    quoted = " / ".join(f"“{body[:120]}”" for body in reversed(words)) or "—"
    files = Attachment.objects.filter(ticket=ticket, uploader_id=ticket.buyer_id).order_by("pk")
    by_kind = Counter(AttachmentKind(kind).label for kind in files.values_list("kind", flat=True))
    evidence = ", ".join(f"{label} × {n}" for label, n in by_kind.items()) or _("none")
    problem = str(RefundReason(dialog.problem).label) if dialog.problem else _("not established")
    if dialog.problem:
        check = knowledge.check_policy(ticket=ticket, problem=dialog.problem)
        policy = flow.joined(*check.notes)
        suggestion = (
            _("Approve %(kind)s of %(amount)s.")
            % {"kind": check.refund_kind_label(), "amount": format_cny(check.amount_cents)}
            if check.within_policy
            else _("Decide: the case is outside the written policy.")
        )
    else:
        policy = _("not checked (no problem type yet)")
        suggestion = _("Ask the buyer what is wrong.")
    if reason == flow.Reason.ANGRY:
        suggestion = flow.joined(_("Calm the buyer first."), suggestion)
    lines = [
        _("Refund assistant summary — handed off: %(reason)s") % {"reason": flow.REASON_LABELS[reason]},
        _("Order: %(order_no)s (paid %(total)s)")
        % {"order_no": order.order_no, "total": format_cny(order.paid_total_cents)},
        _("Items: %(items)s") % {"items": items},
        _("Problem: %(problem)s") % {"problem": problem},
        _("Buyer's words: %(words)s") % {"words": quoted},
        _("Evidence: %(evidence)s") % {"evidence": evidence},
        _("Policy check: %(policy)s") % {"policy": policy},
        _("Suggested action: %(action)s") % {"action": suggestion},
    ]
    return "\n".join(lines)[:2000]


# --- helpers -----------------------------------------------------------------------------------------


def _language(code: str) -> str:
    return "en" if code.startswith("en") else "zh-hans"


def _say(*, dialog: AssistantDialog, replies: list[flow.Reply], key: str) -> None:
    for index, reply in enumerate(replies):
        messaging_services.post_assistant_message(
            conversation_id=dialog.conversation_id,
            body=reply.body,
            data=reply.data,
            key=uuid.uuid5(_KEYS, f"{dialog.pk}:{key}:{index}"),
        )


def _record(
    *,
    dialog: AssistantDialog,
    seq: int,
    before: str,
    action: str,
    text: str = "",
    intent: str = "",
    confidence: float = 0.0,
    detail: dict[str, object] | None = None,
) -> None:
    AssistantStep.objects.create(
        dialog=dialog,
        seq=seq,
        state_before=before,
        state_after=dialog.state,
        text=text[:500],
        intent=intent,
        confidence=confidence,
        action=action,
        detail=detail or {},
    )
