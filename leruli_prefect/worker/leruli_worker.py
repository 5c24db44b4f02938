"""`LeruliWorker`: the Prefect worker of a compute node (type `leruli-docker`).

It claims its group's flow runs like any Prefect worker, but runs each job's plain science image itself
(no Prefect inside the container): stage in, run with docker-py, stage out, then report the final state with
its reason from the worker process. `run` returns status 0 so the base class does not overwrite that state
with Crashed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from prefect.client.schemas.responses import SetStateStatus
from prefect.states import Completed, Failed, Running
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from pydantic import ValidationError

from leruli_prefect.errors import LeruliError
from leruli_prefect.job_spec import JobSpec
from leruli_prefect.settings import load_settings
from leruli_prefect.storage.s3_client import make_s3_client
from leruli_prefect.worker import container_runner, staging
from leruli_prefect.worker.node_config import NodeConfig, load_node_config

if TYPE_CHECKING:
    import docker
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import State


class LeruliJobConfiguration(BaseJobConfiguration):
    """Per-run settings a pool could template; a job's own settings travel as flow run parameters."""


class LeruliVariables(BaseVariables):
    """The pool's variables: those of every Prefect worker (name, env, labels, command)."""


class LeruliWorkerResult(BaseWorkerResult):
    """The container that ran (its name) and 0: the job's own outcome is in the flow run's state."""


class LeruliWorker(BaseWorker[LeruliJobConfiguration, LeruliVariables, LeruliWorkerResult]):
    type = "leruli-docker"
    job_configuration = LeruliJobConfiguration
    job_configuration_variables = LeruliVariables
    _description = "Runs leruli container jobs (plain science images) with Docker on a compute node."
    _display_name = "Leruli Docker"

    def __init__(self, *args: Any, node_config: NodeConfig | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_config = node_config or _node_config_from_settings()
        self._docker: docker.DockerClient | None = None

    async def run(
        self,
        flow_run: FlowRun,
        configuration: LeruliJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> LeruliWorkerResult:
        name = container_runner.container_name(str(flow_run.id))
        logger = self.get_flow_run_logger(flow_run)
        try:
            spec = JobSpec.model_validate(flow_run.parameters)
        except ValidationError as exc:
            final: State[Any] = Failed(message=f"invalid job parameters: {exc.error_count()} error(s)")
            if task_status is not None:
                task_status.started(name)
        else:
            accepted = await self.client.set_flow_run_state(
                flow_run.id, Running(message=f"on node {self.name}")
            )
            if accepted.status != SetStateStatus.ACCEPT:
                # Cancelled (or claimed elsewhere) between the claim and now: leave it as the server has it.
                logger.info("job %s not started: %s", flow_run.id, accepted.details)
                if task_status is not None:
                    task_status.started(name)
                return LeruliWorkerResult(identifier=name, status_code=0)
            run_dir = self.node_config.data_dir / "runs" / str(flow_run.id)
            final = await self._run_job(flow_run, spec, run_dir, task_status)
        logger.info(
            "job %s ends %s%s", flow_run.id, final.name, f": {final.message}" if final.message else ""
        )
        await self.client.set_flow_run_state(flow_run.id, final)
        return LeruliWorkerResult(identifier=name, status_code=0)

    async def _run_job(
        self, flow_run: FlowRun, spec: JobSpec, run_dir: Path, task_status: anyio.abc.TaskStatus[str] | None
    ) -> State[Any]:
        config = self.node_config
        s3 = make_s3_client(config.s3_server, config.s3_access, config.s3_secret.get_secret_value())
        reported = False
        try:
            await asyncio.to_thread(staging.stage_in, s3, spec.bucket, run_dir, config.max_unpacked_bytes)
            container = await asyncio.to_thread(
                container_runner.start_container, self._docker_client(), spec, run_dir, str(flow_run.id)
            )
            if task_status is not None:
                task_status.started(container.name)
                reported = True
            outcome = await asyncio.to_thread(
                container_runner.wait_for_container, container, run_dir, spec.time_limit_s
            )
            await asyncio.to_thread(staging.stage_out, s3, run_dir, spec.bucket)
            return _final_state(spec, outcome)
        except LeruliError as exc:
            return Failed(message=str(exc))
        except Exception as exc:  # docker and boto3 raise their own trees; the job must still end
            return Failed(message=_describe_failure(spec, exc))
        finally:
            if task_status is not None and not reported:
                task_status.started(container_runner.container_name(str(flow_run.id)))
            await asyncio.to_thread(staging.remove_run_dir, run_dir)

    def _docker_client(self) -> docker.DockerClient:
        if self._docker is None:
            import docker

            self._docker = docker.DockerClient(base_url=self.node_config.docker_host)
        return self._docker


def _final_state(spec: JobSpec, outcome: container_runner.ContainerOutcome) -> State[Any]:
    if outcome.timed_out:
        return Failed(message=f"time limit exceeded ({spec.time_limit_s} s)")
    if outcome.oom_killed:
        return Failed(message=f"out of memory (limit {spec.memory_mb} MB)")
    if outcome.exit_code == 0:
        return Completed(message="exit code 0")
    return Failed(message=f"exit code {outcome.exit_code}")


def _describe_failure(spec: JobSpec, exc: Exception) -> str:
    import docker.errors

    if isinstance(exc, docker.errors.ImageNotFound):
        return f"image {spec.image} is not on this node"
    return f"node error: {type(exc).__name__}: {exc}"


def _node_config_from_settings() -> NodeConfig:
    path = load_settings().node_config
    if path is None:
        raise LeruliError("set LERULI_NODE_CONFIG to the node's node.toml (or use `leruli node start`)")
    return load_node_config(path)
