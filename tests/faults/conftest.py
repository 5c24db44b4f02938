"""Fault tests: each takes one real part away from a node (server, S3, Docker engine, disk) or floods the
gateway, and checks that no job and no byte is lost. They print their time-to-recover (run with -s)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)
            # Restarts of whole servers: on a loaded 2-core machine one start alone can take two minutes.
            item.add_marker(pytest.mark.timeout(900))


def report(fault: str, **figures: float) -> None:
    """One line a reader of the test output (and the closing note) can quote: seconds, or MB for `*_mb`."""
    shown = (f"{name}={value:.1f}{'' if name.endswith('_mb') else 's'}" for name, value in figures.items())
    print(f"\n[fault] {fault}: " + ", ".join(shown))
