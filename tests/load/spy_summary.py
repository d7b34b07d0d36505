"""Summarise a py-spy recording (`--format raw --threads`, as `bench.py --py-spy DIR` writes it).

`python -m tests.load.spy_summary FILE [--top N]` prints the share of samples per thread, then the frames with the
largest inclusive share (project code and the library calls that matter), then the leaf frames.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

# Where the thread that runs every ORM call of a Daphne process (asgiref's one thread for thread-sensitive
# sync_to_async, which channels' database_sync_to_async uses) spends its wall-clock time; first match wins.
SYNC_THREAD = "ThreadPoolExecutor-0_0"
IN_SYNC_CALL = ("DatabaseSyncToAsync.thread_handler", "SyncToAsync.thread_handler")
CATEGORIES = [
    ("publish: async_to_sync hop to the event loop + Redis group_send", ("AsyncToSync",)),
    ("opening a PostgreSQL connection (CONN_MAX_AGE=0)", ("get_new_connection",)),
    ("closing the connection", ("Connection.close", "close_if_unusable_or_obsolete")),
    ("waiting for PostgreSQL (query round trips, row locks)", ("Connection.wait", "_execute_send", "wait_conn")),
]


def category(stack: str) -> str:
    if not any(marker in stack for marker in IN_SYNC_CALL):
        return "waiting for work (idle)"
    for name, needles in CATEGORIES:
        if any(needle in stack for needle in needles):
            return name
    return "ORM and other Python"


def breakdown(path: Path) -> str:
    """Shares of the sync (ORM) thread's samples by category, and of the event loop's busy/idle samples."""
    sync: Counter[str] = Counter()
    loop: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count_text = line.rsplit(" ", 1)
        if not count_text.isdigit():
            continue  # a frame name with a space in it, cut by py-spy's line format
        count = int(count_text)
        thread = stack.split(";", 1)[0]
        if SYNC_THREAD in thread:
            sync[category(stack)] += count
        elif "MainThread" in thread:
            loop["idle (select)" if "EpollSelector.select" in stack else "busy"] += count
    out = []
    for title, counter in (("sync (ORM) thread", sync), ("event loop thread", loop)):
        total = sum(counter.values())
        out.append(f"{title}: {total} samples")
        out += [f"  {n / total:6.1%}  {name}" for name, n in counter.most_common()] if total else []
    return "\n".join(out)


def summarise(path: Path, top: int = 30) -> str:
    total = 0
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0].split(":", 1)[-1].strip()] += n
        seen: set[str] = set()
        for frame in frames[1:]:
            if frame not in seen:
                inclusive[frame] += n
                seen.add(frame)
        leaves[frames[-1]] += n
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples"]
    out += [f"  {n / total:6.1%}  thread {name}" for name, n in threads.most_common()]
    out.append("inclusive:")
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)]
    out.append("leaf:")
    out += [f"  {n / total:6.1%}  {frame}" for frame, n in leaves.most_common(top // 2)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    for path in args.files:
        sys.stdout.write(breakdown(path) + "\n" + summarise(path, args.top) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
