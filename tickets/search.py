"""Console search across tickets and chat messages.

Matches order numbers, the buyer (username, name, e-mail), return tracking
numbers and message text, Chinese included, as case-insensitive substrings
(`icontains`). On PostgreSQL, trigram GIN indexes on UPPER(column) (migration
0010) serve these LIKE queries; pg_trgm splits any text into character
trigrams, so it works for Chinese where the default full-text parser does not.
On SQLite (`make run`) the same queries scan, which is fine for a demo's data.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from messaging.models import Message
from tickets.models import RefundTicket

MAX_QUERY_LENGTH = 100


def clean_query(raw: str) -> str:
    """The search text as used: trimmed, inner whitespace collapsed, bounded in length."""
    return " ".join((raw or "").split())[:MAX_QUERY_LENGTH]


def ticket_condition(query: str) -> Q:
    condition = (
        Q(order__order_no__icontains=query)
        | Q(return_tracking_no__icontains=query)
        | Q(buyer__username__icontains=query)
        | Q(buyer__email__icontains=query)
        | Q(buyer__first_name__icontains=query)
        | Q(buyer__last_name__icontains=query)
    )
    digits = query.upper().removeprefix("RC-").lstrip("0")
    if digits.isdigit() and len(digits) <= 12:
        condition |= Q(pk=int(digits))  # RC-000123 or 123 (a longer number is no ticket id: no overflow)
    return condition


def search_tickets(*, query: str) -> QuerySet[RefundTicket]:
    """Tickets matching by number, order number, buyer or tracking number, newest first."""
    return (
        RefundTicket.objects.filter(ticket_condition(query))
        .select_related("order", "buyer", "assigned_agent")
        .prefetch_related("labels")
        .order_by("-created_at", "-id")
    )


def search_messages(*, query: str) -> QuerySet[Message]:
    """Chat messages whose text contains the query, newest first, with their ticket."""
    return (
        Message.objects.filter(body__icontains=query)
        .select_related("sender", "conversation__ticket", "conversation__ticket__buyer")
        .order_by("-created_at", "-id")
    )
