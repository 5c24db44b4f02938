"""Fault tests: each takes one real part away from a node (server, S3, Docker engine, disk) or floods the
gateway, and checks that no job and no byte is lost. They print their time-to-recover (run with -s)."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import pytest

from tests import stack


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


def stop_server(server: stack.Server, how: signal.Signals = signal.SIGTERM) -> None:
    """Stop a test's own server: SIGTERM, or SIGKILL of its whole process group (a crash)."""
    popen = server.process.popen
    if how == signal.SIGKILL:
        os.killpg(popen.pid, signal.SIGKILL)  # the server and anything it started, at once
    else:
        popen.send_signal(how)
    popen.wait(timeout=60)


def restart_server(server: stack.Server) -> None:
    """Start a stopped server again on its data dir (database) and port; `server` then stands for it."""
    restarted = stack.start_server(server.data_dir, port=urlsplit(server.url).port)
    server.process = restarted.process
