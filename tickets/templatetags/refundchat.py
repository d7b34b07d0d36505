from __future__ import annotations

from django import template

from tickets.formatting import format_cny

register = template.Library()


@register.filter
def cny(cents: int | None) -> str:
    """Render integer cents as ¥1,234.50."""
    return "" if cents is None else format_cny(int(cents))
