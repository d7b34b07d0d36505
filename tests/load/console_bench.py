"""The console on the bulk data set: `python -m tests.load.console_bench` (`make bench-console`).

Creates and migrates its own database on DATABASE_URL's server (refundchat_bulk_bench by default), fills it with
`manage.py seed_bulk` (100,000 tickets and 1,000,000 messages by default; a database that already holds a bulk data
set of that size is reused, --reseed replaces it), then renders every console page with the Django test client,
logged in as an agent (the one with the most open tickets) and as a manager: the queue views with their filters
and default sort, the ticket page, the search page. For each page: how many SQL queries, the median and p95 wall
time over --runs renders (after one warm-up render), and the EXPLAIN ANALYZE summary of its slowest query.
docs/benchmarks.md, "Console on 100,000 tickets", has the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.load.bench import database_url_for, ensure_database, log, machine, percentiles
from tests.stack import field_keys

SLOW_MS = 200.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.load.console_bench", description=__doc__)
    add = parser.add_argument
    add("--database-name", default="refundchat_bulk_bench", help="database on DATABASE_URL's server (created)")
    add("--tickets", type=int, default=100_000, help="tickets of the bulk data set (default 100,000)")
    add("--messages-per-ticket", type=float, default=10.0, help="average chat messages per ticket (default 10)")
    add("--seed", type=int, default=2026, help="seed_bulk's random seed")
    add("--reseed", action="store_true", help="replace the bulk data set even when one of that size is there")
    add("--runs", type=int, default=20, help="timed renders per page (default 20)")
    add("--pages", default="", help="only the pages whose name contains one of these comma-separated words")
    add("--no-migrate", dest="migrate", action="store_false", help="measure the database's schema as it is")
    add("--json", type=Path, default=None, help="also write the results (with the full plans) here")
    add("--quick", action="store_true", help="a smoke run: 2,000 tickets, 3 runs per page")
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.runs = 2_000, 3
    return args


@dataclass(frozen=True)
class Page:
    name: str
    who: str  # "agent" or "manager"
    url: str


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refundchat.settings")
    os.environ.setdefault("DJANGO_DEBUG", "0")
    os.environ.setdefault("DJANGO_SECRET_KEY", "console-bench-" + uuid.uuid4().hex)
    os.environ.setdefault("REFUNDCHAT_FIELD_KEYS", field_keys())  # production settings need them (issue #9)
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    # Not setup_test_environment(): it wraps every template render to record its context for the test client, which
    # for a queue of 50 included rows cost about as much as the rendering itself; Daphne renders without it.
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    import django

    django.setup()


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """The bulk data set: reused when one of the asked size is there, else (re)created; returns how."""
    from django.core.management import call_command

    from tickets.models import RefundTicket

    have = RefundTicket.objects.filter(buyer__username__startswith="bulk-").count()
    if have == args.tickets and not args.reseed:
        log(f"reusing the bulk data set already in the database ({have:,} tickets)")
        return {"seeded": False, "tickets": have}
    log(f"seeding {args.tickets:,} tickets (manage.py seed_bulk)")
    out = io.StringIO()
    started = time.monotonic()
    call_command(
        "seed_bulk",
        "--tickets",
        str(args.tickets),
        "--messages-per-ticket",
        str(args.messages_per_ticket),
        "--seed",
        str(args.seed),
        *(["--force"] if have else []),
        stdout=out,
    )
    seconds = time.monotonic() - started
    sys.stderr.write(out.getvalue())
    return {"seeded": True, "tickets": args.tickets, "seconds": round(seconds, 1), "output": out.getvalue()}


def pages() -> tuple[list[Page], dict[str, Any]]:
    """The pages measured, with the sample values they search for."""
    from django.contrib.auth.models import User
    from django.db.models import Count, Q
    from django.utils import timezone

    from messaging.models import Conversation
    from tickets.models import OPEN_STATUSES, Label, RefundTicket
    from tickets.selectors import QueueCursor, console_queue

    bulk = RefundTicket.objects.filter(buyer__username__startswith="bulk-")
    busiest = bulk.order_by("-conversation__last_seq").values_list("pk", flat=True).first()
    typical = bulk.filter(status__in=OPEN_STATUSES).order_by("pk").values_list("pk", flat=True).first()
    closed = bulk.filter(status="refunded").order_by("pk").values_list("pk", flat=True).first()
    order_no = bulk.order_by("pk").values_list("order__order_no", flat=True)[bulk.count() // 2]
    tracking = bulk.exclude(return_tracking_no="").order_by("pk").values_list("return_tracking_no", flat=True).first()
    name = bulk.order_by("pk").values_list("buyer__first_name", flat=True).first()
    label = Label.objects.filter(name="VIP").values_list("pk", flat=True).first()
    today = timezone.localdate()
    week_ago = today - timedelta(days=7)
    quarter_ago = today - timedelta(days=90)
    if not (busiest and typical and closed and tracking and name and label):
        raise RuntimeError("the bulk data set lacks a ticket, tracking number, buyer or label to measure with")
    assert Conversation.objects.filter(ticket_id=busiest).exists()
    samples = {
        "order_no": order_no,
        "tracking_no": tracking,
        "buyer_name": name,
        "message_text": "运费",
        "busiest_ticket": busiest,
        "open_ticket": typical,
        "refunded_ticket": closed,
        "agent_open_tickets": None,
    }
    agent_load = (
        RefundTicket.objects.filter(assigned_agent__username__startswith="bulk-a")
        .values("assigned_agent__username")
        .annotate(n=Count("pk", filter=Q(status__in=OPEN_STATUSES)))
        .order_by("-n", "assigned_agent__username")
        .first()
    )
    assert agent_load is not None
    samples["agent"], samples["agent_open_tickets"] = agent_load["assigned_agent__username"], agent_load["n"]

    closed_in_order = console_queue(view="closed", user=User.objects.get(username=samples["agent"]))
    # (On a small data set, the last closed ticket: the page after it is empty and shows the first page.)
    deep_cursor = QueueCursor.of(closed_in_order[min(199 * 50, closed_in_order.count()) - 1]).encode()
    result = [Page(f"queue {view}", "agent", f"/console/?view={view}") for view in QUEUE_VIEW_NAMES]
    result += [
        Page("queue open, status under review", "agent", "/console/?view=open&status=under_review"),
        Page("queue open, reason quality defect", "agent", "/console/?view=open&reason=quality_defect"),
        Page("queue open, label VIP", "agent", f"/console/?view=open&label={label}"),
        Page("queue open, ¥100–¥500", "agent", "/console/?view=open&min_amount=100&max_amount=500"),
        Page("queue open, opened this week", "agent", f"/console/?view=open&created_from={week_ago}"),
        Page("queue closed, reason wrong size", "agent", "/console/?view=closed&reason=wrong_size"),
        Page("queue closed, label VIP", "agent", f"/console/?view=closed&label={label}"),
        Page("queue closed, ¥100–¥500", "agent", "/console/?view=closed&min_amount=100&max_amount=500"),
        Page(
            "queue closed, last 90 days",
            "agent",
            f"/console/?view=closed&created_from={quarter_ago}&created_to={today}",
        ),
        # The 200th page of 50: the cursor of the 9,950th closed ticket, as the "Next" links would reach it.
        Page("queue closed, page 200", "agent", f"/console/?view=closed&after={deep_cursor}"),
        Page("queue open (manager)", "manager", "/console/?view=open"),
        Page("queue closed (manager)", "manager", "/console/?view=closed"),
        Page("queue escalated (manager)", "manager", "/console/?view=escalated"),
        Page("ticket, longest chat", "agent", f"/console/tickets/{busiest}/"),
        Page("ticket, open", "agent", f"/console/tickets/{typical}/"),
        Page("ticket, refunded (manager)", "manager", f"/console/tickets/{closed}/"),
        Page("search order number", "agent", f"/console/search/?q={order_no}"),
        Page("search buyer name", "agent", f"/console/search/?q={name}"),
        Page("search tracking number", "agent", f"/console/search/?q={tracking}"),
        Page("search message text 运费", "agent", "/console/search/?in=messages&q=运费"),
        Page("search message text 已经寄回", "agent", "/console/search/?in=messages&q=已经寄回"),
        Page("search message text, tracking number", "agent", f"/console/search/?in=messages&q={tracking}"),
    ]
    return result, samples


QUEUE_VIEW_NAMES = ("mine", "unassigned", "open", "waiting", "sla", "escalated", "closed")


def explain(sql: str) -> dict[str, Any]:
    """EXPLAIN ANALYZE of one captured query: a one-line summary and the plan as text."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        text = "\n".join(row[0] for row in cursor.fetchall())
    if isinstance(plan, str):
        plan = json.loads(plan)
    root = plan[0]
    return {"summary": summarise(root["Plan"], root.get("Execution Time")), "text": text}


def summarise(node: dict[str, Any], execution_ms: float | None) -> str:
    """The plan's nodes in order, each with its table and index: what a reader needs to see why it is slow."""
    parts: list[str] = []

    def walk(item: dict[str, Any]) -> None:
        label = item["Node Type"]
        if item.get("Sort Method"):
            label += f" ({item['Sort Method']})"
        if item.get("Index Name"):
            label += f" {item['Index Name']}"
        elif item.get("Relation Name"):
            label += f" {item['Relation Name']}"
        if item.get("Actual Rows") is not None and item["Node Type"] in {
            "Seq Scan",
            "Index Scan",
            "Index Only Scan",
            "Bitmap Heap Scan",
            "Bitmap Index Scan",
        }:
            label += f" [{int(item['Actual Rows'] * item.get('Actual Loops', 1)):,} rows]"
        parts.append(label)
        for child in item.get("Plans", []):
            walk(child)

    walk(node)
    summary = " > ".join(parts[:8]) + (" > …" if len(parts) > 8 else "")
    return f"{execution_ms:.1f} ms: {summary}" if execution_ms is not None else summary


def measure(client: Any, page: Page, runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(page.url)  # warm-up: sessions, permissions, the connection, the plan cache
    if response.status_code != 200:
        raise AssertionError(f"{page.url} answered {response.status_code}")
    timings: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(page.url)
        timings.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        client.get(page.url)
    slowest = max(captured.captured_queries, key=lambda q: float(q["time"]))
    stats = percentiles(timings)
    return {
        "page": page.name,
        "who": page.who,
        "url": page.url,
        "queries": len(captured.captured_queries),
        "median_ms": stats["p50"],
        "p95_ms": stats["p95"],
        "slowest_query_ms": round(1000 * float(slowest["time"]), 1),
        "slowest_query": slowest["sql"],
        "plan": explain(slowest["sql"]),
    }


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


def table(results: dict[str, Any]) -> str:
    lines = [
        "| page | as | queries | median ms | p95 ms | slowest query: EXPLAIN ANALYZE |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in results["pages"]:
        plan = row["plan"]["summary"].replace("|", "\\|")
        slow = " **slow**" if (row["median_ms"] or 0) > SLOW_MS else ""
        lines.append(
            f"| {row['page']}{slow} | {row['who']} | {row['queries']} | {row['median_ms']} | {row['p95_ms']} | {plan} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    if args.migrate:
        log("migrating the benchmark database")
        call_command("migrate", verbosity=0)
    seeding = seed(args)
    all_pages, samples = pages()
    words = [w.strip() for w in args.pages.split(",") if w.strip()]
    if words:
        all_pages = [p for p in all_pages if any(w in p.name for w in words)]
    users = get_user_model().objects
    clients = {"agent": Client(), "manager": Client()}
    clients["agent"].force_login(users.get(username=samples["agent"]))
    clients["manager"].force_login(users.get(username="bulk-manager"))
    results: dict[str, Any] = {
        "machine": {**machine(), "postgresql": postgres_version()},
        "args": {k: str(v) for k, v in vars(args).items()},
        "seeding": seeding,
        "samples": samples,
        "pages": [],
    }
    results["pages"] = measure_pages(clients, all_pages, args.runs)
    return results


def measure_pages(clients: dict[str, Any], pages: list[Page], runs: int) -> list[dict[str, Any]]:
    """Each page measured with the client of its `who`, logged as it goes (also used by reports_bench)."""
    rows = []
    for page in pages:
        log(f"{page.name}: {page.url}")
        row = measure(clients[page.who], page, runs)
        rows.append(row)
        log(f"  {row['queries']} queries, median {row['median_ms']} ms, p95 {row['p95_ms']} ms")
    return rows


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), target="bench-console", run=run)


def run_benchmark(args: argparse.Namespace, *, target: str, run: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """Create and set up the benchmark's own database on DATABASE_URL's server, run, print the table (and JSON)."""
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith("postgres"):
        sys.stderr.write(
            f"make {target} needs a PostgreSQL DATABASE_URL, e.g.\n"
            f"  DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat make {target}\n"
            f"(it uses its own database, {args.database_name}, on that server)\n"
        )
        return 2
    database_url = database_url_for(base_url, args.database_name)
    ensure_database(database_url)
    setup_django(database_url)
    results = run(args)
    sys.stdout.write(table(results) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
