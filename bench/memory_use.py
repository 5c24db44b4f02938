"""Row 5: resident size (VmRSS from /proc) of the server process and of an idle node process."""

from __future__ import annotations

from pathlib import Path

from bench.process_tree import with_descendants
from bench.results_table import Figure

IDLE_NODE_TARGET_MB = 200.0


def resident_mb(pid: int) -> float:
    """The process's resident set plus its children's (a part that forks still costs what they hold)."""
    total_kb = 0
    for member in with_descendants(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def server_figure(pid: int, when: str) -> Figure:
    return Figure("5", f"server RSS, {when}", f"{resident_mb(pid):.0f} MB")


def idle_node_figure(pid: int, when: str) -> Figure:
    rss = resident_mb(pid)
    return Figure(
        "5",
        f"idle node RSS, {when}",
        f"{rss:.0f} MB",
        target=f"< {IDLE_NODE_TARGET_MB:g} MB",
        met=rss < IDLE_NODE_TARGET_MB,
    )
