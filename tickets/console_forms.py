"""Forms of the agents' workspace: queue filters by label and team, notes, labels, canned replies, ratings."""

from __future__ import annotations

import dataclasses
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from tickets.forms import QueueFilterForm
from tickets.models import Label, ReplyLanguage, Team
from tickets.selectors import QueueFilters


class ConsoleQueueFilterForm(QueueFilterForm):
    """The queue filters plus label and team."""

    label = forms.ModelChoiceField(
        label=_("Label"), queryset=Label.objects.order_by("name"), required=False, empty_label=_("Any label")
    )
    team = forms.ChoiceField(label=_("Team"), choices=[("", _("Any team")), *Team.choices], required=False)

    def queue_filters(self) -> QueueFilters:
        filters = super().queue_filters()
        if not self.is_valid():
            return filters
        label = self.cleaned_data["label"]
        return dataclasses.replace(filters, label_id=label.pk if label else None, team=self.cleaned_data["team"])


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Internal note"),
        max_length=2000,
        widget=forms.Textarea(
            attrs={"rows": 2, "data-testid": "note-input", "placeholder": _("Only staff see this. @name notifies.")}
        ),
    )


class LabelsForm(forms.Form):
    labels = forms.ModelMultipleChoiceField(
        label=_("Labels"), queryset=Label.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )


class TeamTransferForm(forms.Form):
    team = forms.ChoiceField(label=_("Team"), choices=[("", _("Back to the agents")), *Team.choices], required=False)
    note = forms.CharField(label=_("Note for the team"), max_length=500, required=False)


class CannedReplyForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=80)
    language = forms.ChoiceField(label=_("Language"), choices=ReplyLanguage.choices)
    body = forms.CharField(
        label=_("Text"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("Variables: {buyer_name}, {order_no}, {refund_amount}, {eta}."),
    )
    team = forms.BooleanField(label=_("Team reply (every agent can use it)"), required=False)

    def __init__(self, *args: Any, allow_team: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not allow_team:
            del self.fields["team"]


class RatingForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("Rating"),
        coerce=int,
        choices=[(n, str(n)) for n in range(1, 6)],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label=_("Comment (optional)"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
