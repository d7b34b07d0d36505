"""Trigram GIN indexes for the console search (tickets/search.py), on PostgreSQL only.

Django's `icontains` on PostgreSQL is `UPPER(column::text) LIKE UPPER('%…%')`, so the
indexes are on UPPER(column::text) with the gin_trgm_ops operator class: a GIN trigram index
serves LIKE with a leading wildcard, for Chinese text too. The tables of other apps
(auth users, chat messages) are indexed here because only this search needs it.
On SQLite (`make run`) every operation here does nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# (app label, model, column, index name)
SEARCHED = [
    ("tickets", "Order", "order_no", "order_no_trgm_idx"),
    ("tickets", "RefundTicket", "return_tracking_no", "ticket_tracking_trgm_idx"),
    ("auth", "User", "username", "user_username_trgm_idx"),
    ("auth", "User", "email", "user_email_trgm_idx"),
    ("auth", "User", "first_name", "user_first_name_trgm_idx"),
    ("auth", "User", "last_name", "user_last_name_trgm_idx"),
    ("messaging", "Message", "body", "message_body_trgm_idx"),
]


def add_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for app_label, model_name, column, name in SEARCHED:
        table = apps.get_model(app_label, model_name)._meta.db_table
        # The expression exactly as the icontains lookup writes it, so the planner can use the index.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} "
            f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
        )


def remove_indexes(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for _app_label, _model_name, _column, name in SEARCHED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0009_workspace_notes_labels_canned_ratings"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("messaging", "0002_presence_and_sockets"),
    ]

    operations = [
        # A no-op on databases other than PostgreSQL (Django checks the vendor).
        TrigramExtension(),
        migrations.RunPython(add_indexes, remove_indexes),
    ]
