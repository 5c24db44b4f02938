"""`make bench`: start a server and a node of our own, measure every row, print one table.

Usage: .venv/bin/python -m bench.run [--rows 1,2,3,4,5,6] [--batch-jobs N] [--slow-jobs N] [--backlog-jobs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    batch_submission,
    idle_load,
    job_overhead,
    memory_use,
    pickup_latency,
    scale,
    staging_throughput,
)
from bench.bench_stack import BenchStack
from bench.container_events import ContainerEvents
from bench.results_table import Figure, format_table

ALL_ROWS = "1,2,3,4,5,6"
# A node just started (or just done with jobs) settles for a moment before its size means "idle".
SETTLE_SECONDS = 5.0


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    memory = f"{memory_kb / 1024**2:.0f} GiB RAM"
    return f"{platform.node()}: {os.cpu_count()} x {cpu}, {memory}, {platform.platform()}"


def progress(message: str) -> None:
    """What is being measured now (stderr, so that stdout holds the results only)."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def guarded(measure: Callable[..., list[Figure]], *args: Any, **kwargs: Any) -> list[Figure]:
    """A row that fails prints its error in the table; the other rows still run."""
    try:
        return measure(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - reported in the table and on stderr
        traceback.print_exc()
        row = measure.__module__.rsplit(".", 1)[-1]
        return [Figure(row, "failed", f"{type(exc).__name__}: {str(exc)[:80]}", met=False)]


def run(rows: set[str], batch_jobs: int, slow_jobs: int, backlog_jobs: int) -> list[Figure]:
    progress("starting a server and a node")
    bench = BenchStack.start()
    try:
        figures: list[Figure] = []
        bench.start_node()
        time.sleep(SETTLE_SECONDS)
        if "5" in rows:
            figures.append(memory_use.server_figure(bench.server.process.popen.pid, "after start"))
            figures.append(memory_use.idle_node_figure(bench.node_pid(), "after start"))
            figures.append(idle_load.server_busy_figure(bench.server.process.popen.pid))
        with ContainerEvents(bench.docker()) as events:
            if "1" in rows:
                progress("row 1: pickup latency (50 jobs)")
                figures += guarded(pickup_latency.measure, bench, events)
                bench.delete_buckets()
            if "2" in rows:
                progress("row 2: per-job overhead (100 jobs, and 100 docker runs)")
                figures += guarded(job_overhead.measure, bench)
                bench.delete_buckets()
            if "5" in rows:
                time.sleep(SETTLE_SECONDS)
                figures.append(
                    memory_use.idle_node_figure(bench.node_pid(), "idle after the jobs of rows 1-2")
                )
            if "4" in rows:
                progress("row 4: staging (512 MiB in, 512 MiB out)")
                figures += guarded(staging_throughput.measure, bench, events)
            if "3" in rows:
                progress("row 3: batch submission")
                figures += guarded(batch_submission.measure, bench, jobs=batch_jobs, slow_jobs=slow_jobs)
            if "6" in rows:
                progress("row 6: scale (backlog, list, status, pickup)")
                figures += guarded(scale.measure, bench, events, jobs=backlog_jobs)
        if "5" in rows:
            figures.append(memory_use.server_figure(bench.server.process.popen.pid, "at the end"))
        return figures
    finally:
        progress("cleaning up (processes, buckets, containers)")
        bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default=ALL_ROWS, help="which rows to measure (default: all)")
    parser.add_argument("--batch-jobs", type=int, default=1000, help="row 3: storage ceiling and bulk jobs")
    parser.add_argument(
        "--slow-jobs",
        type=int,
        default=300,
        help="row 3: jobs for the paths creating flow runs one at a time",
    )
    parser.add_argument("--backlog-jobs", type=int, default=10_000, help="queued jobs in row 6")
    args = parser.parse_args()
    started = time.monotonic()
    print(f"machine: {machine()}", flush=True)
    print(
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at start: {load_average()}", flush=True
    )
    figures = run(set(args.rows.split(",")), args.batch_jobs, args.slow_jobs, args.backlog_jobs)
    print()
    print(format_table(figures))
    print()
    print(
        f"load average at end (1, 5, 15 min): {load_average()}; whole run {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
