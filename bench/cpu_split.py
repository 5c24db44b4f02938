"""Where a row's CPU goes: the server, the node, the Docker engine, the S3 server, and the whole machine.

All of them share the machine's cores with the containers, so a wall-time ratio is bounded by what the
parts around the containers cost together; row 2 prints this split beside its ratio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.process_tree import with_descendants
from bench.timing import cpu_seconds

DOCKER_ENGINE = ("dockerd", "containerd")  # not the per-container shims: they exit with their container
S3_SERVER = ("radosgw", "ceph-osd", "ceph-mon")  # what scripts/s3.sh starts
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds (user and system) per part; `machine` is every core's busy time (/proc/stat)."""

    server: float
    node: float
    docker_engine: float
    s3_server: float
    machine: float

    def __sub__(self, earlier: CpuSplit) -> CpuSplit:
        return CpuSplit(
            self.server - earlier.server,
            self.node - earlier.node,
            self.docker_engine - earlier.docker_engine,
            self.s3_server - earlier.s3_server,
            self.machine - earlier.machine,
        )

    def describe(self) -> str:
        return (
            f"server {self.server:.1f}, node {self.node:.1f}, dockerd+containerd {self.docker_engine:.1f},"
            f" S3 {self.s3_server:.1f}; machine {self.machine:.1f}"
        )


def read_split(server_pid: int, node_pid: int | None) -> CpuSplit:
    return CpuSplit(
        server=_tree_seconds(server_pid),
        node=_tree_seconds(node_pid) if node_pid is not None else 0.0,
        docker_engine=sum(_seconds(pid) for pid in _named(DOCKER_ENGINE)),
        s3_server=sum(_seconds(pid) for pid in _named(S3_SERVER)),
        machine=machine_busy_seconds(),
    )


def machine_busy_seconds() -> float:
    """user, nice, system, irq and softirq time of all cores since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / _TICKS


def server_share_left(during: CpuSplit, wall_s: float, target_wall_s: float) -> float:
    """The server CPU seconds that would fit the target wall time, the rest costing what it did and the
    machine as busy as it was: the machine's CPU scaled to the target's wall time, less all but the server's.
    Negative when the rest alone needs more."""
    return during.machine * target_wall_s / wall_s - (during.machine - during.server)


def _tree_seconds(pid: int) -> float:
    return sum(_seconds(member) for member in with_descendants(pid))


def _seconds(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):  # ended between listing and reading
        return 0.0


def _named(names: tuple[str, ...]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if command in names:
            found.append(int(entry.name))
    return found
