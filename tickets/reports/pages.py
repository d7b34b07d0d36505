"""The report pages: each a list of figures built from the selectors' rows.

A figure is one table of display values (already rounded and formatted as text), the chart drawn from the same
values and its definition; the page shows the table and the chart, and its CSV export writes exactly that table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from tickets.models import RefundReason, TicketStatus
from tickets.reports import selectors
from tickets.reports.charts import Series, bar_chart, line_chart
from tickets.reports.expressions import business_hours
from tickets.reports.selectors import ReportFilters


@dataclass(frozen=True)
class Figure:
    slug: str
    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    chart: SafeString | str = ""
    definition: str = ""


@dataclass(frozen=True)
class ReportPage:
    slug: str
    title: Promise
    description: Promise
    build: Callable[[ReportFilters], list[Figure]] = field(repr=False)


# --- formatting: the same text in the table and in the CSV ------------------------------------------------------


def _round(value: float, places: int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else str(_round(seconds / 60, 1))


def hours(seconds: float | None) -> str:
    return "" if seconds is None else str(_round(seconds / 3600, 1))


def yuan(cents: float | None) -> str:
    return "" if cents is None else str(_round(cents / 100, 2))


def percent(rate: float | None) -> str:
    return "" if rate is None else str(_round(rate * 100, 1))


def one_decimal(value: float | None) -> str:
    return "" if value is None else str(_round(value, 2))


def number(text: str) -> float | None:
    """A chart value read back from the table's text: the chart shows exactly the table."""
    return float(text) if text else None


def day_label(day: object) -> str:
    return str(day)  # ISO dates: unambiguous in both languages, and sortable in a spreadsheet


def time_basis() -> str:
    calendar = business_hours()
    if calendar is None:
        return _("Counted in wall-clock time (no business-hours calendar is configured).")
    days = ", ".join(date_format_weekday(day) for day in sorted(calendar.weekdays))
    return _("Counted in business hours only: %(days)s, %(start)s–%(end)s (%(zone)s).") % {
        "days": days,
        "start": calendar.start.strftime("%H:%M"),
        "end": calendar.end.strftime("%H:%M"),
        "zone": calendar.zone,
    }


WEEKDAYS = (
    gettext_lazy("Mon"),
    gettext_lazy("Tue"),
    gettext_lazy("Wed"),
    gettext_lazy("Thu"),
    gettext_lazy("Fri"),
    gettext_lazy("Sat"),
    gettext_lazy("Sun"),
)


def date_format_weekday(day: int) -> str:
    return str(WEEKDAYS[day])


def _chart_series(rows: Sequence[tuple[str, ...]], columns: tuple[str, ...], indexes: tuple[int, ...]) -> list[Series]:
    return [Series(columns[i], [number(row[i]) for row in rows]) for i in indexes]


def lines(figure_title: str, rows: Sequence[tuple[str, ...]], columns: tuple[str, ...], *indexes: int) -> SafeString:
    return line_chart(title=figure_title, labels=[row[0] for row in rows], series=_chart_series(rows, columns, indexes))


def bars(
    figure_title: str, rows: Sequence[tuple[str, ...]], columns: tuple[str, ...], *indexes: int, label: int = 0
) -> SafeString:
    return bar_chart(
        title=figure_title, labels=[row[label] for row in rows], series=_chart_series(rows, columns, indexes)
    )


REASONS = dict(RefundReason.choices)
STATUSES = dict(TicketStatus.choices)

# --- the pages ---------------------------------------------------------------------------------------------------


def volume_page(filters: ReportFilters) -> list[Figure]:
    days = selectors.volume_per_day(filters=filters)
    title = _("Tickets opened and resolved per day")
    columns = (_("Day"), _("Opened"), _("Resolved"))
    rows = [(day_label(d.day), str(d.opened), str(d.resolved)) for d in days]
    backlog_title = _("Open backlog at the end of each day")
    backlog_columns = (_("Day"), _("Open tickets"))
    backlog_rows = [(day_label(d.day), str(d.backlog)) for d in days]
    status_title = _("Open backlog now, by state")
    status_columns = (_("State"), _("Open tickets"))
    status_rows = [
        (str(STATUSES.get(row.key, row.key)), str(row.count))
        for row in selectors.open_backlog_by_status(filters=filters)
    ]
    return [
        Figure(
            "opened-resolved",
            title,
            columns,
            rows,
            lines(title, rows, columns, 1, 2),
            _(
                "Opened: tickets created that day. Resolved: tickets whose latest move into a final state "
                "(refunded, rejected, cancelled, closed) was that day. Days are calendar days in %(zone)s."
            )
            % {"zone": selectors.business_zone().key},
        ),
        Figure(
            "backlog",
            backlog_title,
            backlog_columns,
            backlog_rows,
            lines(backlog_title, backlog_rows, backlog_columns, 1),
            _("Tickets opened by the end of the day and not resolved by then (the other filters apply)."),
        ),
        Figure(
            "backlog-by-state",
            status_title,
            status_columns,
            status_rows,
            bars(status_title, status_rows, status_columns, 1),
            _("Tickets open right now, whenever they were opened (the date range does not apply)."),
        ),
    ]


def times_page(filters: ReportFilters) -> list[Figure]:
    summary = selectors.time_summary(filters=filters)
    basis = time_basis()
    summary_title = _("Response and resolution times")
    summary_columns = (_("Figure"), _("Value"))
    summary_rows = [
        (_("Tickets opened"), str(summary.opened)),
        (_("Answered"), str(summary.answered)),
        (_("Never answered"), str(summary.never_answered)),
        (_("First response, median (minutes)"), minutes(summary.first_response_median)),
        (_("First response, p90 (minutes)"), minutes(summary.first_response_p90)),
        (_("Resolved"), str(summary.resolved)),
        (_("Resolution, median (hours)"), hours(summary.resolution_median)),
        (_("Resolution, p90 (hours)"), hours(summary.resolution_p90)),
        (_("First-response promise broken"), str(summary.breached)),
        (_("SLA breach rate (%)"), percent(summary.breach_rate)),
        (_("Reopened"), str(summary.reopened)),
    ]
    per_day_title = _("First response per day of opening (minutes)")
    per_day_columns = (_("Day"), _("Answered"), _("Median (minutes)"), _("p90 (minutes)"))
    per_day_rows = [
        (day_label(d.day), str(d.answered), minutes(d.first_response_median), minutes(d.first_response_p90))
        for d in selectors.first_response_per_day(filters=filters)
    ]
    definition = " ".join(
        [
            _(
                "First response: from the ticket being opened to the first answer by staff (the ticket's "
                "first-response time). Tickets never answered are left out of the times and counted on their own."
            ),
            _("Resolution: from opening to the latest move into a final state, for resolved tickets."),
            _(
                "SLA breach rate: tickets whose first-response promise was broken (flagged by the timer or "
                "answered after the due time), out of the tickets opened."
            ),
            _("Reopened: tickets that left a final state again. Median and p90 are continuous percentiles."),
            basis,
        ]
    )
    return [
        Figure("summary", summary_title, summary_columns, summary_rows, "", definition),
        Figure(
            "first-response-per-day",
            per_day_title,
            per_day_columns,
            per_day_rows,
            lines(per_day_title, per_day_rows, per_day_columns, 2, 3),
            basis,
        ),
    ]


def assistant_page(filters: ReportFilters) -> list[Figure]:
    contained = selectors.containment(filters=filters)
    title = _("Assistant containment")
    columns = (_("Resolved by"), _("Tickets"), _("Share (%)"))
    human = contained.resolved - contained.assistant_only
    share = (lambda n: percent(n / contained.resolved)) if contained.resolved else (lambda n: "")
    rows = [
        (_("Assistant only"), str(contained.assistant_only), share(contained.assistant_only)),
        (_("Human"), str(human), share(human)),
        (_("All resolved"), str(contained.resolved), share(contained.resolved)),
    ]
    reasons_title = _("Hand-off reasons")
    reasons_columns = (_("Reason"), _("Hand-offs"))
    from messaging.assistant.dialog import REASON_LABELS  # the assistant's codes and their names

    reason_rows = [
        (str(REASON_LABELS.get(row.key, row.key or _("(none given)"))), str(row.count))
        for row in selectors.handoff_reasons(filters=filters)
    ]
    return [
        Figure(
            "containment",
            title,
            columns,
            rows,
            bars(title, rows[:2], columns, 1),
            _(
                "Containment rate: resolved tickets that no human handled (never assigned to anyone, and no "
                "message from a staff member in their chat), out of all resolved tickets opened in the range."
            ),
        ),
        Figure(
            "handoff-reasons",
            reasons_title,
            reasons_columns,
            reason_rows,
            bars(reasons_title, reason_rows, reasons_columns, 1),
            _("Each hand-off of a ticket by the assistant to a human, by the reason it gave."),
        ),
    ]


def refunds_page(filters: ReportFilters) -> list[Figure]:
    summary = selectors.refund_summary(filters=filters)
    summary_title = _("Refunds")
    summary_columns = (_("Figure"), _("Value"))
    summary_rows = [
        (_("Refunds"), str(summary.count)),
        (_("Amount (¥)"), yuan(summary.amount_cents)),
        (_("Average refund (¥)"), yuan(summary.average_cents)),
        (_("Paid out"), str(summary.paid_out)),
        (_("Time to payout, median (hours)"), hours(summary.payout_median)),
        (_("Time to payout, average (hours)"), hours(summary.payout_average)),
    ]
    money_columns = (_("Refunds"), _("Amount (¥)"))
    by_reason_title = _("Refunds by reason")
    by_reason_columns = (_("Reason"), *money_columns)
    by_reason = [
        (str(REASONS.get(r.key, r.key)), str(r.count), yuan(r.amount_cents))
        for r in selectors.refunds_by(filters=filters, field="reason")
    ]
    by_state_title = _("Refunds by state")
    by_state_columns = (_("State"), *money_columns)
    by_state = [
        (str(STATUSES.get(r.key, r.key)), str(r.count), yuan(r.amount_cents))
        for r in selectors.refunds_by(filters=filters, field="status")
    ]
    products_title = _("Top refunded products")
    products_columns = (_("SKU"), _("Product"), _("Refunds"), _("Value asked back (¥)"))
    products = [
        (r.key, r.label, str(r.count), yuan(r.amount_cents)) for r in selectors.top_refunded_products(filters=filters)
    ]
    return [
        Figure(
            "summary",
            summary_title,
            summary_columns,
            summary_rows,
            "",
            _(
                "A refund: a ticket of the range whose refund was approved (promised or paid). Amounts are the "
                "approved amounts. Time to payout: from the buyer's request to the money paid out, in wall-clock "
                "time, over the refunds paid out."
            ),
        ),
        Figure(
            "by-reason",
            by_reason_title,
            by_reason_columns,
            by_reason,
            bars(by_reason_title, by_reason, by_reason_columns, 1),
        ),
        Figure(
            "by-state", by_state_title, by_state_columns, by_state, bars(by_state_title, by_state, by_state_columns, 1)
        ),
        Figure(
            "top-products",
            products_title,
            products_columns,
            products,
            bars(products_title, products, products_columns, 2, label=1),
            _("The %(n)d products in the most refunds; value: unit price × units asked back.")
            % {"n": selectors.TOP_PRODUCTS},
        ),
    ]


def agents_page(filters: ReportFilters) -> list[Figure]:
    title = _("Agent performance")
    columns = (
        _("Agent"),
        _("Tickets handled"),
        _("Resolved"),
        _("First response, median (minutes)"),
        _("CSAT average"),
        _("Ratings"),
        _("Reopened"),
    )
    rows = [
        (
            row.name,
            str(row.handled),
            str(row.resolved),
            minutes(row.first_response_median),
            one_decimal(row.csat_average),
            str(row.ratings),
            str(row.reopened),
        )
        for row in selectors.agent_performance(filters=filters)
    ]
    return [
        Figure(
            "agents",
            title,
            columns,
            rows,
            bars(title, rows, columns, 1, 2),
            " ".join(
                [
                    _(
                        "Per agent the ticket is assigned to now, over the tickets opened in the range. CSAT: the "
                        "average score (1–5) of the rated tickets. Reopened: tickets that left a final state again."
                    ),
                    time_basis(),
                ]
            ),
        )
    ]


def csat_page(filters: ReportFilters) -> list[Figure]:
    counts = selectors.csat_distribution(filters=filters)
    total = sum(counts.values())
    title = _("CSAT distribution")
    columns = (_("Score"), _("Ratings"), _("Share (%)"))
    rows = [(str(score), str(n), percent(n / total) if total else "") for score, n in counts.items()]
    average = sum(score * n for score, n in counts.items()) / total if total else None
    summary_rows = [(_("Ratings"), str(total)), (_("CSAT average"), one_decimal(average))]
    comments_title = _("Latest comments")
    comment_columns = (_("Ticket"), _("Score"), _("Rated at"), _("Comment"))
    comments = [
        (f"RC-{c.ticket_id:06d}", str(c.score), date_format(c.created_at, "Y-m-d H:i"), c.comment)
        for c in selectors.csat_comments(filters=filters)
    ]
    return [
        Figure(
            "distribution",
            title,
            columns,
            rows,
            bars(title, rows, columns, 1),
            _("Ratings (1 to 5) the buyers gave to the tickets opened in the range."),
        ),
        Figure("average", _("CSAT"), (_("Figure"), _("Value")), summary_rows),
        Figure(
            "comments",
            comments_title,
            comment_columns,
            comments,
            "",
            _("The %(n)d latest ratings with a comment.") % {"n": selectors.LATEST_COMMENTS},
        ),
    ]


PAGES: dict[str, ReportPage] = {
    page.slug: page
    for page in (
        ReportPage(
            "volume",
            gettext_lazy("Ticket volume and backlog"),
            gettext_lazy("Tickets opened and resolved per day, and the open backlog."),
            volume_page,
        ),
        ReportPage(
            "times",
            gettext_lazy("Response and resolution times"),
            gettext_lazy("First response and resolution (median, p90), SLA breach rate, reopened tickets."),
            times_page,
        ),
        ReportPage(
            "assistant",
            gettext_lazy("Assistant containment"),
            gettext_lazy("Tickets resolved without a human, and why the assistant handed over."),
            assistant_page,
        ),
        ReportPage(
            "refunds",
            gettext_lazy("Refunds"),
            gettext_lazy("Refunds by reason, product and state; average amount and time to payout."),
            refunds_page,
        ),
        ReportPage(
            "agents",
            gettext_lazy("Agent performance"),
            gettext_lazy("Tickets handled, median first response, CSAT and reopened tickets per agent."),
            agents_page,
        ),
        ReportPage(
            "csat",
            gettext_lazy("Customer satisfaction"),
            gettext_lazy("CSAT distribution, average and the latest comments."),
            csat_page,
        ),
    )
}
