"""Small statistics for the figures: percentiles and wall-clock spans."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager


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
