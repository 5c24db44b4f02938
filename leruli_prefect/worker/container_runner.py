"""Running one job's container with docker-py: the job contract and its limits.

Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from leruli_prefect.job_spec import JobSpec
from leruli_prefect.storage.archive import RUN_SCRIPT, STDERR_FILE, STDOUT_FILE

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

RUNDIR = "/rundir"
FLOW_RUN_LABEL = "org.leruli.flow-run-id"
ATTEMPT_LABEL = "org.leruli.attempt"  # which attempt of the job: a restarted node writes off only its own
NODE_LABEL = "org.leruli.node"  # the node's data dir: what a restarted node finds its leftovers by
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NPROC",
)
PIDS_LIMIT = 4096


@dataclass(frozen=True)
class ContainerOutcome:
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    image_id: str | None = None  # the image the container ran, `sha256:...`
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def runtime_s(self) -> float:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else 0.0


def container_name(flow_run_id: str, attempt: int = 1) -> str:
    """Unique per attempt: a lost node's container may still run on a Docker engine the next node shares."""
    return f"leruli-{flow_run_id}" if attempt == 1 else f"leruli-{flow_run_id}-attempt{attempt}"


def thread_environment(cores: int) -> dict[str, str]:
    """The container's whole environment beyond the image's own: thread counts equal to the cores asked for.

    Nothing of the node's environment (PREFECT_*, S3 keys, the compute secret) is passed on.
    """
    return {name: str(cores) for name in THREAD_VARIABLES}


def start_container(
    client: docker.DockerClient,
    spec: JobSpec,
    run_dir: Path,
    flow_run_id: str,
    *,
    user: str | None = None,
    cpuset: str | None = None,
    node: str | None = None,
    attempt: int = 1,
) -> Container:
    """Start the job's container, detached, with every limit of the job contract.

    `user` is the node's `UID:GID` for jobs (the run dir must be writable by it); `cpuset` pins the job to
    its own CPUs (then `nproc` inside equals the cores asked for), on top of the CPU quota.
    """
    return client.containers.run(
        image=spec.image,
        command=["/bin/bash", f"{RUNDIR}/{RUN_SCRIPT}"],
        name=container_name(flow_run_id, attempt),
        detach=True,
        working_dir=RUNDIR,
        volumes={str(run_dir.resolve()): {"bind": RUNDIR, "mode": "rw"}},
        environment=thread_environment(spec.cores),
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=PIDS_LIMIT,
        mem_limit=f"{spec.memory_mb}m",
        memswap_limit=f"{spec.memory_mb}m",
        nano_cpus=spec.cores * 1_000_000_000,
        cpuset_cpus=cpuset,
        user=user,
        labels={
            FLOW_RUN_LABEL: flow_run_id,
            ATTEMPT_LABEL: str(attempt),
            **({NODE_LABEL: node} if node else {}),
        },
    )


def kill_container(container: Container) -> None:
    """Stop a job's container now (SIGKILL: a cancel must not wait for a grace period)."""
    import docker.errors

    try:
        container.kill()
    except docker.errors.NotFound:
        pass  # already gone
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: not running any more
            raise


def wait_for_container(container: Container, run_dir: Path, time_limit_s: int) -> ContainerOutcome:
    """Wait for the container's end (killing it at the time limit), save its output, remove it."""
    import requests

    timed_out = False
    try:
        container.wait(timeout=time_limit_s)
    except requests.exceptions.ConnectionError:
        # docker-py reports a wait that outlived its timeout as a read timeout of the HTTP call.
        timed_out = True
        container.kill()
        container.wait(timeout=60)
    container.reload()
    state = container.attrs["State"]
    _save_logs(container, run_dir)
    container.remove(force=True)
    return ContainerOutcome(
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        timed_out=timed_out,
        image_id=container.attrs.get("Image"),
        started=_docker_time(state.get("StartedAt")),
        ended=_docker_time(state.get("FinishedAt")),
    )


def _docker_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds, which `datetime` does not take: cut to microseconds."""
    if not value or value.startswith("0001-"):
        return None
    stamp, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{stamp}.{(fraction + '000000')[:6]}+00:00")


def _save_logs(container: Container, run_dir: Path) -> None:
    for filename, stdout in ((STDOUT_FILE, True), (STDERR_FILE, False)):
        with open(run_dir / filename, "wb") as handle:
            for chunk in container.logs(stdout=stdout, stderr=not stdout, stream=True, follow=False):
                handle.write(chunk)
