"""Row 5, beside memory: the server's CPU while one node idles (its polls four times a second, heartbeats).

Not an issue target, but what bounds how many idle nodes one server carries: before the gateway answered
polls of an empty queue itself (leruli_prefect/gateway/idle_polls.py) one idle node kept it 12-15 % busy.
"""

from __future__ import annotations

import time

from bench.results_table import Figure
from bench.timing import cpu_seconds


def server_busy_figure(server_pid: int, seconds: float = 10.0) -> Figure:
    before = cpu_seconds(server_pid)
    time.sleep(seconds)
    share = (cpu_seconds(server_pid) - before) / seconds
    return Figure("5", "server CPU while one node idles", f"{share * 100:.1f} % of a core")
