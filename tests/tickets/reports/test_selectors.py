"""The report figures against the hand-computed fixture of conftest.py, number by number.

Every expected number below is written by hand, with how it was computed. Runs on PostgreSQL (percentile_cont) and,
without DATABASE_URL, on SQLite (the Python percentile aggregate).
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

import pytest
from django.test import override_settings

from tests import factories
from tests.factories.reports import Spec, local, make
from tests.tickets.reports.conftest import DAY1, DAY2, DAY3, HOUR, MINUTE, RANGE
from tickets.models import TicketStatus as S
from tickets.reports import selectors
from tickets.reports.expressions import _SqlitePercentileCont
from tickets.reports.selectors import Channel, CountRow, RefundRow, ReportFilters

pytestmark = pytest.mark.django_db


def test_volume_per_day_and_backlog(fixture: dict[str, Any]) -> None:
    days = selectors.volume_per_day(filters=RANGE)
    # Opened, by creation day in Shanghai: day 1 T1–T6 = 6 (T4 at 23:50); day 2 T7–T11 = 5 (T7 at 00:30);
    # day 3 T12–T14 = 3 (T17, 00:00:30 on 5 March, is outside although UTC would say 4 March).
    assert [d.opened for d in days] == [6, 5, 3]
    # Resolved, by day of resolution, whenever opened: day 1 T1 12:00, T2 15:00, T5 16:00, T6 16:20, T15 09:00 = 5
    # (T3 was reopened: not resolved); day 2 T4 00:30, T10 15:00, T11 20:00 = 3; day 3 T8, T13, T14 = 3.
    assert [d.resolved for d in days] == [5, 3, 3]
    # Backlog: T15 and T16 open at the start = 2; then 2 + 6 − 5 = 3, 3 + 5 − 3 = 5, 5 + 3 − 3 = 5
    # (open at the end: T3, T7, T9, T12, T16).
    assert [d.backlog for d in days] == [3, 5, 5]
    assert [d.day for d in days] == [DAY1, DAY2, DAY3]


def test_open_backlog_by_state(fixture: dict[str, Any]) -> None:
    # Open now, whenever opened: requested T9, T17; under review T3, T16; approved T7; return in transit T12.
    # Ties by state name.
    assert selectors.open_backlog_by_status(filters=RANGE) == [
        CountRow("requested", 2),
        CountRow("under_review", 2),
        CountRow("approved_refund_only", 1),
        CountRow("return_in_transit", 1),
    ]


def test_time_summary_in_wall_time(fixture: dict[str, Any]) -> None:
    summary = selectors.time_summary(filters=RANGE)
    assert summary.opened == 14  # T1–T14
    # Answered: T1, T2, T3, T4, T7, T8, T10, T11, T12, T13; never answered: T5, T6, T9, T14.
    assert (summary.answered, summary.never_answered) == (10, 4)
    # First responses sorted (minutes): 5 10 10 15 20 20 30 40 60 150. Median at rank 0.5 × 9 = 4.5: between 20
    # and 20 = 20. p90 at rank 0.9 × 9 = 8.1: 60 + 0.1 × (150 − 60) = 69.
    assert summary.first_response_median == pytest.approx(20 * MINUTE)
    assert summary.first_response_p90 == pytest.approx(69 * MINUTE)
    # Resolved now: T1 120, T2 240, T4 40, T5 60, T6 20, T8 1440, T10 60, T11 120, T13 300, T14 30 minutes
    # (T3 reopened is not). Sorted: 20 30 40 60 60 120 120 240 300 1440. Median (60 + 120) / 2 = 90 minutes;
    # p90 300 + 0.1 × (1440 − 300) = 414 minutes.
    assert summary.resolved == 10
    assert summary.resolution_median == pytest.approx(90 * MINUTE)
    assert summary.resolution_p90 == pytest.approx(414 * MINUTE)
    # Breached: T7 (answered after 150 > 120 minutes) and T9 (flagged by the timer): 2 of 14.
    assert summary.breached == 2
    assert summary.breach_rate == pytest.approx(2 / 14)
    assert summary.reopened == 1  # T3


def test_first_response_per_day(fixture: dict[str, Any]) -> None:
    days = selectors.first_response_per_day(filters=RANGE)
    # Day 1: T1 10, T4 20, T2 30, T3 60 → median (20 + 30) / 2 = 25; p90 rank 2.7: 30 + 0.7 × 30 = 51.
    # Day 2: T10 5, T11 15, T8 20, T7 150 → median 17.5; p90 20 + 0.7 × 130 = 111.
    # Day 3: T13 10, T12 40 → median 25; p90 rank 0.9: 10 + 0.9 × 30 = 37.
    assert [d.answered for d in days] == [4, 4, 2]
    assert [d.first_response_median for d in days] == pytest.approx([25 * MINUTE, 17.5 * MINUTE, 25 * MINUTE])
    assert [d.first_response_p90 for d in days] == pytest.approx([51 * MINUTE, 111 * MINUTE, 37 * MINUTE])


BUSINESS_HOURS = {"weekdays": [0, 1, 2, 3, 4], "start": "09:00", "end": "18:00"}


@override_settings(REFUNDCHAT_BUSINESS_HOURS=BUSINESS_HOURS)
def test_time_summary_in_business_hours(fixture: dict[str, Any]) -> None:
    summary = selectors.time_summary(filters=RANGE)
    # Mon–Fri 09:00–18:00. First responses in business minutes: T1 10, T2 30, T3 60, T4 0 (23:50 → 00:10),
    # T7 0 (00:30 → 03:00), T8 20, T10 5, T11 0 (18:00 → 18:15), T12 0 (08:00 → 08:40), T13 10.
    # Sorted: 0 0 0 0 5 10 10 20 30 60 → median (5 + 10) / 2 = 7.5; p90 30 + 0.1 × 30 = 33.
    assert summary.first_response_median == pytest.approx(7.5 * MINUTE)
    assert summary.first_response_p90 == pytest.approx(33 * MINUTE)
    # Resolutions: T1 120, T2 240, T4 0, T5 60, T6 20, T8 540 (Tue 09:00 → Wed 09:00 is one 9-hour day), T10 60,
    # T11 0 (18:00 → 20:00), T13 300, T14 30. Sorted: 0 0 20 30 60 60 120 240 300 540 → median 60;
    # p90 300 + 0.1 × 240 = 324.
    assert summary.resolution_median == pytest.approx(60 * MINUTE)
    assert summary.resolution_p90 == pytest.approx(324 * MINUTE)


@override_settings(REFUNDCHAT_BUSINESS_HOURS=BUSINESS_HOURS)
def test_business_hours_skip_nights_and_weekends() -> None:
    buyer = factories.buyer(username="bob")
    friday = date(2026, 2, 27)
    # Friday 17:00 → Monday 10:00: one hour on Friday, one on Monday; the weekend and the nights count nothing.
    make(Spec(local(friday, 17), S.UNDER_REVIEW, first_response=(2 * 24 + 17) * 60), buyer=buyer)
    summary = selectors.time_summary(filters=ReportFilters(date_from=friday, date_to=friday))
    assert summary.first_response_median == pytest.approx(2 * HOUR)


def test_containment_and_handoff_reasons(fixture: dict[str, Any]) -> None:
    contained = selectors.containment(filters=RANGE)
    # Resolved in the cohort: T1, T2, T4, T5, T6, T8, T10, T11, T13, T14 = 10. No assignment and no staff message:
    # T5, T6, T14 = 3 (T11 was never assigned but an agent wrote in it). 3 / 10.
    assert (contained.resolved, contained.assistant_only) == (10, 3)
    assert contained.rate == pytest.approx(0.3)
    # Hand-offs of the cohort: T7 and T10 buyer_asked, T8 needs_approval (T15's angry is outside).
    assert selectors.handoff_reasons(filters=RANGE) == [CountRow("buyer_asked", 2), CountRow("needs_approval", 1)]


def test_refunds(fixture: dict[str, Any]) -> None:
    summary = selectors.refund_summary(filters=RANGE)
    # Approved refunds of the cohort: T1 10,000, T2 5,000, T7 20,000, T8 3,000, T12 8,000, T13 12,000 cents.
    assert (summary.count, summary.amount_cents) == (6, 58000)
    assert summary.average_cents == pytest.approx(58000 / 6)
    # Paid out: T1 after 3 h, T2 6 h, T13 8 h, T8 30 h → median (6 + 8) / 2 = 7 h; average 47 / 4 = 11.75 h.
    assert summary.paid_out == 4
    assert summary.payout_median == pytest.approx(7 * HOUR)
    assert summary.payout_average == pytest.approx(11.75 * HOUR)
    # By reason: quality defect T1 + T7 + T12 + T13 = 4, 50,000; wrong size T2 5,000; changed mind T8 3,000.
    assert selectors.refunds_by(filters=RANGE, field="reason") == [
        RefundRow("quality_defect", "quality_defect", 4, 50000),
        RefundRow("wrong_size", "wrong_size", 1, 5000),
        RefundRow("changed_mind", "changed_mind", 1, 3000),
    ]
    # By state: refunded T1 + T2 + T8 + T13 = 30,000; approved T7 20,000; return in transit T12 8,000.
    assert selectors.refunds_by(filters=RANGE, field="status") == [
        RefundRow("refunded", "refunded", 4, 30000),
        RefundRow("approved_refund_only", "approved_refund_only", 1, 20000),
        RefundRow("return_in_transit", "return_in_transit", 1, 8000),
    ]
    # Products: TS-1 in T1 (10,000), T7 (2 × 10,000), T13 (12,000) = 3 refunds, 42,000; SH-2 in T2 (5,000) and
    # T12 (2 × 4,000) = 2, 13,000; MG-3 in T8 = 1, 3,000. The other tickets' items are in no refund.
    assert selectors.top_refunded_products(filters=RANGE) == [
        RefundRow("TS-1", "title TS-1", 3, 42000),
        RefundRow("SH-2", "title SH-2", 2, 13000),
        RefundRow("MG-3", "title MG-3", 1, 3000),
    ]


def test_agent_performance(fixture: dict[str, Any]) -> None:
    rows = selectors.agent_performance(filters=RANGE)
    wei, lin = rows
    # wei: T1, T2, T4, T7, T10, T13 = 6; resolved all but T7 = 5; first responses 5 10 10 20 30 150 → median 15;
    # ratings T1 5, T2 4, T10 1, T13 5 → 15 / 4 = 3.75; none reopened.
    assert (wei.agent_id, wei.handled, wei.resolved, wei.ratings, wei.reopened) == (fixture["wei"].pk, 6, 5, 4, 0)
    assert wei.first_response_median == pytest.approx(15 * MINUTE)
    assert wei.csat_average == pytest.approx(3.75)
    # lin: T3, T8, T12 = 3; resolved T8 = 1; first responses 20 40 60 → 40; rating T8 2; T3 reopened.
    assert (lin.agent_id, lin.handled, lin.resolved, lin.ratings, lin.reopened) == (fixture["lin"].pk, 3, 1, 1, 1)
    assert lin.first_response_median == pytest.approx(40 * MINUTE)
    assert lin.csat_average == pytest.approx(2.0)


def test_csat(fixture: dict[str, Any]) -> None:
    # Ratings of the cohort: T1 5, T2 4, T8 2, T10 1, T13 5 (T15's 3 is outside the range).
    assert selectors.csat_distribution(filters=RANGE) == {1: 1, 2: 1, 3: 0, 4: 1, 5: 2}
    # With a comment, latest first: T8 (4 Mar 16:00), T13 (4 Mar 15:00), T10 (3 Mar 16:00), T1 (2 Mar 13:00).
    comments = selectors.csat_comments(filters=RANGE)
    tickets = fixture["tickets"]
    assert [(c.ticket_id, c.score, c.comment) for c in comments] == [
        (tickets["T8"].pk, 2, "slow"),
        (tickets["T13"].pk, 5, "fast"),
        (tickets["T10"].pk, 1, "unfair"),
        (tickets["T1"].pk, 5, "great"),
    ]


def test_filters(fixture: dict[str, Any]) -> None:
    def with_(**kwargs: Any) -> ReportFilters:
        return ReportFilters(date_from=RANGE.date_from, date_to=RANGE.date_to, **kwargs)

    # Assistant only (no assignment, no staff message): T5, T6 on day 1, T9 on day 2, T14 on day 3.
    assert [d.opened for d in selectors.volume_per_day(filters=with_(channel=Channel.ASSISTANT))] == [2, 1, 1]
    # Human: the other ten of the cohort (T1–T4, T7, T8, T10–T13).
    assert selectors.time_summary(filters=with_(channel=Channel.HUMAN)).opened == 10
    # Label VIP: T12 (8,000) and T13 (12,000).
    vip = selectors.refund_summary(filters=with_(label_id=fixture["vip"].pk))
    assert (vip.count, vip.amount_cents) == (2, 20000)
    # Agent lin: T3, T8, T12; reason quality defect: T1, T3, T4, T7, T12, T13.
    assert selectors.time_summary(filters=with_(agent_id=fixture["lin"].pk)).opened == 3
    assert selectors.time_summary(filters=with_(reason="quality_defect")).opened == 6


def test_sqlite_percentile_matches_postgres_definition() -> None:
    """The SQLite fallback interpolates between ranks exactly as PostgreSQL's percentile_cont does."""
    database = sqlite3.connect(":memory:")
    database.create_aggregate("pc", 2, _SqlitePercentileCont)  # type: ignore[arg-type]
    database.execute("CREATE TABLE t (v REAL)")
    database.executemany("INSERT INTO t VALUES (?)", [(v,) for v in (5, 10, 10, 15, 20, 20, 30, 40, 60, 150, None)])
    median, p90, p0, p100 = database.execute("SELECT pc(v, 0.5), pc(v, 0.9), pc(v, 0), pc(v, 1) FROM t").fetchone()
    assert (median, p90, p0, p100) == (20, pytest.approx(69), 5, 150)
    assert database.execute("SELECT pc(v, 0.5) FROM t WHERE v IS NULL").fetchone() == (None,)
