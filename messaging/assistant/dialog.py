"""The triage assistant's dialog: one step per buyer message, decided from the dialog's stored state.

`do_step` runs under the dialog's row lock (messaging/assistant/services.py) and returns what to say and
where to go; it reads but does not write. The order of a case: confirm the order, ask the problem (quick
replies or free text), ask for the evidence that problem needs and check it, then check the policy and either
approve (the workflow's express-refund rule) or hand the case to an agent. At any point: policy questions are
answered, and "人工"/"agent", anger or two misunderstandings in a row hand off.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from messaging.assistant import knowledge, sentiment
from messaging.assistant.classifier import (
    POLICY_INTENTS,
    PROBLEM_INTENTS,
    Prediction,
    get_classifier,
    normalise,
)
from messaging.models import AssistantDialog, AssistantState, Message, MessageKind
from tickets.formatting import format_cny, format_duration
from tickets.models import RefundKind, RefundReason, RefundTicket

# The buyer asks for a person: always a hand-off, whatever the classifier thinks.
HANDOFF_WORDS = ("人工", "转人工", "真人", "agent", "human")
# Misunderstood messages in a row that hand the case off.
MAX_MISUNDERSTOOD = 2
RECENT_ORDERS = 5


class Reason:
    """Stable hand-off reason codes (TicketEvent.reason of ASSISTANT_HANDOFF; reports count them)."""

    BUYER_ASKED = "buyer_asked"
    NOT_UNDERSTOOD = "not_understood"
    ANGRY = "angry"
    NEEDS_JUDGEMENT = "needs_judgement"
    NEEDS_APPROVAL = "needs_approval"
    # An agent claimed the ticket and wrote in the chat while the assistant held it.
    AGENT_TOOK_OVER = "agent_took_over"


REASON_LABELS = {
    Reason.BUYER_ASKED: gettext_lazy("The buyer asked for a person"),
    Reason.NOT_UNDERSTOOD: gettext_lazy("Not understood twice in a row"),
    Reason.ANGRY: gettext_lazy("The buyer is upset"),
    Reason.NEEDS_JUDGEMENT: gettext_lazy("Needs an agent's judgement"),
    Reason.NEEDS_APPROVAL: gettext_lazy("Within policy, needs an agent's approval"),
    Reason.AGENT_TOOK_OVER: gettext_lazy("An agent took over"),
}


@dataclass(frozen=True)
class EvidenceRule:
    count: int
    kinds: frozenset[str]


# What each problem needs before the case moves on (photos or videos; voice notes and PDFs do not count).
PHOTO = frozenset({"image"})
PHOTO_OR_VIDEO = frozenset({"image", "video"})
EVIDENCE: dict[str, EvidenceRule] = {
    RefundReason.WRONG_SIZE: EvidenceRule(1, PHOTO),
    RefundReason.COLOUR_DIFFERS: EvidenceRule(1, PHOTO),
    RefundReason.QUALITY_DEFECT: EvidenceRule(2, PHOTO_OR_VIDEO),
    RefundReason.DAMAGED_IN_TRANSIT: EvidenceRule(1, PHOTO_OR_VIDEO),
    RefundReason.MISSING_ITEM: EvidenceRule(1, PHOTO_OR_VIDEO),
    RefundReason.WRONG_ITEM: EvidenceRule(1, PHOTO),
    RefundReason.NOT_RECEIVED: EvidenceRule(0, PHOTO),
    RefundReason.CHANGED_MIND: EvidenceRule(0, PHOTO),
    RefundReason.OTHER: EvidenceRule(0, PHOTO),
}


def evidence_guidance(problem: str) -> str:
    guidance = {
        RefundReason.WRONG_SIZE: _("Please send a photo of the item laid flat, with its size label visible."),
        RefundReason.COLOUR_DIFFERS: _("Please send a photo of the item in daylight, so that its colour shows."),
        RefundReason.QUALITY_DEFECT: _(
            "Please send two photos: a close-up of the defect and one of the item's label or tag."
        ),
        RefundReason.DAMAGED_IN_TRANSIT: _(
            "Please send a photo of the outer box and, if you filmed the unpacking, the video too "
            "(at least one photo or video)."
        ),
        RefundReason.MISSING_ITEM: _(
            "Please send a photo of everything that was in the parcel, with the packing slip."
        ),
        RefundReason.WRONG_ITEM: _("Please send a photo of the item you received, with its label."),
    }
    return str(guidance.get(RefundReason(problem), ""))


@dataclass
class Reply:
    body: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    action: str
    state: str
    replies: list[Reply] = field(default_factory=list)
    prediction: Prediction | None = None
    problem: str | None = None
    misunderstood: int = 0
    handoff: str | None = None  # a Reason code
    approve: bool = False  # try the workflow's express refund, then say so (or hand off)
    evidence_from_here: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


# --- quick replies -------------------------------------------------------------------------------------


def order_quick_replies() -> list[dict[str, str]]:
    return [
        {"id": "yes", "label": _("Yes, this order")},
        {"id": "other_order", "label": _("Another order")},
    ]


def problem_quick_replies() -> list[dict[str, str]]:
    return [{"id": value, "label": str(RefundReason(value).label)} for value in PROBLEM_INTENTS]


def quick_replies_for(state: str) -> list[dict[str, str]]:
    if state == AssistantState.CONFIRM_ORDER:
        return order_quick_replies()
    if state == AssistantState.PROBLEM:
        return problem_quick_replies()
    return []


def quick_reply_intent(text: str) -> str | None:
    """A tapped quick reply arrives as its label in either language: which one it is."""
    wanted = normalise(text)
    for language in ("zh-hans", "en"):
        with translation.override(language):
            for reply in order_quick_replies() + problem_quick_replies():
                if normalise(reply["label"]) == wanted:
                    return reply["id"]
    return None


def asks_for_person(text: str) -> bool:
    lowered = normalise(text)
    return any(
        (word in lowered) if not word.isascii() else re.search(rf"(?<![a-z]){word}(?![a-z])", lowered) is not None
        for word in HANDOFF_WORDS
    )


# --- what the assistant says -------------------------------------------------------------------------


def opening(*, dialog: AssistantDialog, ticket: RefundTicket) -> list[Reply]:
    from messaging.services import order_card_data

    buyer = ticket.buyer
    name = buyer.get_full_name() or buyer.get_username()
    return [
        Reply(
            _(
                "Hello %(name)s! I am the refund assistant and will get your case ready in a minute; "
                "write “agent” at any time to talk to a person. Is this the order you need help with?"
            )
            % {"name": name},
            {"order": order_card_data(ticket=ticket), "quick_replies": order_quick_replies()},
        )
    ]


def ask_problem() -> Reply:
    return Reply(_("What is wrong? Tap one of these or describe it in your own words."), _qr(AssistantState.PROBLEM))


def joined(*parts: str) -> str:
    """Sentences one after the other: Chinese needs no space between them."""
    separator = "" if (translation.get_language() or "").startswith("zh") else " "
    return separator.join(part for part in parts if part)


def ask_evidence(problem: str) -> Reply:
    rule = EVIDENCE[problem]
    return Reply(
        joined(evidence_guidance(problem), _("Use the button below or the paperclip to send it.")),
        {"upload": {"count": rule.count, "kinds": sorted(rule.kinds)}},
    )


def recent_orders(ticket: RefundTicket) -> Reply:
    from tickets.models import Order

    orders = Order.objects.filter(buyer_id=ticket.buyer_id).prefetch_related("items").order_by("-paid_at")
    cards = [
        {
            "order_no": order.order_no,
            "paid_total": format_cny(order.paid_total_cents),
            "items": [{"title": item.title, "quantity": item.quantity} for item in order.items.all()],
            "current": order.pk == ticket.order_id,
            "url": reverse("tickets:refund_request", kwargs={"order_no": order.order_no}),
        }
        for order in orders[:RECENT_ORDERS]
    ]
    return Reply(
        _(
            "These are your recent orders. This request is about order %(order_no)s; for another order, "
            "open a request from its card. Shall we go on with %(order_no)s?"
        )
        % {"order_no": ticket.order.order_no},
        {"orders": cards, "quick_replies": order_quick_replies()[:1]},
    )


def not_understood(state: str) -> Reply:
    return Reply(
        _("Sorry, I did not understand. Tap one of the options or say it differently; write “agent” for a person."),
        _qr(state),
    )


def handoff_reply() -> Reply:
    return Reply(
        _(
            "I am passing your case to a colleague now, with everything you told me. "
            "An agent will answer within %(time)s."
        )
        % {"time": format_duration(settings.REFUNDCHAT_FIRST_RESPONSE_SLA)}
    )


def handback_replies(state: str, problem: str) -> list[Reply]:
    replies = [Reply(_("The refund assistant again: your agent handed the conversation back to me."))]
    if state == AssistantState.EVIDENCE and problem:
        replies.append(ask_evidence(problem))
    elif state == AssistantState.CONFIRM_ORDER:
        replies.append(Reply(_("Is this the order you need help with?"), _qr(state)))
    else:
        replies.append(ask_problem())
    return replies


def _qr(state: str) -> dict[str, Any]:
    replies = quick_replies_for(state)
    return {"quick_replies": replies} if replies else {}


# --- one step ----------------------------------------------------------------------------------------


def do_step(*, dialog: AssistantDialog, ticket: RefundTicket, message: Message) -> Outcome:
    """What the assistant does with one buyer message (in the dialog's language, set by the caller)."""
    text = message.body.strip() if message.kind == MessageKind.TEXT else ""
    state = dialog.state
    prediction: Prediction | None = None
    if text:
        if sentiment.is_angry(text):
            return Outcome("handoff", state, handoff=Reason.ANGRY, detail={"anger": sentiment.anger_score(text)})
        tapped = quick_reply_intent(text)
        prediction = Prediction(tapped, 1.0) if tapped else get_classifier().classify(text)
        if asks_for_person(text) or prediction.intent == "human":
            return Outcome("handoff", state, prediction=prediction, handoff=Reason.BUYER_ASKED)
        if prediction.intent in POLICY_INTENTS:
            answer = knowledge.answer(topic=prediction.intent, language=dialog.language)
            return Outcome("answered_policy", state, [Reply(answer, _qr(state))], prediction)
    outcome = _by_state(dialog=dialog, ticket=ticket, message=message, prediction=prediction)
    outcome.prediction = prediction
    return outcome


def _by_state(
    *, dialog: AssistantDialog, ticket: RefundTicket, message: Message, prediction: Prediction | None
) -> Outcome:
    state = dialog.state
    intent = prediction.intent if prediction else None
    if state == AssistantState.CONFIRM_ORDER:
        if message.kind == MessageKind.ORDER_CARD or intent == "yes":
            return Outcome("order_confirmed", AssistantState.PROBLEM, [ask_problem()])
        if intent == "other_order":
            return Outcome("offered_orders", state, [recent_orders(ticket)])
        if intent in PROBLEM_INTENTS:
            return problem_chosen(ticket=ticket, problem=str(intent))
    elif state == AssistantState.PROBLEM:
        if intent in PROBLEM_INTENTS:
            return problem_chosen(ticket=ticket, problem=str(intent))
        if message.has_attachments and not intent:
            return Outcome("asked_problem_first", state, [ask_problem()])
    elif state == AssistantState.EVIDENCE:
        if intent in PROBLEM_INTENTS and intent != dialog.problem:
            return problem_chosen(ticket=ticket, problem=str(intent))
        if message.has_attachments:
            return evidence_received(dialog=dialog, ticket=ticket)
    elif state == AssistantState.DONE:
        # The case is settled: thanks and small talk get a pointer, not a "did not understand".
        return Outcome("acknowledged", state, [after_done()])
    return misunderstood(dialog=dialog)


def misunderstood(*, dialog: AssistantDialog) -> Outcome:
    count = dialog.misunderstood + 1
    if count >= MAX_MISUNDERSTOOD:
        return Outcome("handoff", dialog.state, misunderstood=count, handoff=Reason.NOT_UNDERSTOOD)
    return Outcome("not_understood", dialog.state, [not_understood(dialog.state)], misunderstood=count)


def problem_chosen(*, ticket: RefundTicket, problem: str) -> Outcome:
    if problem == RefundReason.OTHER:
        return Outcome("handoff", AssistantState.PROBLEM, problem=problem, handoff=Reason.NEEDS_JUDGEMENT)
    if EVIDENCE[problem].count == 0:
        outcome = decide(ticket=ticket, problem=problem)
        outcome.problem = problem
        return outcome
    return Outcome(
        "asked_evidence",
        AssistantState.EVIDENCE,
        [ask_evidence(problem)],
        problem=problem,
        evidence_from_here=True,
    )


def evidence_counts(*, dialog: AssistantDialog, ticket: RefundTicket) -> Counter[str]:
    """The kinds of files the buyer sent since the evidence was asked for."""
    from media.models import Attachment

    kinds = Attachment.objects.filter(
        message__conversation_id=dialog.conversation_id,
        message__seq__gt=dialog.evidence_since_seq,
        uploader_id=ticket.buyer_id,
    ).values_list("kind", flat=True)
    return Counter(kinds)


def evidence_received(*, dialog: AssistantDialog, ticket: RefundTicket) -> Outcome:
    rule = EVIDENCE[dialog.problem]
    counts = evidence_counts(dialog=dialog, ticket=ticket)
    usable = sum(n for kind, n in counts.items() if kind in rule.kinds)
    detail = {"evidence": dict(counts), "needed": rule.count}
    if usable >= rule.count:
        outcome = decide(ticket=ticket, problem=dialog.problem)
        outcome.replies.insert(0, Reply(_("Thank you, I have your evidence.")))
        outcome.detail.update(detail)
        return outcome
    if usable == 0:
        body = _("Voice notes and documents do not show this problem: please send photos or videos.")
    else:
        body = _("Thank you. Please send %(count)d more.") % {"count": rule.count - usable}
    return Outcome(
        "evidence_incomplete",
        AssistantState.EVIDENCE,
        [Reply(joined(body, evidence_guidance(dialog.problem)), {"upload": {"count": rule.count - usable}})],
        detail=detail,
    )


def decide(*, ticket: RefundTicket, problem: str) -> Outcome:
    """Within policy and allowed by the express rule: approve; within policy: propose and hand off; else hand off."""
    from tickets import timers

    check = knowledge.check_policy(ticket=ticket, problem=problem)
    detail: dict[str, Any] = {"policy": check.codes, "within_policy": check.within_policy}
    if not check.within_policy:
        reply = Reply(joined(*check.notes))
        return Outcome("handoff", AssistantState.EVIDENCE, [reply], handoff=Reason.NEEDS_JUDGEMENT, detail=detail)
    proposal = Reply(
        _("Under our policy this is a case for %(kind)s of %(amount)s.")
        % {"kind": RefundKind(check.refund_kind).label, "amount": format_cny(check.amount_cents)}
    )
    express = (
        check.refund_kind == RefundKind.REFUND_ONLY
        and ticket.kind == RefundKind.REFUND_ONLY
        and timers.express_refund_rule(ticket) is not None
    )
    if express:
        return Outcome("approve", AssistantState.DONE, [proposal], approve=True, detail=detail)
    return Outcome("handoff", AssistantState.EVIDENCE, [proposal], handoff=Reason.NEEDS_APPROVAL, detail=detail)


def after_done() -> Reply:
    return Reply(
        _(
            "You are welcome. Ask me about refund times, return shipping or the return address, "
            "or write “agent” to talk to a person."
        )
    )


def approved_reply(ticket: RefundTicket) -> Reply:
    return Reply(
        _(
            "Done: your refund of %(amount)s is approved and on its way; it reaches your original payment "
            "method within %(hours)d hours. Anything else?"
        )
        % {
            "amount": format_cny(ticket.approved_amount_cents or ticket.requested_amount_cents),
            "hours": settings.REFUNDCHAT_PROMISE_HOURS["refund_pending"],
        }
    )
