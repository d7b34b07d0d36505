from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from tickets.models import Order, RefundKind, RefundReason, RefundTicket
from tickets.services import RequestedItem


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
        if not self.requested_items():
            raise forms.ValidationError(_("Choose at least one item to refund."))
        return cleaned

    def requested_items(self) -> list[RequestedItem]:
        return [
            RequestedItem(order_item_id=item.pk, quantity=self.cleaned_data.get(f"item_{item.pk}") or 0)
            for item, _field, _available, _ticket in self.item_rows
            if (self.cleaned_data.get(f"item_{item.pk}") or 0) > 0
        ]
