"""Small statistics for the figures: percentiles and wall-clock spans."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# A server counts as settled (done digesting a burst: Prefect's event persister writes every run's event)
# once it uses less than this share of a core over 10 s.
SETTLE_CPU_SHARE = 0.15


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile by linear interpolation (`percentile(v, 0.95)` is the p95)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values)


class Span:
    """Seconds between entering and leaving a `timed()` block."""

    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Span]:
    span = Span()
    start = time.perf_counter()
    try:
        yield span
    finally:
        span.seconds = time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def settle(pid: int, longest_s: float) -> float:
    """Wait until the process is nearly idle, or `longest_s`; returns the seconds waited."""
    with timed() as span:
        deadline = time.monotonic() + longest_s
        while time.monotonic() < deadline:
            before = cpu_seconds(pid)
            time.sleep(10)
            if (cpu_seconds(pid) - before) / 10 < SETTLE_CPU_SHARE:
                break
    return span.seconds
