"""The managers' report figures, each computed by the database (GROUP BY, percentile_cont), never row by row.

Every function takes the same ReportFilters and returns plain rows; the pages, their charts and their CSV exports
all read these rows, so what is shown and what is downloaded are the same numbers.

The cohort of a report is the tickets *opened* in the date range (days in the business time zone,
settings.TIME_ZONE) that match the filters; "resolved per day" and the backlog count resolutions in the range.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, F, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils.translation import gettext_lazy as _

from tickets.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    PayoutStatus,
    RefundTicket,
    RefundTicketItem,
    SatisfactionRating,
    TicketEvent,
    TicketEventKind,
    TicketLabel,
)
from tickets.reports.expressions import BusinessHours, PercentileCont, business_hours, elapsed_seconds
from tickets.workflow import COMMITTED_STATUSES

TOP_PRODUCTS = 10
LATEST_COMMENTS = 20
MAX_RANGE_DAYS = 366


class Channel:
    """Who resolved a ticket: see human_involved()."""

    ASSISTANT = "assistant"
    HUMAN = "human"
    CHOICES = ((ASSISTANT, _("Assistant only")), (HUMAN, _("Human")))


@dataclass(frozen=True)
class ReportFilters:
    date_from: date
    date_to: date  # inclusive
    reason: str = ""
    label_id: int | None = None
    agent_id: int | None = None
    channel: str = ""

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time.min, tzinfo=business_zone())

    @property
    def end(self) -> datetime:
        """Midnight after the last day: ranges are [start, end)."""
        return datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=business_zone())

    @property
    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]


def business_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_day(field: str) -> TruncDate:
    """The calendar day of a datetime in the business time zone (Asia/Shanghai): 23:59 there is still that day."""
    return TruncDate(field, tzinfo=business_zone())


def human_involved() -> Q:
    """A human handled the ticket: it was assigned to someone, or a staff member wrote in its chat.

    A staff message is any message with a sender other than the buyer (the assistant writes without a sender), and
    the first one sets the ticket's first-response time (messaging/services.py, record_staff_reply): so "a staff
    member wrote" is "first_responded_at is set", which needs no scan of the messages. Without either, the
    assistant alone dealt with the ticket.
    """
    assigned = TicketEvent.objects.filter(ticket=OuterRef("pk"), kind=TicketEventKind.ASSIGNED)
    return Q(Exists(assigned)) | Q(first_responded_at__isnull=False)


def reopened() -> Q:
    """The ticket left a final state again at least once."""
    return Q(
        Exists(
            TicketEvent.objects.filter(
                ticket=OuterRef("pk"), kind=TicketEventKind.STATUS_CHANGED, from_status__in=FINAL_STATUSES
            )
        )
    )


def breached() -> Q:
    """The first-response promise was broken: the timer flagged it, or the first answer came after the due time."""
    return Q(sla_breached_at__isnull=False) | Q(first_responded_at__gt=F("first_response_due_at"))


def resolved() -> Q:
    return Q(status__in=FINAL_STATUSES, resolved_at__isnull=False)


@contextmanager
def report_transaction() -> Iterator[None]:
    """One read transaction for a page's queries, with PostgreSQL's JIT off: the planner's estimates for the
    EXISTS subqueries are high, so it would compile each query to machine code (150–250 ms each on the bulk data
    set) for queries that run in a few dozen milliseconds."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def filtered_tickets(*, filters: ReportFilters) -> QuerySet[RefundTicket]:
    """Every ticket matching the filters other than the date range."""
    tickets = RefundTicket.objects.all()
    if filters.reason:
        tickets = tickets.filter(reason=filters.reason)
    if filters.agent_id is not None:
        tickets = tickets.filter(assigned_agent_id=filters.agent_id)
    if filters.label_id is not None:
        tickets = tickets.filter(Exists(TicketLabel.objects.filter(ticket=OuterRef("pk"), label_id=filters.label_id)))
    if filters.channel == Channel.HUMAN:
        tickets = tickets.filter(human_involved())
    elif filters.channel == Channel.ASSISTANT:
        tickets = tickets.filter(~human_involved())
    return tickets


def cohort(*, filters: ReportFilters) -> QuerySet[RefundTicket]:
    """The tickets opened in the date range that match the filters."""
    return filtered_tickets(filters=filters).filter(created_at__gte=filters.start, created_at__lt=filters.end)


def _per_day(rows: Any, days: list[date]) -> dict[date, Any]:
    found = {row["day"]: row for row in rows}
    return {day: found.get(day) for day in days}


# --- Volume: opened, resolved, backlog --------------------------------------------------------------------------


@dataclass(frozen=True)
class DayVolume:
    day: date
    opened: int
    resolved: int
    backlog: int  # open at the end of the day


@dataclass(frozen=True)
class CountRow:
    key: str
    count: int


def volume_per_day(*, filters: ReportFilters) -> list[DayVolume]:
    """Opened (by creation day) and resolved (by day of the latest resolution) per day, and the backlog at the end
    of each day: opened by then minus resolved by then. Three queries, whatever the range."""
    tickets = filtered_tickets(filters=filters)
    opened = dict(
        cohort(filters=filters)
        .annotate(day=local_day("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    resolved_rows = dict(
        tickets.filter(resolved(), resolved_at__gte=filters.start, resolved_at__lt=filters.end)
        .annotate(day=local_day("resolved_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    before = tickets.aggregate(
        opened=Count("pk", filter=Q(created_at__lt=filters.start)),
        resolved=Count("pk", filter=resolved() & Q(resolved_at__lt=filters.start)),
    )
    backlog = before["opened"] - before["resolved"]
    result = []
    for day in filters.days:
        backlog += opened.get(day, 0) - resolved_rows.get(day, 0)
        result.append(
            DayVolume(day=day, opened=opened.get(day, 0), resolved=resolved_rows.get(day, 0), backlog=backlog)
        )
    return result


def open_backlog_by_status(*, filters: ReportFilters) -> list[CountRow]:
    """Tickets open right now (whenever opened), per state."""
    rows = (
        filtered_tickets(filters=filters)
        .filter(status__in=OPEN_STATUSES)
        .values("status")
        .annotate(n=Count("pk"))
        .order_by("-n", "status")
    )
    return [CountRow(key=row["status"], count=row["n"]) for row in rows]


# --- Response and resolution times ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSummary:
    opened: int
    answered: int
    never_answered: int
    first_response_median: float | None  # seconds (business seconds when a calendar is configured)
    first_response_p90: float | None
    resolved: int
    resolution_median: float | None
    resolution_p90: float | None
    breached: int
    reopened: int

    @property
    def breach_rate(self) -> float | None:
        return self.breached / self.opened if self.opened else None


@dataclass(frozen=True)
class DayTimes:
    day: date
    answered: int
    first_response_median: float | None
    first_response_p90: float | None


def _durations(hours: BusinessHours | None) -> dict[str, Any]:
    return {
        "first_response": elapsed_seconds("created_at", "first_responded_at", hours=hours),
        "resolution": elapsed_seconds("created_at", "resolved_at", hours=hours),
    }


def time_summary(*, filters: ReportFilters) -> TimeSummary:
    """One query. Never-answered tickets are counted but left out of the first-response figures; only resolved
    tickets have a resolution time."""
    hours = business_hours()
    answered = Q(first_responded_at__isnull=False)
    row = (
        cohort(filters=filters)
        .annotate(**_durations(hours))
        .aggregate(
            opened=Count("pk"),
            answered=Count("pk", filter=answered),
            first_response_median=PercentileCont("first_response", fraction=0.5, filter=answered),
            first_response_p90=PercentileCont("first_response", fraction=0.9, filter=answered),
            resolved=Count("pk", filter=resolved()),
            resolution_median=PercentileCont("resolution", fraction=0.5, filter=resolved()),
            resolution_p90=PercentileCont("resolution", fraction=0.9, filter=resolved()),
            breached=Count("pk", filter=breached()),
            reopened=Count("pk", filter=reopened()),
        )
    )
    return TimeSummary(never_answered=row["opened"] - row["answered"], **row)


def first_response_per_day(*, filters: ReportFilters) -> list[DayTimes]:
    """Median and p90 of the first response of the tickets opened each day."""
    hours = business_hours()
    answered = cohort(filters=filters).filter(first_responded_at__isnull=False)
    rows = (
        answered.annotate(day=local_day("created_at"), first_response=_durations(hours)["first_response"])
        .values("day")
        .annotate(
            n=Count("pk"),
            median=PercentileCont("first_response", fraction=0.5),
            p90=PercentileCont("first_response", fraction=0.9),
        )
        .values("day", "n", "median", "p90")
    )
    found = _per_day(rows, filters.days)
    return [
        DayTimes(
            day=day,
            answered=row["n"] if row else 0,
            first_response_median=row["median"] if row else None,
            first_response_p90=row["p90"] if row else None,
        )
        for day, row in found.items()
    ]


# --- The triage assistant ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Containment:
    resolved: int
    assistant_only: int

    @property
    def rate(self) -> float | None:
        return self.assistant_only / self.resolved if self.resolved else None


def containment(*, filters: ReportFilters) -> Containment:
    """Of the resolved tickets of the cohort, how many no human handled (human_involved)."""
    row = (
        cohort(filters=filters)
        .filter(resolved())
        .aggregate(resolved=Count("pk"), assistant_only=Count("pk", filter=~human_involved()))
    )
    return Containment(**row)


def handoff_reasons(*, filters: ReportFilters) -> list[CountRow]:
    """Hand-offs from the assistant to a human, per reason code (a ticket handed off twice counts twice)."""
    rows = (
        TicketEvent.objects.filter(kind=TicketEventKind.ASSISTANT_HANDOFF, ticket__in=cohort(filters=filters))
        .values("reason")
        .annotate(n=Count("pk"))
        .order_by("-n", "reason")
    )
    return [CountRow(key=row["reason"], count=row["n"]) for row in rows]


# --- Refunds ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundRow:
    key: str
    label: str
    count: int
    amount_cents: int


@dataclass(frozen=True)
class RefundSummary:
    count: int
    amount_cents: int
    average_cents: float | None
    paid_out: int
    payout_median: float | None  # wall seconds from the request to the money paid out
    payout_average: float | None


def refunds() -> Q:
    """A refund: a ticket whose approved amount is promised or paid (tickets/workflow.py COMMITTED_STATUSES)."""
    return Q(status__in=COMMITTED_STATUSES, approved_amount_cents__isnull=False)


def refunds_by(*, filters: ReportFilters, field: str) -> list[RefundRow]:
    """Refunds of the cohort per reason or per state: how many, and the amount approved."""
    rows = (
        cohort(filters=filters)
        .filter(refunds())
        .values(field)
        .annotate(n=Count("pk"), amount=Sum("approved_amount_cents"))
        .order_by("-amount", field)
    )
    return [
        RefundRow(key=row[field], label=row[field], count=row["n"], amount_cents=row["amount"] or 0) for row in rows
    ]


def top_refunded_products(*, filters: ReportFilters, limit: int = TOP_PRODUCTS) -> list[RefundRow]:
    """Products (by SKU) in the most refunds: refunds they are in, and the value of the units asked back."""
    rows = (
        RefundTicketItem.objects.filter(ticket__in=cohort(filters=filters).filter(refunds()))
        .values("order_item__sku")
        .annotate(
            title=Min("order_item__title"),
            n=Count("ticket", distinct=True),
            amount=Sum(F("quantity") * F("order_item__unit_price_cents")),
        )
        .order_by("-n", "-amount", "order_item__sku")[:limit]
    )
    return [
        RefundRow(key=row["order_item__sku"], label=row["title"], count=row["n"], amount_cents=row["amount"] or 0)
        for row in rows
    ]


def refund_summary(*, filters: ReportFilters) -> RefundSummary:
    """Count, total and average of the approved refunds; time from the buyer's request to the payout (wall time,
    as the buyer waits it), over the refunds paid out."""
    paid = Q(payout__status=PayoutStatus.SUCCEEDED, payout__paid_at__isnull=False)
    to_payout = elapsed_seconds("created_at", "payout__paid_at", hours=None)
    row = (
        cohort(filters=filters)
        .filter(refunds())
        .annotate(to_payout=to_payout)
        .aggregate(
            count=Count("pk"),
            amount_cents=Sum("approved_amount_cents"),
            average_cents=Avg("approved_amount_cents"),
            paid_out=Count("pk", filter=paid),
            payout_median=PercentileCont("to_payout", fraction=0.5, filter=paid),
            payout_average=Avg("to_payout", filter=paid),
        )
    )
    return RefundSummary(**{**row, "amount_cents": row["amount_cents"] or 0})


# --- Agents -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRow:
    agent_id: int
    name: str
    handled: int
    resolved: int
    first_response_median: float | None
    csat_average: float | None
    ratings: int
    reopened: int


def agent_performance(*, filters: ReportFilters) -> list[AgentRow]:
    """Per assigned agent, over the cohort: tickets handled and resolved, median first response, CSAT, reopened."""
    hours = business_hours()
    answered = Q(first_responded_at__isnull=False)
    rows = (
        cohort(filters=filters)
        .filter(assigned_agent__isnull=False)
        .annotate(first_response=_durations(hours)["first_response"])
        .values("assigned_agent", "assigned_agent__username", "assigned_agent__first_name", "assigned_agent__last_name")
        .annotate(
            handled=Count("pk"),
            resolved_n=Count("pk", filter=resolved()),
            median=PercentileCont("first_response", fraction=0.5, filter=answered),
            csat=Avg("rating__score"),
            ratings=Count("rating"),
            reopened_n=Count("pk", filter=reopened()),
        )
        .order_by("-handled", "assigned_agent__username")
    )
    return [
        AgentRow(
            agent_id=row["assigned_agent"],
            name=_name(
                row["assigned_agent__username"], row["assigned_agent__first_name"], row["assigned_agent__last_name"]
            ),
            handled=row["handled"],
            resolved=row["resolved_n"],
            first_response_median=row["median"],
            csat_average=row["csat"],
            ratings=row["ratings"],
            reopened=row["reopened_n"],
        )
        for row in rows
    ]


def _name(username: str, first: str, last: str) -> str:
    full = f"{last}{first}".strip() if (first or last) else ""
    return f"{full} ({username})" if full else username


# --- Satisfaction -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    ticket_id: int
    score: int
    comment: str
    created_at: datetime


def csat_distribution(*, filters: ReportFilters) -> dict[int, int]:
    """Ratings of the cohort's tickets per score, 1 to 5 (every score present, zero when none)."""
    counts = dict(
        SatisfactionRating.objects.filter(ticket__in=cohort(filters=filters))
        .values("score")
        .annotate(n=Count("pk"))
        .values_list("score", "n")
    )
    return {score: counts.get(score, 0) for score in range(1, 6)}


def csat_comments(*, filters: ReportFilters, limit: int = LATEST_COMMENTS) -> list[Comment]:
    rows = (
        SatisfactionRating.objects.filter(ticket__in=cohort(filters=filters))
        .exclude(comment="")
        .order_by("-created_at", "-pk")
        .values("ticket_id", "score", "comment", "created_at")[:limit]
    )
    return [Comment(**row) for row in rows]


# --- Filter choices ---------------------------------------------------------------------------------------------


def agent_choices() -> QuerySet[User]:
    """Everyone who can be assigned tickets (the agents), for the agent filter."""
    return (
        User.objects.filter(
            groups__permissions__codename="handle_ticket", groups__permissions__content_type__app_label="tickets"
        )
        .distinct()
        .order_by("username")
    )
