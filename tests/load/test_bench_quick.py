"""The load harness end to end in its quick mode, on the test database: it runs and its books balance.

No wall-clock time is asserted: latency figures are the benchmark's business (docs/benchmarks.md), not a test's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.load import bench
from tests.stack import current_database_url

# Sorted with the browser tests (tests/conftest.py runs `e2e` last): it starts real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_quick_bench_runs_and_loses_nothing(tmp_path: Path) -> None:
    database_url, sqlite = current_database_url()
    assert not sqlite, "the load harness needs PostgreSQL (set DATABASE_URL, as CI does)"
    out = tmp_path / "bench.json"

    assert bench.main(["--quick", "--database-url", database_url, "--no-migrate", "--json", str(out)]) == 0

    results = json.loads(out.read_text())
    app, baseline = results["refundchat"], results["baseline"]
    sockets = app["connect"]["sockets"]
    assert sockets == 48
    assert app["idle"]["sockets_held"] == sockets
    assert baseline["idle"]["sockets_held"] == sockets
    for side in (app, baseline):
        for profile in ("steady", "surge"):
            figures = side[profile]
            assert (figures["duplicates"], figures["out_of_order"], figures["errors"]) == (0, 0, 0), profile
        assert side["steady"]["lost"] == side["steady"]["unacked"] == 0
        assert side["steady"]["latency_ms"]["n"] == side["steady"]["sent"]
        assert side["surge"]["surge"]["lost"] == side["surge"]["recovery"]["lost"] == 0
    storm = app["storm"]
    assert (storm["clients_behind"], storm["clients_caught_up"]) == (0, sockets)
    assert (storm["lost"], storm["duplicates"], storm["out_of_order"]) == (0, 0, 0)
    assert app["idle"]["processes"]["daphne"]["rss_mb"] > 0
