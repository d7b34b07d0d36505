"""The managers' report pages on the bulk data set: `python -m tests.load.reports_bench` (`make bench-reports`).

Like tests/load/console_bench.py, whose helpers it uses: creates and migrates its own database
(refundchat_reports_bulk by default: the reports need seed_bulk's assistant hand-offs and their own indexes), fills
it once with `manage.py seed_bulk` (100,000 tickets, 1,000,000 messages), then renders every report page with the
Django test client as bulk-manager, over the default range (the last 30 days) and over the whole data set (180
days), plus some filtered variants. For each: SQL queries, median and p95 wall time over --runs renders, and the
EXPLAIN ANALYZE of its slowest query. docs/benchmarks.md, "Reports on 100,000 tickets", has the figures.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.load.bench import log, machine
from tests.load.console_bench import Page, measure_pages, postgres_version, run_benchmark, seed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load.reports_bench", description=__doc__)
    add = parser.add_argument
    add("--database-name", default="refundchat_reports_bulk", help="database on DATABASE_URL's server (created)")
    add("--tickets", type=int, default=100_000, help="tickets of the bulk data set (default 100,000)")
    add("--messages-per-ticket", type=float, default=10.0, help="average chat messages per ticket (default 10)")
    add("--seed", type=int, default=2026, help="seed_bulk's random seed")
    add("--reseed", action="store_true", help="replace the bulk data set even when one of that size is there")
    add("--runs", type=int, default=10, help="timed renders per page (default 10)")
    add("--pages", default="", help="only the pages whose name contains one of these comma-separated words")
    add("--json", type=Path, default=None, help="also write the results (with the full plans) here")
    add("--quick", action="store_true", help="a smoke run: 2,000 tickets, 3 runs per page")
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.runs = 2_000, 3
    return args


def pages() -> list[Page]:
    from django.utils import timezone

    from tickets.models import Label, RefundTicket
    from tickets.reports.pages import PAGES

    today = timezone.localdate()
    everything = f"date_from={today - timedelta(days=365)}&date_to={today}"
    label = Label.objects.filter(name="VIP").values_list("pk", flat=True).first()
    agent = (
        RefundTicket.objects.filter(assigned_agent__username__startswith="bulk-a")
        .values_list("assigned_agent_id", flat=True)
        .first()
    )
    result = []
    for slug in PAGES:
        url = f"/admin/reports/{slug}/"
        result.append(Page(f"{slug}, last 30 days", "manager", url))
        result.append(Page(f"{slug}, whole data set", "manager", f"{url}?{everything}"))
    result += [
        Page(
            "times, whole data set, resolved by a human", "manager", f"/admin/reports/times/?{everything}&channel=human"
        ),
        Page(
            "assistant, whole data set, label VIP", "manager", f"/admin/reports/assistant/?{everything}&label={label}"
        ),
        Page(
            "refunds, whole data set, wrong size", "manager", f"/admin/reports/refunds/?{everything}&reason=wrong_size"
        ),
        Page("agents, whole data set, one agent", "manager", f"/admin/reports/agents/?{everything}&agent={agent}"),
        Page("volume, CSV export", "manager", f"/admin/reports/volume/?{everything}&export=opened-resolved"),
    ]
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    log("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    seeding = seed(args)
    all_pages = pages()
    words = [w.strip() for w in args.pages.split(",") if w.strip()]
    if words:
        all_pages = [p for p in all_pages if any(w in p.name for w in words)]
    client = Client()
    client.force_login(get_user_model().objects.get(username="bulk-manager"))
    results: dict[str, Any] = {
        "machine": {**machine(), "postgresql": postgres_version()},
        "args": {k: str(v) for k, v in vars(args).items()},
        "seeding": seeding,
        "pages": [],
    }
    results["pages"] = measure_pages({page.who: client for page in all_pages}, all_pages, args.runs)
    return results


def main(argv: list[str] | None = None) -> int:
    # console_bench.setup_django gives the encrypted fields a throwaway key (settings demand one with DEBUG off).
    return run_benchmark(parse_args(argv), target="bench-reports", run=run)


if __name__ == "__main__":
    raise SystemExit(main())
