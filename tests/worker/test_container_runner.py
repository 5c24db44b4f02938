"""The job contract and the container's limits, through the real Docker engine."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from leruli_prefect.job_spec import JobSpec
from leruli_prefect.worker import container_runner
from tests.stack import TEST_IMAGE
from tests.worker.node_stack import wait_for_output


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///var/run/docker.sock")


def _start(engine: docker.DockerClient, spec: JobSpec, run_dir: Path, flow_run_id: str) -> Container:
    """Create the job's container and start it unpinned, as the node does (create, then start)."""
    container = container_runner.create_container(engine, spec, run_dir, flow_run_id)
    container_runner.start_created(container, None)
    return container


def _run(
    engine: docker.DockerClient, run_dir: Path, command: str, **limits: int
) -> container_runner.ContainerOutcome:
    run_dir.mkdir(exist_ok=True)
    (run_dir / "run.sh").write_text(f"#!/bin/bash\n{command}\n")
    spec = JobSpec(image=TEST_IMAGE, command=command, bucket="leruli-" + "b" * 32, **limits)
    container = _start(engine, spec, run_dir, f"test-{run_dir.name}")
    return container_runner.wait_for_container(container, spec.time_limit_s)


def test_container_is_hardened_and_labelled(engine: docker.DockerClient, tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/bash\nsleep 5\n")
    spec = JobSpec(image=TEST_IMAGE, command="sleep 5", cores=2, memory_mb=300, bucket="leruli-" + "c" * 32)
    container = _start(engine, spec, tmp_path, "hardening")
    try:
        config = engine.api.inspect_container(container.id)
        host = config["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["PidsLimit"] == container_runner.PIDS_LIMIT
        assert host["Memory"] == 300 * 1024 * 1024
        assert host["NanoCpus"] == 2_000_000_000
        assert host["LogConfig"]["Type"] == "none"  # the job's shell writes joblog.txt, not Docker
        assert not host["Privileged"]
        assert config["Config"]["WorkingDir"] == "/rundir"
        assert config["Config"]["Labels"][container_runner.FLOW_RUN_LABEL] == "hardening"
        env = dict(item.split("=", 1) for item in config["Config"]["Env"])
        for name in container_runner.THREAD_VARIABLES:
            assert env[name] == "2"
        assert not [name for name in env if name.startswith(("PREFECT_", "LERULI_", "AWS_"))]
    finally:
        container.remove(force=True)


def test_exit_code_and_output_files(engine: docker.DockerClient, tmp_path: Path) -> None:
    outcome = _run(engine, tmp_path / "exit", "echo out; echo err >&2; echo made > made.txt; exit 7")
    assert (outcome.exit_code, outcome.oom_killed, outcome.timed_out) == (7, False, False)
    assert outcome.image_id == engine.images.get(TEST_IMAGE).id
    assert outcome.started is not None and outcome.ended is not None and 0 <= outcome.runtime_s < 60
    assert (tmp_path / "exit" / "joblog.txt").read_text() == "out\n"
    assert (tmp_path / "exit" / "joberr.txt").read_text() == "err\n"
    assert (tmp_path / "exit" / "made.txt").read_text() == "made\n"


def test_on_exit_comes_once_when_the_container_ended_before_it_is_removed(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    """The node frees the job's slot at `on_exit`: the container has stopped (its output is in the run dir
    already) and is not removed yet."""
    run_dir = tmp_path / "exits"
    run_dir.mkdir()
    (run_dir / "run.sh").write_text("#!/bin/bash\necho bye\n")
    spec = JobSpec(image=TEST_IMAGE, command="echo bye", bucket="leruli-" + "e" * 32)
    container = _start(engine, spec, run_dir, "exits")
    seen: list[tuple[str, str]] = []

    def on_exit() -> None:
        state = engine.api.inspect_container(container.id)["State"]
        seen.append((state["Status"], (run_dir / "joblog.txt").read_text()))

    outcome = container_runner.wait_for_container(container, spec.time_limit_s, on_exit=on_exit)
    assert seen == [("exited", "bye\n")]
    assert outcome.exit_code == 0 and (run_dir / "joblog.txt").read_text() == "bye\n"
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(container.id)


def test_output_is_in_the_run_dir_while_the_job_runs(engine: docker.DockerClient, tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    (run_dir / "run.sh").write_text("#!/bin/bash\necho early; echo warned >&2; sleep 30\n")
    spec = JobSpec(image=TEST_IMAGE, command="sleep 30", bucket="leruli-" + "f" * 32)
    container = _start(engine, spec, run_dir, "live")
    try:
        wait_for_output(run_dir / "joberr.txt", timeout=20)
        assert engine.api.inspect_container(container.id)["State"]["Status"] == "running"
        assert (run_dir / "joblog.txt").read_text() == "early\n"
        assert (run_dir / "joberr.txt").read_text() == "warned\n"
    finally:
        container.remove(force=True)


def test_runtime_is_the_container_s_own(engine: docker.DockerClient, tmp_path: Path) -> None:
    outcome = _run(engine, tmp_path / "sleeps", "sleep 1.5")
    assert 1.4 <= outcome.runtime_s < 30


def test_runtime_never_negative() -> None:
    """Docker may stamp a millisecond job's end before its start; the runtime is then zero, not negative."""
    started = datetime(2026, 11, 26, 21, 36, 28, 135158, tzinfo=UTC)
    ended = datetime(2026, 11, 26, 21, 36, 28, 133896, tzinfo=UTC)
    outcome = container_runner.ContainerOutcome(7, False, False, started=started, ended=ended)
    assert outcome.runtime_s == 0.0
    assert container_runner.ContainerOutcome(0, False, False, started=ended, ended=started).runtime_s > 0


def test_time_limit_kills_the_container(engine: docker.DockerClient, tmp_path: Path) -> None:
    outcome = _run(engine, tmp_path / "slow", "echo started; sleep 60", time_limit_s=1)
    assert outcome.timed_out
    assert (tmp_path / "slow" / "joblog.txt").read_text() == "started\n"


def test_memory_limit_ends_out_of_memory(engine: docker.DockerClient, tmp_path: Path) -> None:
    # The shell holds 200 MB of 'a's in a variable: far past the 32 MB limit.
    outcome = _run(
        engine, tmp_path / "hungry", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", memory_mb=32
    )
    assert outcome.oom_killed
    assert outcome.exit_code != 0


def test_a_container_made_ahead_starts_on_the_cpus_of_its_slot(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    """A job held ready has its container made while it waits: unpinned and not running until its start."""
    (tmp_path / "run.sh").write_text("#!/bin/bash\ngrep Cpus_allowed_list /proc/self/status > cpus.txt\n")
    tmp_path.chmod(0o777)
    spec = JobSpec(image=TEST_IMAGE, command="grep", bucket="leruli-" + "f" * 32)
    container = container_runner.create_container(engine, spec, tmp_path, "ahead")
    try:
        made = engine.api.inspect_container(container.id)
        assert made["State"]["Status"] == "created" and not made["HostConfig"]["CpusetCpus"]
        container_runner.start_created(container, "0")
        outcome = container_runner.wait_for_container(container, spec.time_limit_s)
    finally:
        container_runner.remove_unstarted(container)  # gone already: no error
    assert outcome.exit_code == 0
    assert (tmp_path / "cpus.txt").read_text().split()[-1] == "0"


def test_a_container_made_for_its_slot_is_pinned_at_once(engine: docker.DockerClient, tmp_path: Path) -> None:
    """A job that has its slot when its container is made is pinned then: its start is one call, no update."""
    (tmp_path / "run.sh").write_text("#!/bin/bash\ngrep Cpus_allowed_list /proc/self/status > cpus.txt\n")
    tmp_path.chmod(0o777)
    spec = JobSpec(image=TEST_IMAGE, command="grep", bucket="leruli-" + "f" * 32)
    container = container_runner.create_container(engine, spec, tmp_path, "pinned", cpuset="0")
    try:
        assert engine.api.inspect_container(container.id)["HostConfig"]["CpusetCpus"] == "0"
        container_runner.start_created(container, None)
        outcome = container_runner.wait_for_container(container, spec.time_limit_s)
    finally:
        container_runner.remove_unstarted(container)
    assert outcome.exit_code == 0
    assert (tmp_path / "cpus.txt").read_text().split()[-1] == "0"


def test_a_container_made_for_a_job_that_never_starts_is_removed(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    spec = JobSpec(image=TEST_IMAGE, command="true", bucket="leruli-" + "a" * 32)
    container = container_runner.create_container(engine, spec, tmp_path, "never-started")
    container_runner.remove_unstarted(container)
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(container.id)
