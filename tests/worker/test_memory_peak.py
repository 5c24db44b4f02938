"""Finding the cgroup file that holds a process's peak memory: in a fake cgroup tree, and for a real container
made ahead of its start, as the node makes them."""

from __future__ import annotations

import os
from pathlib import Path

import docker

from leruli_prefect.job_spec import JobSpec
from leruli_prefect.worker import container_runner
from leruli_prefect.worker.memory_peak import MemoryPeak, peak_file
from tests.stack import TEST_IMAGE


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


def test_a_container_made_before_its_start_is_sampled_from_its_cgroup(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    """Its attributes from `create` name no process: the sampler must find it, not fall back to Docker's
    stats (0.75 s per call here, and a usage rather than a peak)."""
    (tmp_path / "run.sh").write_text("#!/bin/bash\nsleep 3\n")
    spec = JobSpec(image=TEST_IMAGE, command="sleep 3", bucket="leruli-" + "c" * 32)
    container = container_runner.create_container(engine, spec, tmp_path, f"test-peak-{tmp_path.name}")
    try:
        container_runner.start_created(container, None)
        memory = MemoryPeak(container, interval=0.05).start()
        container.reload()
        expected = peak_file(int(container.attrs["State"]["Pid"]))
        peak = memory.stop()
        assert expected is not None  # the node and Docker share this machine's cgroups here
        assert memory.source == expected
        assert peak is not None and peak > 0
    finally:
        container.remove(force=True)
