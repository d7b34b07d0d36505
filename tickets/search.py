"""Console search across tickets and chat messages.

Matches order numbers, the buyer (username, name, e-mail), return tracking
numbers and message text, Chinese included, as case-insensitive substrings
(`icontains`). On PostgreSQL, trigram GIN indexes on UPPER(column) (migration
0010) serve these LIKE queries; pg_trgm splits any text into character
trigrams, so it works for Chinese where the default full-text parser does not.
On SQLite (`make run`) the same queries scan, which is fine for a demo's data.

A two-character query (most Chinese words: 运费, 破损) has no trigram, so on PostgreSQL message search also asks
the character-bigram index of migration 0011 (`refundchat_bigrams`), then checks the text as above.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.contrib.postgres.fields import ArrayField
from django.db import connection, models
from django.db.models import Func, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Upper

from messaging.models import Conversation, Message
from tickets.models import Order, RefundTicket

MAX_QUERY_LENGTH = 100


def clean_query(raw: str) -> str:
    """The search text as used: trimmed, inner whitespace collapsed, bounded in length."""
    return " ".join((raw or "").split())[:MAX_QUERY_LENGTH]


def ticket_condition(query: str) -> Q:
    """Tickets whose order, buyer or tracking number (or number) matches.

    One subquery per way to match, each answered from its own index (the trigram indexes of orders, users and
    tracking numbers; the tickets' order and buyer indexes; the primary key), united: not conditions on a join of
    every ticket with its order and buyer, which PostgreSQL can only test row by row over all tickets
    (docs/benchmarks.md, "Console on 100,000 tickets").
    """
    buyers = User.objects.filter(
        contains("username", query)
        | contains("email", query)
        | contains("first_name", query)
        | contains("last_name", query)
    ).values("pk")
    orders = Order.objects.filter(contains("order_no", query)).values("pk")
    tickets = RefundTicket.objects.order_by()
    ways = [
        tickets.filter(order__in=orders),
        tickets.filter(buyer__in=buyers),
        tickets.filter(contains("return_tracking_no", query)),
    ]
    digits = query.upper().removeprefix("RC-").lstrip("0")
    if digits.isdigit() and len(digits) <= 12:
        ways.append(tickets.filter(pk=int(digits)))  # RC-000123 or 123 (a longer number is no ticket id: no overflow)
    first, *others = [way.values("pk") for way in ways]
    return Q(pk__in=first.union(*others))


def search_tickets(*, query: str) -> QuerySet[RefundTicket]:
    """Tickets matching by number, order number, buyer or tracking number, newest first."""
    return (
        RefundTicket.objects.filter(ticket_condition(query))
        .select_related("order", "buyer", "assigned_agent")
        .prefetch_related("labels")
        .order_by("-created_at", "-id")
    )


class Bigrams(Func):
    """refundchat_bigrams(text): the distinct two-character substrings of a text (PostgreSQL, migration 0011)."""

    function = "refundchat_bigrams"
    output_field = ArrayField(models.TextField())


def contains(column: str, query: str) -> Q:
    """`column` contains `query`, any case (`icontains`). For a two-character query on PostgreSQL the same test is
    asked as: the column's bigrams (refundchat_bigrams(UPPER(column)), indexed by migration 0011) contain the
    query's one bigram. That is exactly "contains" for two characters, and the index answers it without reading
    the rows (a trigram index cannot: a two-character pattern has no trigram)."""
    if len(query) == 2 and connection.vendor == "postgresql":
        return Q(BigramsContain(Bigrams(Upper(column)), [query.upper()]))
    return Q(**{f"{column}__icontains": query})


class BigramsContain(Func):
    """refundchat_bigrams(...) @> ARRAY[...]: a boolean condition usable in Q()."""

    template = "%(expressions)s"
    arg_joiner = " @> "
    output_field = models.BooleanField()

    def __init__(self, bigrams: Bigrams, wanted: list[str]) -> None:
        super().__init__(bigrams, Value(wanted, output_field=ArrayField(models.TextField())))


def search_messages(*, query: str) -> QuerySet[Message]:
    """Chat messages whose text contains the query, newest first, with their ticket."""
    messages = Message.objects.filter(contains("body", query))
    # Prefetched, not joined: PostgreSQL would join every matching message (a hundred thousand for a common
    # word) to its conversation, ticket and buyer before sorting them to keep a page of 20.
    return messages.prefetch_related(
        Prefetch("conversation", queryset=Conversation.objects.select_related("ticket__buyer")), "sender"
    ).order_by("-created_at", "-id")
