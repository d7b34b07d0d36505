"""Policy answers and the policy check: the numbers are the workflow's own settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from messaging.assistant import knowledge
from messaging.assistant.classifier import POLICY_INTENTS
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_policy_question_has_an_answer_in_both_languages(language: str) -> None:
    assert set(knowledge.topics()) == set(POLICY_INTENTS)
    for topic in POLICY_INTENTS:
        text = knowledge.answer(topic=topic, language=language)
        assert "{" not in text
        assert text


def test_numbers_come_from_the_workflow_settings(settings: Any) -> None:
    settings.REFUNDCHAT_PROMISE_HOURS = {**settings.REFUNDCHAT_PROMISE_HOURS, "under_review": 12, "refund_pending": 36}
    settings.REFUNDCHAT_EXPRESS_REFUND_MAX_CENTS = 8800
    settings.REFUNDCHAT_RETURN_CLOSE_AFTER = timedelta(days=10)
    settings.REFUNDCHAT_NO_REASON_RETURN_DAYS = 15
    settings.REFUNDCHAT_RETURN_ADDRESS = "测试仓 1 号"
    refund = knowledge.answer(topic="ask_refund_time", language="en")
    assert "12 hours" in refund
    assert "36 hours" in refund
    assert "¥88.00" in refund
    assert "10 天" in knowledge.answer(topic="ask_return_shipping", language="zh-hans")
    assert "15 天" in knowledge.answer(topic="ask_no_reason", language="zh-hans")
    assert "测试仓 1 号" in knowledge.answer(topic="ask_return_address", language="en")


def make_ticket(*, delivered_days_ago: int | None, title: str = "纯棉T恤", kind: str = "refund_only") -> Any:
    alice = factories.buyer(username="alice")
    delivered = timezone.now() - timedelta(days=delivered_days_ago) if delivered_days_ago is not None else None
    order = factories.order_with_items(buyer=alice, items=[(5000, 1)], delivered_at=delivered)
    order.items.update(title=title)
    return factories.open_ticket(order=order, kind=kind)


@pytest.mark.parametrize(
    ("problem", "delivered", "title", "within", "code"),
    [
        ("changed_mind", 3, "纯棉T恤", True, "no_reason_window_ok"),
        ("changed_mind", 9, "纯棉T恤", False, "no_reason_window_passed"),
        ("changed_mind", 3, "每日坚果 30袋装", False, "excluded_category"),
        ("changed_mind", None, "纯棉T恤", False, "not_delivered_yet"),
        ("wrong_size", 3, "纯棉T恤", True, "no_reason_window_ok"),
        ("quality_defect", 30, "每日坚果 30袋装", True, "shop_fault"),
        ("missing_item", 3, "纯棉T恤", True, "missing_item"),
        ("not_received", None, "纯棉T恤", True, "not_delivered"),
        ("not_received", 3, "纯棉T恤", False, "marked_delivered"),
        ("other", 3, "纯棉T恤", False, "other_problem"),
    ],
)
def test_policy_check(problem: str, delivered: int | None, title: str, within: bool, code: str) -> None:
    ticket = make_ticket(delivered_days_ago=delivered, title=title)
    check = knowledge.check_policy(ticket=ticket, problem=problem)
    assert check.within_policy is within
    assert code in check.codes
    assert check.amount_cents == 5000
    assert check.refund_kind == ("return_and_refund" if problem in ("changed_mind", "wrong_size") else "refund_only")
