"""Finding the cgroup file that holds a process's peak memory (a fake cgroup tree; the real one is covered by
the result record test, where a job's peak memory is read from its container's cgroup)."""

from __future__ import annotations

import os
from pathlib import Path

from leruli_prefect.worker.memory_peak import peak_file


def _own_cgroups() -> dict[str, str]:
    """This process's cgroups: controllers ("" for v2) -> path."""
    lines = Path(f"/proc/{os.getpid()}/cgroup").read_text().splitlines()
    return {controllers: path for _, controllers, path in (line.split(":", 2) for line in lines)}


def test_the_memory_controllers_peak_file_is_found(tmp_path: Path) -> None:
    cgroups = _own_cgroups()
    memory = next((path for controllers, path in cgroups.items() if "memory" in controllers.split(",")), None)
    if memory is not None:  # cgroup v1 (or hybrid): the memory hierarchy's max usage
        expected = tmp_path / "memory" / memory.lstrip("/") / "memory.max_usage_in_bytes"
    else:  # cgroup v2: the unified hierarchy's peak
        expected = tmp_path / cgroups[""].lstrip("/") / "memory.peak"
    assert peak_file(os.getpid(), tmp_path) is None  # not there: Docker's stats are asked instead
    expected.parent.mkdir(parents=True)
    expected.write_text("4096\n")
    assert peak_file(os.getpid(), tmp_path) == expected


def test_a_gone_process_has_no_peak_file(tmp_path: Path) -> None:
    assert peak_file(2**22 + 12345, tmp_path) is None
