"""SQL expressions the reports aggregate with: percentiles, elapsed seconds, business-hours seconds.

Each works on PostgreSQL (production, the benchmarks) and on SQLite (`make run`): the figures are computed by the
database in both, never by reading rows into Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, Expression, FloatField, Func
from django.db.models.sql.compiler import SQLCompiler

SECONDS_PER_DAY = 86_400
SQLITE_PERCENTILE = "refundchat_percentile_cont"

SqlAndParams = tuple[str, Any]  # Django's as_sql: parameters as a list or a tuple


class _SqlitePercentileCont:
    """PostgreSQL's percentile_cont for SQLite: linear interpolation between the two closest ranks; NULLs skipped."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: float | None, fraction: float) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        position = self.fraction * (len(ordered) - 1)
        below = math.floor(position)
        above = min(below + 1, len(ordered) - 1)
        return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


class PercentileCont(Aggregate):
    """percentile_cont(fraction) WITHIN GROUP (ORDER BY expression): the continuous percentile, as PostgreSQL has it."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must lie between 0 and 1")
        # A float literal in the SQL (never user input): it must be a constant of the ordered-set aggregate.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any) -> SqlAndParams:
        # SQLite has no percentile_cont: register one (per connection, idempotent) written in Python.
        connection.ensure_connection()
        connection.connection.create_aggregate(SQLITE_PERCENTILE, 2, _SqlitePercentileCont)
        # On a copy, not as keyword arguments: Aggregate.as_sql passes its own `template` when there is a filter.
        clone = self.copy()
        clone.function = SQLITE_PERCENTILE
        clone.template = "%(function)s(%(expressions)s, %(fraction)s)"
        return clone.as_sql(compiler, connection, **extra_context)


class EpochSeconds(Func):
    """Seconds since 1970-01-01 UTC of a datetime column."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    arity = 1

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any) -> SqlAndParams:
        # SQLite stores aware datetimes as UTC text, which julianday() reads.
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra_context
        )


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours: the same hours on each business weekday (0 = Monday), in a time zone without daylight saving."""

    weekdays: frozenset[int]
    start: time
    end: time
    zone: str

    @property
    def seconds_per_day(self) -> int:
        return _seconds(self.end) - _seconds(self.start)

    @property
    def utc_offset_seconds(self) -> int:
        offset = datetime(2026, 1, 1, tzinfo=ZoneInfo(self.zone)).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def business_hours() -> BusinessHours | None:
    """settings.REFUNDCHAT_BUSINESS_HOURS as a calendar, or None (durations are then counted in wall time)."""
    raw = getattr(settings, "REFUNDCHAT_BUSINESS_HOURS", None)
    if raw is None:
        return None
    try:
        hours = BusinessHours(
            weekdays=frozenset(int(day) for day in raw["weekdays"]),
            start=time.fromisoformat(raw["start"]),
            end=time.fromisoformat(raw["end"]),
            zone=raw.get("zone", settings.TIME_ZONE),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ImproperlyConfigured(f"REFUNDCHAT_BUSINESS_HOURS is malformed: {error}") from error
    zone = ZoneInfo(hours.zone)
    if datetime(2026, 1, 1, tzinfo=zone).utcoffset() != datetime(2026, 7, 1, tzinfo=zone).utcoffset():
        raise ImproperlyConfigured("REFUNDCHAT_BUSINESS_HOURS needs a time zone without daylight saving time.")
    if not hours.weekdays or not hours.weekdays <= set(range(7)) or hours.seconds_per_day <= 0:
        raise ImproperlyConfigured("REFUNDCHAT_BUSINESS_HOURS needs weekdays 0–6 and a start before its end.")
    return hours


class BusinessClock(Func):
    """Business seconds elapsed from 1970-01-01 (local) to a datetime: the difference of two is a duration in
    business hours.

    Closed form, no calendar table: whole weeks × business days × daily hours, plus the business days of the
    current week before today, plus today's time within the opening hours. 1970-01-01 was a Thursday (weekday 3).
    """

    output_field = FloatField()
    arity = 1

    def __init__(self, expression: Any, *, hours: BusinessHours) -> None:
        super().__init__(EpochSeconds(expression))
        self.hours = hours

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> SqlAndParams:
        inner: Expression = self.get_source_expressions()[0]
        epoch_sql, epoch_params = compiler.compile(inner)
        postgres = connection.vendor == "postgresql"
        hours = self.hours
        local = f"({epoch_sql} + {hours.utc_offset_seconds})"
        day = f"CAST(FLOOR({local} / 86400.0) AS bigint)" if postgres else f"CAST({local} / 86400.0 AS INTEGER)"
        # Both dialects divide integers to an integer; day numbers are positive after 1970.
        # "%%": both backends turn it back into SQL's modulo operator.
        weeks, rest = f"({day} / 7)", f"({day} %% 7)"
        business_days = [r for r in range(7) if (r + 3) % 7 in hours.weekdays]
        before_today = " ".join(f"WHEN {r} THEN {sum(1 for k in business_days if k < r)}" for r in range(7))
        since_midnight = f"({local} - {day} * 86400)"
        clamp_low, clamp_high = ("GREATEST", "LEAST") if postgres else ("MAX", "MIN")
        today = f"{clamp_high}({clamp_low}({since_midnight} - {_seconds(hours.start)}, 0), {hours.seconds_per_day})"
        in_business_day = ", ".join(str(r) for r in business_days)
        sql = (
            f"(({weeks} * {len(business_days)} + CASE {rest} {before_today} END) * {hours.seconds_per_day}"
            f" + CASE WHEN {rest} IN ({in_business_day}) THEN {today} ELSE 0 END)"
        )
        # The column's SQL appears once per use of `local`: its parameters (none for a column) as often.
        return sql, epoch_params * sql.count(epoch_sql)


def elapsed_seconds(start: Any, end: Any, *, hours: BusinessHours | None) -> Any:
    """Seconds from `start` to `end`: in business hours when a calendar is given, else wall-clock seconds."""
    if hours is None:
        return EpochSeconds(end) - EpochSeconds(start)
    return BusinessClock(end, hours=hours) - BusinessClock(start, hours=hours)
