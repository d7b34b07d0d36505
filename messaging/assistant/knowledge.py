"""The assistant's small knowledge base: policy answers and the policy check of a case.

The wording lives in data/knowledge.json; every number comes from the settings the workflow itself uses
(promised hours, the express-refund limit, the return deadline and address), so the assistant cannot promise
something the workflow does not keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.utils import timezone

from messaging.assistant.classifier import DATA_DIR
from tickets.formatting import format_cny
from tickets.models import RefundKind, RefundReason, RefundTicket

KNOWLEDGE = DATA_DIR / "knowledge.json"

# Problems the buyer caused (their choice): the no-reason rule applies and they pay the return shipping.
BUYER_CHOICE = frozenset({RefundReason.CHANGED_MIND, RefundReason.WRONG_SIZE})
# Problems of the shop or the carrier, shown with evidence.
SHOP_FAULT = frozenset(
    {RefundReason.COLOUR_DIFFERS, RefundReason.QUALITY_DEFECT, RefundReason.DAMAGED_IN_TRANSIT, RefundReason.WRONG_ITEM}
)


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(KNOWLEDGE.read_text(encoding="utf-8"))
    return data


def _language(language: str) -> str:
    return "en" if language.startswith("en") else "zh-hans"


def excluded_names(language: str) -> str:
    separator = "、" if _language(language) == "zh-hans" else ", "
    return separator.join(category[_language(language)] for category in _data()["excluded_categories"])


def facts() -> dict[str, Any]:
    """The numbers of the answers, from the workflow's settings."""
    hours = settings.REFUNDCHAT_PROMISE_HOURS
    return {
        "review_hours": hours["under_review"],
        "payout_hours": hours["approved_refund_only"],
        "arrive_hours": hours["refund_pending"],
        "express_max": format_cny(settings.REFUNDCHAT_EXPRESS_REFUND_MAX_CENTS),
        "ship_days": settings.REFUNDCHAT_RETURN_CLOSE_AFTER.days,
        "no_reason_days": settings.REFUNDCHAT_NO_REASON_RETURN_DAYS,
        "address": settings.REFUNDCHAT_RETURN_ADDRESS,
    }


def topics() -> list[str]:
    return list(_data()["topics"])


def answer(*, topic: str, language: str) -> str:
    template: str = _data()["topics"][topic][_language(language)]
    return template.format(**facts(), excluded=excluded_names(language))


def excluded_items(*, titles: list[str]) -> list[str]:
    """The titles that fall in a category excluded from no-reason returns."""
    keywords = [keyword.lower() for category in _data()["excluded_categories"] for keyword in category["keywords"]]
    return [title for title in titles if any(keyword in title.lower() for keyword in keywords)]


@dataclass(frozen=True)
class PolicyCheck:
    within_policy: bool
    refund_kind: str  # RefundKind
    amount_cents: int
    # Why, one line each, in the language the check was made in (for the buyer and the agent's note).
    notes: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # stable, for the hand-off event's data

    def refund_kind_label(self) -> str:
        return str(RefundKind(self.refund_kind).label)


def check_policy(*, ticket: RefundTicket, problem: str) -> PolicyCheck:
    """Does this case fit the written policy, and what refund does it suggest? (No decision is taken here.)"""
    from django.utils.translation import gettext as _

    order = ticket.order
    titles = [item.order_item.title for item in ticket.items.select_related("order_item")]
    codes: list[str] = []
    notes: list[str] = []
    within = True
    kind = RefundKind.REFUND_ONLY
    if problem in BUYER_CHOICE:
        kind = RefundKind.RETURN_AND_REFUND
        days = settings.REFUNDCHAT_NO_REASON_RETURN_DAYS
        if order.delivered_at is None:
            codes.append("not_delivered_yet")
            notes.append(_("The order has not been delivered yet."))
            within = False
        elif timezone.now() - order.delivered_at > timedelta(days=days):
            codes.append("no_reason_window_passed")
            notes.append(
                _("Delivered more than %(days)d days ago: the no-reason rule no longer applies.") % {"days": days}
            )
            within = False
        else:
            codes.append("no_reason_window_ok")
            notes.append(_("Within %(days)d days of delivery.") % {"days": days})
        excluded = excluded_items(titles=titles)
        if excluded:
            codes.append("excluded_category")
            notes.append(_("Not returnable without a reason: %(items)s.") % {"items": "、".join(excluded)})
            within = False
        notes.append(_("The buyer pays the return shipping."))
    elif problem in SHOP_FAULT:
        kind = RefundKind(ticket.kind)
        codes.append("shop_fault")
        notes.append(_("A fault of the shop or the carrier, shown with evidence: the shop pays the return shipping."))
    elif problem == RefundReason.MISSING_ITEM:
        codes.append("missing_item")
        notes.append(_("Missing goods are refunded without a return."))
    elif problem == RefundReason.NOT_RECEIVED:
        if order.delivered_at is not None:
            codes.append("marked_delivered")
            notes.append(_("The carrier reports the order as delivered: this needs checking with the carrier."))
            within = False
        else:
            codes.append("not_delivered")
            notes.append(_("The order has not been delivered: refunded without a return."))
    else:
        codes.append("other_problem")
        notes.append(_("Not a standard problem: an agent has to look at it."))
        within = False
    return PolicyCheck(
        within_policy=within, refund_kind=kind, amount_cents=ticket.requested_amount_cents, notes=notes, codes=codes
    )
