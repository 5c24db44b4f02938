"""The peak memory of a running job container, for its result record.

The kernel keeps the peak itself (cgroup v1 `memory.max_usage_in_bytes`, v2 `memory.peak`), but the cgroup
goes away with the container, and Docker's stats of an ended container are empty. So a thread reads the
peak while the container runs, every `SAMPLE_SECONDS`, and keeps the largest value seen: exact up to the
last read, at most one interval short of the end. The cgroup file is found from the container's init
process (`/proc/PID/cgroup`); where the node cannot see it (rootless or remote Docker), Docker's stats API
is asked instead (slower, and on cgroup v2 it reports the current usage only).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker.models.containers import Container

SAMPLE_SECONDS = 0.25
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def peak_file(pid: int, cgroup_root: Path = _CGROUP_ROOT) -> Path | None:
    """The file holding the peak memory of process `pid`'s cgroup, if this node can read it."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1
            candidate = cgroup_root / "memory" / path.lstrip("/") / "memory.max_usage_in_bytes"
        elif controllers == "":  # cgroup v2 (also listed on hybrid v1 hosts: the memory line wins there)
            candidate = cgroup_root / path.lstrip("/") / "memory.peak"
        else:
            continue
        if candidate.is_file():
            return candidate
    return None


class MemoryPeak:
    """Samples a container's peak memory in a thread from `start()` until `stop()`, which returns it."""

    def __init__(self, container: Container, interval: float = SAMPLE_SECONDS) -> None:
        self._container = container
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name=f"memory-{container.name}", daemon=True)
        self.peak: int | None = None
        self.source: Path | None = None  # the cgroup file read, once known; None: Docker's stats

    def start(self) -> MemoryPeak:
        self._thread.start()
        return self

    def stop(self) -> int | None:
        """Stop sampling (call once the container has ended); the largest peak seen, or None."""
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peak

    def _sample(self) -> None:
        pid = _pid_of(self._container)
        if not pid:
            return  # ended already: its cgroup is gone, and Docker's stats of it are empty
        self.source = peak_file(pid)
        while True:
            value = _read_file(self.source) if self.source is not None else _read_stats(self._container)
            if value:
                self.peak = max(self.peak or 0, value)
            if self._stop.wait(self._interval):
                return


def _pid_of(container: Container) -> int:
    """The process of a started container; 0 once it has ended. A container made ahead of its start (the
    ready line) carries the attributes of its creation, without a process: they are read again. (Without
    its cgroup file, Docker's stats took 0.75 s per call here, and a job's end waited for the one going.)"""
    import docker.errors
    import requests

    pid = int(container.attrs.get("State", {}).get("Pid") or 0)
    if pid:
        return pid
    try:
        container.reload()
    except (docker.errors.APIError, requests.RequestException):
        return 0
    return int(container.attrs.get("State", {}).get("Pid") or 0)


def _read_file(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None  # the container (and its cgroup) just ended


def _read_stats(container: Container) -> int | None:
    import docker.errors
    import requests

    try:
        stats = container.stats(stream=False, one_shot=True)
    except (docker.errors.APIError, requests.RequestException):
        return None
    memory = stats.get("memory_stats") or {}
    value = memory.get("max_usage") or memory.get("usage")
    return int(value) if value else None
