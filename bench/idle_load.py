"""Row 5, beside memory: the server's CPU while one node idles (its polls four times a second, heartbeats).

Not an issue target, but what bounds how many idle nodes one server carries: before the gateway answered
polls of an empty queue itself (leruli_prefect/gateway/idle_polls.py) one idle node kept it 12-15 % busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.results_table import Figure

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def server_busy_figure(server_pid: int, seconds: float = 10.0) -> Figure:
    before = cpu_seconds(server_pid)
    time.sleep(seconds)
    share = (cpu_seconds(server_pid) - before) / seconds
    return Figure("5", "server CPU while one node idles", f"{share * 100:.1f} % of a core")
