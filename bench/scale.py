"""Row 6: a queue of 10,000 jobs. Reading the group's list and one job's status through the REST API,
and the pickup latency of new jobs (another group's, served by the node) with that backlog in the database.

The backlog sits in a group no node serves: in a served group a node would run it (and a new job would
wait behind 10,000 others, which measures the queue's depth, not its speed).
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from bench.backlog_seeding import seed_backlog
from bench.pickup_latency import pickup_figures, pickup_latencies
from bench.results_table import Figure
from bench.timing import median, percentile, settle

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.bench_stack import BenchStack
    from bench.container_events import ContainerEvents

BACKLOG_GROUP = "bench-backlog"
STATUS_TARGET_MS = 50.0
# Keeps `make bench` within its 15 minutes (an idle node's polls keep the server above the idle mark).
SETTLE_MAX_S = 120


def _latencies_ms(call: Callable[[], object], repeats: int) -> list[float]:
    latencies = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def measure(
    bench: BenchStack, events: ContainerEvents, jobs: int = 10_000, rest_sample: int = 100, pickups: int = 10
) -> list[Figure]:
    backlog = seed_backlog(bench, BACKLOG_GROUP, jobs, rest_sample)
    queued = len(backlog.job_ids)
    rest = f"backlog: {backlog.rest_jobs} jobs by concurrent POST /v1/jobs"
    figures = [
        Figure("6", rest, f"{backlog.rest_rate:.1f} jobs/s"),
        Figure(
            "6",
            f"backlog: {backlog.cloned_jobs} more by POST /v1/jobs/batch (else a raw insert)",
            f"{backlog.clone_rate:.0f} runs/s",
        ),
    ]
    # Right after the fill the server is still writing the fill's events (Prefect's event persister, one
    # Scheduled event per run): the reads wait behind those writes. Measured then, and once it has settled.
    ids = backlog.job_ids
    figures += _reads(bench, events, ids, pickups, f"{queued} queued, right after the fill", targeted=False)
    settled_s = settle(bench.server.process.popen.pid, SETTLE_MAX_S)
    later = f"{queued} queued, {settled_s:.0f} s after the fill"
    figures += _reads(bench, events, ids, pickups, later, targeted=True)
    return figures


def _reads(
    bench: BenchStack, events: ContainerEvents, job_ids: list[str], pickups: int, when: str, *, targeted: bool
) -> list[Figure]:
    """List, status and pickup with the backlog in place; only the settled figures are held to targets."""
    client = bench.gateway(BACKLOG_GROUP)
    client.jobs(limit=100)  # the first read warms caches (connections, compiled queries): not a figure
    listing = _latencies_ms(lambda: client.jobs(limit=100), 20)
    rng = random.Random(11)
    status = _latencies_ms(lambda: client.job(rng.choice(job_ids)), 100)
    status_p50 = median(status)
    figures = [
        Figure(
            "6",
            f"GET /v1/jobs?limit=100, {when}: p50 (p95)",
            f"{median(listing):.0f} ms ({percentile(listing, 0.95):.0f} ms)",
        ),
        Figure(
            "6",
            f"GET /v1/jobs/{{id}}, {when}: p50 (p95)",
            f"{status_p50:.1f} ms ({percentile(status, 0.95):.1f} ms)",
            target=f"< {STATUS_TARGET_MS:g} ms" if targeted else "",
            met=status_p50 < STATUS_TARGET_MS if targeted else None,
        ),
    ]
    latencies = pickup_latencies(bench, events, pickups, "backlog-settled" if targeted else "backlog-fill")
    pickup = pickup_figures("6", latencies, note=f", {when}")
    return figures + (pickup if targeted else [replace(figure, target="", met=None) for figure in pickup])
