from __future__ import annotations

from functools import lru_cache

from django import template
from django.db import models
from django.utils.translation import get_language

from tickets.formatting import format_cny

register = template.Library()


@register.filter
def cny(cents: int | None) -> str:
    """Render integer cents as ¥1,234.50."""
    return "" if cents is None else format_cny(int(cents))


@register.filter
def choice_label(instance: models.Model, field_name: str) -> str:
    """`{{ ticket|choice_label:"status" }}`: what `get_status_display` shows, without its cost.

    Django's get_FOO_display rebuilds the field's whole choices dict, translating and hashing every label, on each
    call: four of them per row made a 50-row queue page spend ~25 ms in gettext (docs/benchmarks.md). The labels of a
    field are the same for every row, so they are looked up once per language.
    """
    value = getattr(instance, field_name)
    return _choice_labels(type(instance), field_name, get_language()).get(value, value)


@lru_cache(maxsize=256)
def _choice_labels(model: type[models.Model], field_name: str, language: str | None) -> dict[object, str]:
    field = model._meta.get_field(field_name)
    return {value: str(label) for value, label in field.flatchoices}  # type: ignore[union-attr]
