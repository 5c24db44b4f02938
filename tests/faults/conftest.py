"""Fault tests: each takes one real part away from a node (server, S3, Docker engine, disk) or floods the
gateway, and checks that no job and no byte is lost. They print their time-to-recover (run with -s)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)


def report(fault: str, **figures: float) -> None:
    """One line a reader of the test output (and the closing note) can quote."""
    print(f"\n[fault] {fault}: " + ", ".join(f"{name}={value:.1f}s" for name, value in figures.items()))
