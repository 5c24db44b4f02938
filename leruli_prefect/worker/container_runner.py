"""Running one job's container with docker-py: the job contract and its limits.

Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
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
# The job's shell writes its output straight into the run dir: Docker keeps no log of it (log driver
# `none`), so the node reads none back. Reading stdout and stderr through Docker took four calls per job
# (docker-py inspects the container before each read) and dockerd's copying of every byte; the files are
# also there while the job runs, and when the engine goes away mid-job.
JOB_COMMAND = ["/bin/bash", "-c", f"exec /bin/bash {RUNDIR}/{RUN_SCRIPT} >{STDOUT_FILE} 2>{STDERR_FILE}"]


@dataclass(frozen=True)
class ContainerOutcome:
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    engine_restarted: bool = False  # the Docker engine went away while the job ran
    engine_lost: bool = False  # ... and did not come back: exit code unknown
    image_id: str | None = None  # the image the container ran, `sha256:...`
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def runtime_s(self) -> float:
        if not (self.started and self.ended):
            return 0.0
        # Docker stamps StartedAt and FinishedAt from different events: a job that ends within a millisecond
        # may show a FinishedAt before its StartedAt (seen in CI: -0.0013 s). It ran for no measurable time.
        return max(0.0, (self.ended - self.started).total_seconds())


def container_name(flow_run_id: str, attempt: int = 1) -> str:
    """Unique per attempt: a lost node's container may still run on a Docker engine the next node shares."""
    return f"leruli-{flow_run_id}" if attempt == 1 else f"leruli-{flow_run_id}-attempt{attempt}"


def thread_environment(cores: int) -> dict[str, str]:
    """The container's whole environment beyond the image's own: thread counts equal to the cores asked for.

    Nothing of the node's environment (PREFECT_*, S3 keys, the compute secret) is passed on.
    """
    return {name: str(cores) for name in THREAD_VARIABLES}


def create_container(
    client: docker.DockerClient,
    spec: JobSpec,
    run_dir: Path,
    flow_run_id: str,
    *,
    user: str | None = None,
    node: str | None = None,
    attempt: int = 1,
    cpuset: str | None = None,
) -> Container:
    """Create the job's container, not started yet, with every limit of the job contract.

    `user` is the node's `UID:GID` for jobs (the run dir must be writable by it). `cpuset` pins it to its
    slot's CPUs when the slot is known; a job held ready has its container made while it waits for a slot
    (unpinned: `start_created` pins it), so the slot's path keeps only the start.
    """
    return client.containers.create(
        image=spec.image,
        command=JOB_COMMAND,
        name=container_name(flow_run_id, attempt),
        working_dir=RUNDIR,
        volumes={str(run_dir.resolve()): {"bind": RUNDIR, "mode": "rw"}},
        environment=thread_environment(spec.cores),
        network_mode="none",
        log_config={"type": "none", "config": {}},
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


def start_created(container: Container, cpuset: str | None) -> None:
    """Pin a created container to its slot's CPUs (then `nproc` inside equals the cores asked for, on top of
    the CPU quota) and start it; `None`: pinned at its creation already, or not pinned at all."""
    if cpuset is not None:
        container.update(cpuset_cpus=cpuset)
    container.start()


def remove_unstarted(container: Container) -> None:
    """Remove a container made for a job that will not start here after all."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)


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


def wait_for_container(
    container: Container,
    time_limit_s: int,
    engine_retry_seconds: float = 0.0,
    on_exit: Callable[[], None] = lambda: None,
) -> ContainerOutcome:
    """Wait for the container's end (killing it at the time limit), read how it ended, remove it.

    `on_exit` is called as soon as the container has ended, before it is inspected and removed (Docker
    calls that the node's next job need not wait for).
    A Docker engine that restarts meanwhile drops our wait: the container is waited for again once the engine
    answers (it may have survived, with live-restore), for up to `engine_retry_seconds`.
    """
    import requests

    started = time.monotonic()
    timed_out = engine_restarted = False
    while True:
        remaining = time_limit_s - (time.monotonic() - started)
        try:
            if remaining <= 0:
                raise TimeoutError
            container.wait(timeout=remaining)
            break
        except (TimeoutError, requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if isinstance(exc, TimeoutError) or _is_read_timeout(exc):
                # docker-py reports a wait that outlived its timeout as a read timeout of the HTTP call.
                timed_out = True
                container.kill()
                container.wait(timeout=60)
                break
            engine_restarted = True
            if not _engine_back(container, engine_retry_seconds):
                return ContainerOutcome(None, False, timed_out, engine_restarted=True, engine_lost=True)
    on_exit()
    # The engine may also go away just after the wait (a shutdown ends the wait first, then the API).
    while True:
        if engine_restarted and not _engine_back(container, engine_retry_seconds):
            return ContainerOutcome(None, False, timed_out, engine_restarted=True, engine_lost=True)
        try:
            container.reload()
            state = container.attrs["State"]
            image_id = container.attrs.get("Image")
            container.remove(force=True)
            break
        except requests.exceptions.RequestException:
            engine_restarted = True
    return ContainerOutcome(
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled")),
        timed_out=timed_out,
        engine_restarted=engine_restarted,
        image_id=image_id,
        started=_docker_time(state.get("StartedAt")),
        ended=_docker_time(state.get("FinishedAt")),
    )


def _docker_time(value: str | None) -> datetime | None:
    """Docker's RFC 3339 times carry nanoseconds, which `datetime` does not take: cut to microseconds."""
    if not value or value.startswith("0001-"):
        return None
    stamp, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{stamp}.{(fraction + '000000')[:6]}+00:00")


def _is_read_timeout(exc: BaseException) -> bool:
    """Whether a docker-py error is the read timeout of a wait (urllib3's, wrapped once or twice)."""
    import requests
    import urllib3

    seen: object = exc
    for _ in range(4):
        if isinstance(seen, urllib3.exceptions.ReadTimeoutError | requests.exceptions.ReadTimeout):
            return True
        if not isinstance(seen, BaseException):
            return False
        seen = getattr(seen, "reason", None) or (seen.args[0] if seen.args else None)
    return False


def _engine_back(container: Container, within_seconds: float) -> bool:
    """Wait, with backoff, until the container's engine answers again; False if it does not in time."""
    import docker.errors
    import requests

    deadline = time.monotonic() + within_seconds
    delay = 0.5
    while True:
        try:
            container.client.ping()
            return True
        except (requests.exceptions.RequestException, docker.errors.DockerException):
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
