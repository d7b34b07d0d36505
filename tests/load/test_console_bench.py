"""The console benchmark's harness on a small bulk data set, in the test database: every page it measures renders,
with a number of queries that does not depend on the data, and each slowest query has its plan.

No wall-clock time is asserted: the figures are docs/benchmarks.md's business ("Console on 100,000 tickets").
"""

from __future__ import annotations

import pytest
from django.db import connection

from tests.load import console_bench

pytestmark = [
    pytest.mark.django_db(transaction=True),  # committed, then flushed: see tests/tickets/test_seed_bulk.py
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the benchmark explains plans on PostgreSQL"),
]


def test_console_bench_measures_every_page_on_a_small_bulk_data_set() -> None:
    args = console_bench.parse_args(["--tickets", "400", "--runs", "1", "--no-migrate"])
    results = console_bench.run(args)

    assert results["seeding"]["seeded"] is True
    assert results["seeding"]["tickets"] == 400
    rows = {row["page"]: row for row in results["pages"]}
    assert {f"queue {view}" for view in console_bench.QUEUE_VIEW_NAMES} <= set(rows)
    assert any(name.startswith("search message text") for name in rows)
    for row in results["pages"]:
        assert row["median_ms"] is not None
        assert row["plan"]["summary"]
        assert "Execution Time" in row["plan"]["text"]
        if row["page"].startswith("queue"):
            # The queue's query count is bounded whatever the page shows (tests/tickets/test_views.py: 10, 11;
            # a label filter one more, tests/tickets/test_labels_and_teams.py).
            assert row["queries"] <= 12, row["page"]
        elif row["page"].startswith("search"):
            assert row["queries"] <= 9, row["page"]
    table = console_bench.table(results)
    assert table.count("\n") == len(results["pages"]) + 1
