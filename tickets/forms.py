from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from tickets.formatting import format_cny
from tickets.models import Order, PayoutMethod, RefundKind, RefundReason, RefundTicket, ReturnCondition, TicketStatus
from tickets.payouts import PayoutError, check_payout_account
from tickets.selectors import QueueFilters
from tickets.services import RequestedItem
from tickets.workflow import CARRIERS, Need, Transition, TransitionInput


class UnechoedTextInput(forms.TextInput):
    """A visible text input that never renders a value back: a refused form does not echo a card number."""

    def format_value(self, value: Any) -> str | None:
        return None


class RefundRequestForm(forms.Form):
    """What the buyer asks for: refund type, reason, and how many of each item."""

    kind = forms.ChoiceField(label=_("What do you want?"), choices=RefundKind.choices, widget=forms.RadioSelect)
    reason = forms.ChoiceField(label=_("Reason"), choices=[("", _("Choose a reason")), *list(RefundReason.choices)])
    description = forms.CharField(
        label=_("Describe the problem (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    payout_method = forms.ChoiceField(
        label=_("Refund to"),
        choices=PayoutMethod.choices,
        required=False,
        initial=PayoutMethod.ORIGINAL,
        widget=forms.RadioSelect(attrs={"data-testid": "payout-method"}),
    )
    # Never rendered back: a refused form shows the field empty, so the number is not echoed into the page.
    payout_account = forms.CharField(
        label=_("Card number or account"),
        required=False,
        max_length=64,
        widget=UnechoedTextInput(attrs={"autocomplete": "off", "data-testid": "payout-account"}),
        help_text=_("Stored encrypted; staff only ever see it masked."),
    )

    def __init__(
        self,
        *args: Any,
        order: Order,
        refundable: dict[int, int],
        open_tickets: dict[int, RefundTicket],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.order = order
        self.item_rows = []
        for item in order.items.all():
            # An item already in an open ticket continues there, not in a second ticket.
            available = 0 if item.pk in open_tickets else refundable.get(item.pk, 0)
            name = f"item_{item.pk}"
            self.fields[name] = forms.IntegerField(
                label=item.title,
                min_value=0,
                max_value=available,
                initial=0,
                required=False,
                disabled=available == 0,
                widget=forms.NumberInput(attrs={"data-testid": "refund-item-quantity", "inputmode": "numeric"}),
            )
            self.item_rows.append((item, self[name], available, open_tickets.get(item.pk)))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        method = cleaned.get("payout_method") or PayoutMethod.ORIGINAL
        try:
            check_payout_account(method=method, account=cleaned.get("payout_account") or "")
        except PayoutError as error:
            self.add_error("payout_account", error.message)
        if not self.requested_items():
            raise forms.ValidationError(_("Choose at least one item to refund."))
        return cleaned

    def requested_items(self) -> list[RequestedItem]:
        return [
            RequestedItem(order_item_id=item.pk, quantity=self.cleaned_data.get(f"item_{item.pk}") or 0)
            for item, _field, _available, _ticket in self.item_rows
            if (self.cleaned_data.get(f"item_{item.pk}") or 0) > 0
        ]


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultiplePhotoField(forms.FileField):
    """Several files in one input. Only their presence is checked here: their content is checked by
    media's validation (tickets.workflow.do_transition_with_photos), with its own refusal messages."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultiplePhotoInput(attrs={"accept": "image/*", "data-testid": "condition-photos"}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultiplePhotoField, self).clean(item, initial) for item in files]


class TransitionForm(forms.Form):
    """The inputs one transition needs (tickets.workflow.Need), and only those."""

    def __init__(self, *args: Any, transition: Transition, ticket: RefundTicket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transition = transition
        self.kept_input = False
        needs = transition.needs
        if Need.AMOUNT in needs:
            self.fields["amount"] = forms.DecimalField(
                label=_("Refund for the items (¥)"),
                min_value=Decimal("0.01"),
                decimal_places=2,
                initial=cents_to_yuan(ticket.requested_amount_cents),
            )
            self.fields["refund_shipping_fee"] = forms.BooleanField(
                label=_("Also refund the shipping fee (%(fee)s)")
                % {"fee": format_cny(ticket.order.shipping_fee_cents)},
                required=False,
            )
        if Need.TRACKING in needs:
            self.fields["carrier"] = forms.ChoiceField(
                label=_("Carrier"), choices=[("", _("Choose the carrier"))] + [(k, v[0]) for k, v in CARRIERS.items()]
            )
            self.fields["tracking_no"] = forms.CharField(label=_("Tracking number"), max_length=40)
        if Need.CONDITION in needs:
            self.fields["condition"] = forms.ChoiceField(label=_("Condition"), choices=ReturnCondition.choices)
            self.fields["amount"] = forms.DecimalField(
                label=_("Refund after inspection (¥, leave empty to keep)"),
                min_value=Decimal("0.01"),
                decimal_places=2,
                required=False,
                initial=cents_to_yuan(ticket.approved_amount_cents or 0),
            )
            self.fields["photos"] = MultiplePhotoField(label=_("Photos of the items (optional)"), required=False)
        if Need.REASON in needs:
            self.fields["reason"] = forms.CharField(
                label=_("Reason (the buyer sees it)"), max_length=500, widget=forms.Textarea(attrs={"rows": 2})
            )
        elif transition.name in ("cancel", "escalate"):
            self.fields["reason"] = forms.CharField(label=_("Why? (optional)"), max_length=500, required=False)

    def submitted_input(self) -> dict[str, str]:
        """What was typed and chosen into this bound form, by field name (files are not kept)."""
        return {
            name: self.data[self.add_prefix(name)]
            for name, field in self.fields.items()
            if not isinstance(field, forms.FileField) and self.add_prefix(name) in self.data
        }

    def keep_input(self, submitted: dict[str, str]) -> None:
        """Show `submitted_input()` of a refused try again, as this (unbound) form's starting values."""
        self.initial.update(submitted)
        self.kept_input = True

    def transition_input(self) -> TransitionInput:
        data = self.cleaned_data
        amount = data.get("amount")
        return TransitionInput(
            reason=data.get("reason") or "",
            amount_cents=int(amount * 100) if amount is not None else None,
            refund_shipping_fee=bool(data.get("refund_shipping_fee")),
            carrier=data.get("carrier") or "",
            tracking_no=data.get("tracking_no") or "",
            condition=data.get("condition") or "",
        )

    def photos(self) -> list[UploadedFile]:
        return list(self.cleaned_data.get("photos") or [])


def cents_to_yuan(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


class QueueFilterForm(forms.Form):
    """The console queue's filters; a bad value is reported and ignored, never a server error."""

    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("Any status")), *TicketStatus.choices], required=False
    )
    reason = forms.ChoiceField(
        label=_("Reason"), choices=[("", _("Any reason")), *RefundReason.choices], required=False
    )
    min_amount = forms.DecimalField(label=_("From ¥"), min_value=Decimal(0), decimal_places=2, required=False)
    max_amount = forms.DecimalField(label=_("To ¥"), min_value=Decimal(0), decimal_places=2, required=False)
    created_from = forms.DateField(
        label=_("Opened from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label=_("Opened until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def queue_filters(self) -> QueueFilters:
        if not self.is_valid():
            return QueueFilters()
        data = self.cleaned_data
        return QueueFilters(
            status=data["status"],
            reason=data["reason"],
            min_amount_cents=int(data["min_amount"] * 100) if data["min_amount"] is not None else None,
            max_amount_cents=int(data["max_amount"] * 100) if data["max_amount"] is not None else None,
            created_from=data["created_from"],
            created_to=data["created_to"],
        )
