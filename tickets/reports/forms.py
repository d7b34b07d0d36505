"""The report filters: a date range (days in the business time zone) and reason, label, agent, channel."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.models import Label, RefundReason
from tickets.reports.selectors import MAX_RANGE_DAYS, Channel, ReportFilters, agent_choices

DEFAULT_DAYS = 30


def with_default_range(query: QueryDict) -> QueryDict:
    """The query with the default range (the last 30 days) filled in where it names none: the form shows it."""
    data = query.copy()
    date_to = data.get("date_to") or str(timezone.localdate())
    if not data.get("date_from"):
        with contextlib.suppress(ValueError):  # a bad end date: the form reports it
            data["date_from"] = str(date.fromisoformat(date_to) - timedelta(days=DEFAULT_DAYS - 1))
    data["date_to"] = date_to
    return data


class ReportFilterForm(forms.Form):
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.ChoiceField(
        label=_("Reason"), required=False, choices=[("", _("All reasons")), *RefundReason.choices]
    )
    label = forms.ModelChoiceField(
        label=_("Label"), required=False, queryset=Label.objects.none(), empty_label=_("All labels")
    )
    agent = forms.ModelChoiceField(
        label=_("Agent"), required=False, queryset=Label.objects.none(), empty_label=_("All agents")
    )
    channel = forms.ChoiceField(
        label=_("Resolved by"), required=False, choices=[("", _("Assistant or human")), *Channel.CHOICES]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].queryset = Label.objects.order_by("name")  # type: ignore[attr-defined]
        self.fields["agent"].queryset = agent_choices()  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        date_to = data.get("date_to") or timezone.localdate()
        date_from = data.get("date_from") or date_to - timedelta(days=DEFAULT_DAYS - 1)
        if date_from > date_to:
            raise forms.ValidationError(_("The start of the range must not be after its end."), code="range_reversed")
        if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(
                _("Choose at most %(days)d days.") % {"days": MAX_RANGE_DAYS}, code="range_too_long"
            )
        data["date_from"], data["date_to"] = date_from, date_to
        return data

    def filters(self) -> ReportFilters:
        """The filters asked for; call after is_valid()."""
        data = self.cleaned_data
        return ReportFilters(
            date_from=data["date_from"],
            date_to=data["date_to"],
            reason=data.get("reason") or "",
            label_id=data["label"].pk if data.get("label") else None,
            agent_id=data["agent"].pk if data.get("agent") else None,
            channel=data.get("channel") or "",
        )
