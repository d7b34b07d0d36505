"""Showing money and durations the way buyers read them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils.translation import ngettext


def format_cny(cents: int) -> str:
    """¥1,234.50 from 123450 cents."""
    amount = Decimal(cents) / 100
    return f"¥{amount:,.2f}"


def format_duration(duration: timedelta) -> str:
    """A promise such as "2 hours" or "30 minutes", in the active language."""
    minutes = int(duration.total_seconds() // 60)
    if minutes % (60 * 24) == 0 and minutes >= 60 * 24:
        days = minutes // (60 * 24)
        return ngettext("%(count)d day", "%(count)d days", days) % {"count": days}
    if minutes % 60 == 0 and minutes >= 60:
        hours = minutes // 60
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
