"""The hand-computed report fixture (tests/tickets/reports/test_selectors.py explains every figure it yields).

17 tickets around a three-day range, Mon 2 – Wed 4 March 2026 in Asia/Shanghai (UTC+8), with a ticket reopened
(T3), tickets never answered (T5, T6, T9, T14), and day boundaries in Shanghai that UTC would put on the other day
(T4 opened 23:50 and answered/resolved after midnight; T7 opened 00:30; T17 opened 00:00:30 after the range).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests import factories
from tests.factories.reports import Spec, local, make
from tickets.models import Label
from tickets.models import TicketStatus as S
from tickets.reports.selectors import ReportFilters
from tickets.roles import Role

pytestmark = pytest.mark.django_db

RANGE = ReportFilters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 4))
DAY1, DAY2, DAY3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
MINUTE, HOUR = 60, 3600


@pytest.fixture
def fixture() -> dict[str, Any]:
    alice = factories.buyer(username="alice")
    wei = factories.agent(username="wei")
    lin = factories.agent(username="lin")
    factories.staff(Role.MANAGER, username="boss")
    vip = Label.objects.create(name="VIP")
    specs = {
        # Day 1, Monday 2 March
        "T1": Spec(local(DAY1, 10), S.REFUNDED, agent=wei, first_response=10, resolved=120, approved=10000,
                   items=[("TS-1", 10000, 1)], paid_after=180, rating=(5, "great", local(DAY1, 13))),
        "T2": Spec(local(DAY1, 11), S.REFUNDED, reason="wrong_size", agent=wei, first_response=30, resolved=240,
                   approved=5000, items=[("SH-2", 5000, 1)], paid_after=360, rating=(4, "", local(DAY1, 16))),
        # Rejected after an hour, then reopened: open again (its old resolved_at stays, it is not resolved).
        "T3": Spec(local(DAY1, 12), S.UNDER_REVIEW, agent=lin, first_response=60, resolved=60, reopened=True),
        # Opened 23:50 (15:50 UTC), answered 00:10 and closed 00:30 the next day in Shanghai (still 2 March in UTC).
        "T4": Spec(local(DAY1, 23, 50), S.CLOSED, agent=wei, first_response=20, resolved=40),
        # Never answered, cancelled by the buyer after an hour: resolved by nobody on staff.
        "T5": Spec(local(DAY1, 15), S.CANCELLED, reason="changed_mind", resolved=60),
        "T6": Spec(local(DAY1, 16), S.CLOSED, reason="other", resolved=20),
        # Day 2, Tuesday 3 March. T7: opened 00:30 in Shanghai (16:30 UTC on 2 March); answered late (150 > 120).
        "T7": Spec(local(DAY2, 0, 30), S.APPROVED_REFUND_ONLY, agent=wei, first_response=150, approved=20000,
                   items=[("TS-1", 10000, 2)], handoff="buyer_asked"),
        "T8": Spec(local(DAY2, 9), S.REFUNDED, reason="changed_mind", agent=lin, first_response=20,
                   resolved=24 * 60, approved=3000, items=[("MG-3", 3000, 1)], paid_after=30 * 60,
                   handoff="needs_approval", rating=(2, "slow", local(DAY3, 16))),
        # Never answered, flagged by the timer at its due time.
        "T9": Spec(local(DAY2, 10), S.REQUESTED, reason="wrong_size", breached_at=local(DAY2, 12)),
        "T10": Spec(local(DAY2, 14), S.REJECTED, reason="wrong_item", agent=wei, first_response=5, resolved=60,
                    handoff="buyer_asked", rating=(1, "unfair", local(DAY2, 16))),
        # Never assigned, but an agent wrote in its chat: handled by a human.
        "T11": Spec(local(DAY2, 18), S.CLOSED, reason="other", first_response=15, resolved=120,
                    staff_message_by=lin),
        # Day 3, Wednesday 4 March
        "T12": Spec(local(DAY3, 8), S.RETURN_IN_TRANSIT, agent=lin, first_response=40, approved=8000,
                    items=[("SH-2", 4000, 2)], labels=(vip,)),
        "T13": Spec(local(DAY3, 9), S.REFUNDED, agent=wei, first_response=10, resolved=300, approved=12000,
                    items=[("TS-1", 12000, 1)], paid_after=480, labels=(vip,), rating=(5, "fast", local(DAY3, 15))),
        "T14": Spec(local(DAY3, 12), S.CLOSED, reason="not_received", resolved=30),
        # Outside the range: opened before it (T15 resolved on day 1, T16 still open) and just after it (T17).
        "T15": Spec(local(date(2026, 3, 1), 22), S.CLOSED, agent=wei, first_response=30, resolved=11 * 60,
                    handoff="angry", rating=(3, "ok", local(DAY1, 10))),
        "T16": Spec(local(date(2026, 2, 28), 10), S.UNDER_REVIEW, agent=lin, first_response=30),
        "T17": Spec(local(date(2026, 3, 5), 0, 0, 30), S.REQUESTED),
    }  # fmt: skip
    tickets = {name: make(spec, buyer=alice) for name, spec in specs.items()}
    return {"tickets": tickets, "wei": wei, "lin": lin, "vip": vip}
