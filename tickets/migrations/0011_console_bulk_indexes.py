"""Indexes for the console queue on a large data set (docs/benchmarks.md, "Console on 100,000 tickets").

The queue sorts by `first_responded_at ASC NULLS FIRST, first_response_due_at, id` (tickets/selectors.py
console_queue). Without an index in that order PostgreSQL joins every ticket of the view to its order, buyer,
agent and conversation and sorts them all to show 50. Two partial indexes in exactly that order, one over the open
states (a few thousand rows; the mine, unassigned, open, waiting, SLA and escalated views are subsets of it) and one
over the final states (the closed view), let it read the first page in order and stop. Like migration 0010 this is
raw SQL run on PostgreSQL only, so the models' state does not change; on SQLite it does nothing.

Chinese search words and given names are mostly two characters (运费, 破损, 文静). pg_trgm finds no trigram in a
two-character LIKE pattern, so the trigram indexes of migration 0010 cannot serve them and PostgreSQL reads every
row. GIN indexes on the searched columns' character bigrams (the idea of pg_bigm, which is not in PostgreSQL's
contrib) serve them: `refundchat_bigrams(text)` is the set of its two-character substrings, and tickets/search.py
asks, for a two-character query, for rows whose bigrams contain the query, then checks the text itself.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

OPEN = (
    "requested",
    "awaiting_evidence",
    "under_review",
    "approved_refund_only",
    "return_required",
    "return_in_transit",
    "return_received",
    "refund_pending",
    "escalated",
)
FINAL = ("refunded", "rejected", "cancelled", "closed")
ORDER = "first_responded_at ASC NULLS FIRST, first_response_due_at, id"


def _in(statuses: tuple[str, ...]) -> str:
    return ", ".join(f"'{status}'" for status in statuses)


# (index name, statuses it covers)
INDEXES = [("ticket_queue_open_idx", OPEN), ("ticket_queue_final_idx", FINAL)]


# The distinct two-character substrings of a text (none for a text shorter than two characters).
BIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION refundchat_bigrams(text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT coalesce(array_agg(DISTINCT substr($1, i, 2)), '{}') FROM generate_series(1, char_length($1) - 1) AS i $$
"""
# (app label, model, column, index name): every column the console search matches.
BIGRAM_INDEXES = [
    ("messaging", "Message", "body", "message_body_bigram_idx"),
    ("tickets", "Order", "order_no", "order_no_bigram_idx"),
    ("tickets", "RefundTicket", "return_tracking_no", "ticket_tracking_bigram_idx"),
    ("auth", "User", "username", "user_username_bigram_idx"),
    ("auth", "User", "email", "user_email_bigram_idx"),
    ("auth", "User", "first_name", "user_first_name_bigram_idx"),
    ("auth", "User", "last_name", "user_last_name_bigram_idx"),
]


# Message search lists the newest first: with the messages in that order PostgreSQL reads them newest first and
# stops at the 20th match of a common word, instead of sorting every match (a hundred thousand for 运费).
MESSAGE_ORDER_INDEX = "message_created_idx"


def add_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    table = quote(apps.get_model("tickets", "RefundTicket")._meta.db_table)
    for name, statuses in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {table} ({ORDER}) WHERE status IN ({_in(statuses)})"
        )
    messages = quote(apps.get_model("messaging", "Message")._meta.db_table)
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {quote(MESSAGE_ORDER_INDEX)} ON {messages} (created_at DESC, id DESC)"
    )
    schema_editor.execute(BIGRAMS_FUNCTION)
    for app_label, model_name, column, name in BIGRAM_INDEXES:
        searched = quote(apps.get_model(app_label, model_name)._meta.db_table)
        # The expression exactly as tickets/search.py writes it: refundchat_bigrams(UPPER(column)).
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {searched} "
            f"USING gin (refundchat_bigrams(UPPER({quote(column)})))"
        )


def remove_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    names = [name for name, _statuses in INDEXES] + [MESSAGE_ORDER_INDEX]
    for name in names + [index for _a, _m, _c, index in BIGRAM_INDEXES]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")
    schema_editor.execute("DROP FUNCTION IF EXISTS refundchat_bigrams(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0010_search_trigram_indexes"),
        ("messaging", "0003_message_cards_and_attachments"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(add_indexes, remove_indexes)]
