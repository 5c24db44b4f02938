"""`LeruliWorker`: the Prefect worker of a compute node (type `leruli-docker`).

It claims its group's flow runs like any Prefect worker, but runs each job's plain science image itself
(no Prefect inside the container): stage in, run with docker-py, stage out, then report the final state with
its reason from the worker process. `run` returns status 0 so the base class does not overwrite that state
with Crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import math
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import anyio
import httpx
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import InfrastructureNotFound, ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelled, Completed, Crashed, Failed, Running
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from pydantic import ValidationError

from leruli_prefect.attempts import LOST_REASON, attempt_of, is_written_off
from leruli_prefect.client import GatewayClient
from leruli_prefect.errors import LeruliError, NodeDiskFullError, StorageUnavailableError
from leruli_prefect.job_record import JobRecord
from leruli_prefect.job_spec import JobSpec
from leruli_prefect.serving_heap import prepare_heap_for_serving
from leruli_prefect.settings import load_settings
from leruli_prefect.storage.s3_client import make_s3_client
from leruli_prefect.worker import (
    container_runner,
    docker_engine,
    docker_filesystem,
    images,
    kept_outputs,
    leftovers,
    pending_states,
    poll_window,
    ready_line,
    result_record,
    staging,
)
from leruli_prefect.worker.cancellation import CancelWatch
from leruli_prefect.worker.claim_order import spread_among_equals
from leruli_prefect.worker.kept_offers import KeptOffers
from leruli_prefect.worker.memory_peak import MemoryPeak
from leruli_prefect.worker.node_config import NodeConfig, load_node_config
from leruli_prefect.worker.packing import NodeCapacity
from leruli_prefect.worker.pid_update import without_infrastructure_pid
from leruli_prefect.worker.recent_reads import RecentReads
from leruli_prefect.worker.retries import Backoff, GatewayLink
from leruli_prefect.worker.run_reads import RunReads, WatchedRun

if TYPE_CHECKING:
    from collections.abc import Sequence

    import docker
    from docker.models.containers import Container
    from mypy_boto3_s3 import S3Client
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse, WorkerFlowRunResponse
    from prefect.states import State


DEPLOYMENT_READ_TTL_S = 30.0
_UNFINISHED = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)


class LeruliJobConfiguration(BaseJobConfiguration):
    """Per-run settings a pool could template; a job's own settings travel as flow run parameters."""

    @classmethod
    async def resolve_for_flow_run(
        cls,
        flow_run: FlowRun,
        *,
        client: PrefectClient,
        work_pool: WorkPool,
        worker_name: str,
        worker_id: UUID | None = None,
        deployment: DeploymentResponse | None = None,
    ) -> LeruliJobConfiguration:
        """The pool's template with the run's variables, without reading the run's deployment and flow.

        Prefect's version reads both on every claim (two round trips through the gateway) to label and
        configure a Prefect process in the container; a leruli job runs a plain image, and a group's
        deployment carries no job variables of its own (`job_runs.provision_group`).
        """
        configuration = await cls.from_template_and_values(
            base_job_template=work_pool.base_job_template,
            values=dict(flow_run.job_variables or {}),
            client=client,
        )
        configuration.prepare_for_flow_run(
            flow_run=flow_run, work_pool=work_pool, worker_name=worker_name, worker_id=worker_id
        )
        return configuration

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: Any = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        """Name and label the run's infrastructure as Prefect does, without the environment and command of a
        Prefect process (a leruli container gets neither: `container_runner.thread_environment`); building
        that environment serialised all of the node's Prefect settings on every claim."""
        self._related_objects = {"deployment": deployment, "flow": flow, "flow-run": flow_run}
        self.labels = {
            **self._base_flow_run_labels(flow_run),
            **self._base_work_pool_labels(work_pool),
            **self._base_worker_name_label(worker_name),
            **self.labels,
        }
        self.name = flow_run.name


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
        self.node_config = node_config or _node_config_from_settings()
        # Runs in hand: one per slot running, one per slot winding down (its container has ended, its
        # outputs and state are on their way out) while the slot's next job starts, and those held ready.
        kwargs.setdefault("limit", 2 * self.node_config.slots + self.node_config.prefetch)
        super().__init__(*args, **kwargs)
        self.capacity = NodeCapacity(
            cores=self.node_config.cores,
            memory_mb=self.node_config.memory_mb,
            slots=self.node_config.slots,
            cpu_ids=sorted(os.sched_getaffinity(0)),
            line=self.node_config.prefetch,
        )
        self._line = ready_line.ReadyLine(self.capacity, self.node_config.prefetch_hold_seconds)
        self._docker: docker.DockerClient | None = None
        self._s3: S3Client | None = None
        self._polling = asyncio.Lock()
        self._kept = KeptOffers()
        self._wakes: set[asyncio.Task[None]] = set()
        self._background: list[asyncio.Task[None]] = []  # the node's own loops, ended in `teardown`
        self._gateway = GatewayLink(self._logger, Backoff(first=1.0, longest=10.0))
        self._run_reads = RunReads(self._read_watched_runs, interval=self.node_config.cancel_poll_seconds)
        self._gateway_api: GatewayClient | None = None  # the /v1 API, for `_read_watched_runs`

    async def setup(self) -> None:
        """Start as any Prefect worker, then clear what this node left behind if it died mid-job."""
        await super().setup()
        self._background.append(asyncio.create_task(self._upload_kept_outputs_forever()))
        self._background.append(asyncio.create_task(self._report_held_states()))
        self._background.append(asyncio.create_task(self._warm_up()))
        # Prefect reads the run's deployment before every claim, to see that it still exists.
        self.client.read_deployment = RecentReads(  # type: ignore[method-assign]
            self.client.read_deployment, ttl=DEPLOYMENT_READ_TTL_S
        )
        # Nor does it record each container's name on its run (see `pid_update`).
        unpidded = without_infrastructure_pid(self.client.update_flow_run)
        self.client.update_flow_run = unpidded  # type: ignore[method-assign]
        try:
            lost = await asyncio.to_thread(
                leftovers.remove_leftovers, self._docker_client(), self.node_config.data_dir
            )
        except Exception as exc:  # a Docker hiccup must not keep the node from starting
            self._logger.warning("cannot clear leftovers of an earlier run of this node: %s", exc)
            return
        for flow_run_id, attempt in lost.items():
            await self._write_off(UUID(flow_run_id), attempt)

    async def _warm_up(self) -> None:
        """Make the node's S3 client and learn the group's results bucket now, not during the first job:
        that job took 3.8 s against 1.3 s for the next ones here, 1.2 s of it in asking where records go.
        Then keep what the node has loaded out of later garbage collections."""
        try:
            s3 = await self._s3_client()
            await asyncio.to_thread(result_record.result_storage, self.node_config, s3)
        except Exception as exc:  # the gateway or S3 away: the first job asks again
            self._logger.info("warm-up skipped (the first job sets up instead): %s", exc)
        await self._warn_of_shared_filesystem()
        # Prefect, docker-py and botocore are loaded by now: their objects need no more collections.
        self._logger.info("%d startup objects kept from collections", prepare_heap_for_serving())

    async def _warn_of_shared_filesystem(self) -> None:
        """Say at start when the run dirs share Docker's filesystem: every job pays for that (the module)."""
        config = self.node_config
        try:
            root = await asyncio.to_thread(
                docker_filesystem.local_docker_root, config.docker_host, self._docker_client()
            )
        except Exception as exc:  # the engine away: the first job's own checks say so
            self._logger.info("Docker's data root unknown: %s", exc)
            return
        if root and docker_filesystem.shares_filesystem(config.data_dir, root):
            self._logger.warning(docker_filesystem.shared_filesystem_warning(config.data_dir, root))

    async def teardown(self, *exc_info: Any) -> None:
        for task in self._background:
            task.cancel()
        if self._gateway_api is not None:
            self._gateway_api.close()
        await super().teardown(*exc_info)

    async def _read_watched_runs(self, run_ids: Sequence[UUID]) -> dict[UUID, WatchedRun]:
        """The runs this node's jobs watch (`CancelWatch`), in one request."""
        if self._gateway_api is None:
            self._gateway_api = GatewayClient(self.node_config.gateway_url)
        config = self.node_config
        runs = await asyncio.to_thread(
            self._gateway_api.node_runs,
            list(run_ids),
            group_token=config.group_token.get_secret_value(),
            compute_secret=config.compute_secret.get_secret_value(),
        )
        return {
            UUID(run["id"]): WatchedRun(run["state_type"], run["state_message"], run["labels"], run["tags"])
            for run in runs
        }

    async def _write_off(self, flow_run_id: UUID, attempt: int | None) -> None:
        """A job this node was running when it died: Crashed (`node lost`), or Cancelled if that was asked.

        Only if the attempt it ran is still the job's: once the server has written this node off and
        requeued the job, the newer attempt (perhaps running elsewhere) is not ours to end. A run dir without
        a container does not say its attempt; it can only be the first one's (later ones: the server's sweep).
        """
        try:
            flow_run = await self.client.read_flow_run(flow_run_id)
        except (ObjectNotFound, httpx.HTTPError) as exc:
            self._logger.warning("leftover job %s not readable: %s", flow_run_id, exc)
            return
        if (attempt or 1) != attempt_of(flow_run.labels):
            self._logger.info("leftovers of job %s removed; a newer attempt holds it", flow_run_id)
            return
        state = flow_run.state.type if flow_run.state is not None else None
        if state == StateType.CANCELLING:
            await self.client.set_flow_run_state(flow_run_id, Cancelled(message=flow_run.state.message))
        elif state in (StateType.PENDING, StateType.RUNNING):
            await self.client.set_flow_run_state(flow_run_id, Crashed(message=LOST_REASON))
        self._logger.info("cleared leftovers of job %s (was %s)", flow_run_id, state)

    async def _propose_submitting_state(self, flow_run: FlowRun) -> None:
        """No `Submitting` state: a node goes from its claim (Pending) to Running itself, moments later.

        Prefect's hook proposes a second Pending state (named Submitting) between them: one more write
        through the gateway before every job's start, telling nobody anything (test_polling.py checks that
        the base class still calls this hook)."""

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        """No labels request: the gateway labels a run with its holder when it accepts the node's claim,
        before the node hears the answer (`gateway/claim_labels.py`; test_recent_reads.py checks that the
        base class still calls this hook)."""

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Ask for runs only while a slot is free, one poll at a time.

        A full node has nothing to claim, so its frequent polls (`poll_seconds`) cost the server nothing
        while its jobs run (a job winding down after its container ended leaves its slot free).
        While the gateway is away the poll backs off instead of ending the node (Prefect's loop would).
        """
        async with self._polling:
            if self._limiter is not None:
                # A claim whose run the base class no longer holds (Pending refused: cancelled, or taken by
                # another node) is free again; the base class holds a limiter token for every run in hand.
                if self.capacity.release_all_but(self.limiter.statistics().borrowers):
                    self._kept.forget()
                self._line.admit()
                if self.limiter.available_tokens < 1:
                    return []
            if not self.capacity.has_room():
                return []
            return await self._gateway.try_once(super().get_and_submit_flow_runs, "asking for jobs") or []

    async def sync_with_backend(self) -> None:
        """Prefect's heartbeat; while the gateway is away it backs off instead of ending the node."""
        await self._gateway.try_once(super().sync_with_backend, "sending a heartbeat")

    def _free_slot(self, flow_run_id: UUID) -> None:
        """The job's container has ended: its slot is free, and the next job is claimed while this one's
        logs, files and final state go out (about half a second of round trips per job). Once per job."""
        if self.capacity.claim_of(flow_run_id) is None:
            return  # freed already
        self.capacity.wind_down(flow_run_id)
        self._line.admit()
        self._poll_when_freed()

    def _poll_when_freed(self, flow_run_id: UUID | None = None) -> None:
        """Look for the next run as soon as a slot is free again, not at the next poll: when a container
        has ended, and when a run has ended (once the base class has taken back its limiter token)."""
        if not self.is_setup:
            return  # not polling at all (stopping, or run outside `start`)
        task = asyncio.get_running_loop().create_task(self._poll_after_release(flow_run_id))
        self._wakes.add(task)
        task.add_done_callback(self._wakes.discard)

    async def _poll_after_release(self, flow_run_id: UUID | None) -> None:
        # The base class gives the run's limiter token back only after `run` has returned.
        for _ in range(200 if flow_run_id is not None else 0):
            await asyncio.sleep(0.01)
            if self._limiter is None or flow_run_id not in self.limiter.statistics().borrowers:
                break
        if not self.is_setup:
            return
        try:
            # Waits for a poll under way (which may have counted the slot as taken), then asks again; with
            # no free slot by then it asks the server nothing.
            await self.get_and_submit_flow_runs()
        except (httpx.HTTPError, PrefectHTTPStatusError) as exc:  # the regular poll tries again
            self._logger.debug("poll after a job ended failed: %s", exc)

    async def _get_scheduled_flow_runs(self) -> list[WorkerFlowRunResponse]:
        """The scheduled runs this node takes now: those that fit in what is left, oldest first (nodes start
        at different ones among equal runs at the head, see `claim_order`).

        The one private hook of `BaseWorker` we use (tests/worker/test_packing.py checks it still exists):
        its public `get_and_submit_flow_runs` asks this method which runs to claim, then claims every one
        returned, so filtering here is the only way to leave a run unclaimed for a bigger or freer node.
        It asks for the head of the queue first (`poll_window`), and for a longer page only when the head
        held nothing more to take while this node still has room. While the offers of its last poll are
        fresh (`kept_offers`) and hold a run it can take, it takes that one without asking.
        """
        taken, blocked = self._take(self._kept.fresh())
        if taken or blocked:
            self._kept.drop(taken)
            return taken
        offered = spread_among_equals(
            await self._scheduled_runs(poll_window.WINDOW), lambda offer: _asked(offer.flow_run)
        )
        taken, blocked = self._take(offered)
        self._kept.keep(offered, taken)
        if not blocked and len(offered) >= poll_window.WINDOW and self.capacity.has_room():
            further, _ = self._take(await self._scheduled_runs(None))
            self._kept.drop(further)
            taken += further
        return taken

    async def _scheduled_runs(self, limit: int | None) -> list[WorkerFlowRunResponse]:
        # As BaseWorker._get_scheduled_flow_runs asks, with a limit.
        return await poll_window.scheduled_runs(
            self.client,
            work_pool_name=self._work_pool_name,
            work_queue_names=list(self._work_queues),
            scheduled_before=datetime.now(UTC) + timedelta(seconds=int(self._prefetch_seconds)),
            limit=limit,
        )

    def _take(self, offered: list[WorkerFlowRunResponse]) -> tuple[list[WorkerFlowRunResponse], bool]:
        """The offered runs this node reserves room for, in order; and whether one that fits the node had
        to wait for room (then no run behind it is taken: first come, first served)."""
        taken = []
        for response in offered:
            flow_run = response.flow_run
            if self.capacity.holds(flow_run.id):
                # In hand already, or lost and requeued while its stale task here has not ended: that task's
                # requests would pass the gateway's fence as the new attempt's.
                continue
            cores, memory_mb = _asked(flow_run)
            if not self.capacity.fits_node(cores=cores, memory_mb=memory_mb):
                continue  # never ours: left for a bigger node
            if not self.capacity.reserve_or_wait(flow_run.id, cores=cores, memory_mb=memory_mb):
                return taken, True  # a later, smaller job does not overtake this one
            taken.append(response)
        return taken, False

    async def run(
        self,
        flow_run: FlowRun,
        configuration: LeruliJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> LeruliWorkerResult:
        name = container_runner.container_name(str(flow_run.id), attempt_of(flow_run.labels))
        run_dir = self.node_config.data_dir / "runs" / str(flow_run.id)
        started = _StartReport(task_status)
        removal: asyncio.Future[None] | None = None
        try:
            final = await self._run_claimed(flow_run, run_dir, started)
            # Deleting a large run dir takes seconds (1.6 s for 1 GiB here): the final state goes out
            # meanwhile, and the disk is freed even while the gateway is away.
            removal = asyncio.ensure_future(asyncio.to_thread(staging.remove_run_dir, run_dir))
            if final is not None:
                await self._end(flow_run, final, freeing=removal)
        finally:
            await (removal or asyncio.to_thread(staging.remove_run_dir, run_dir))
            # In hand until its final state is set: a run requeued meanwhile is not claimed here again.
            self.capacity.release(flow_run.id)
            self._line.admit()
            started.report(name)  # the base class waits for it even when no container ran
            self._poll_when_freed(flow_run.id)
        return LeruliWorkerResult(identifier=name, status_code=0)

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: LeruliJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """Kill a job's container by name (Prefect's own cancellation of runs it had claimed)."""
        import docker.errors

        try:
            container = await asyncio.to_thread(self._docker_client().containers.get, infrastructure_pid)
        except docker.errors.NotFound as exc:
            raise InfrastructureNotFound(f"no container {infrastructure_pid}") from exc
        await asyncio.to_thread(container_runner.kill_container, container)

    async def _run_claimed(
        self, flow_run: FlowRun, run_dir: Path, started: _StartReport
    ) -> State[Any] | None:
        """Run a claimed job to its final state (leaving `run_dir` to the caller to delete); None when it is
        not ours to run any more."""
        logger = self.get_flow_run_logger(flow_run)
        try:
            spec = JobSpec.model_validate(flow_run.parameters)
        except ValidationError as exc:
            return Failed(message=f"invalid job parameters: {exc.error_count()} error(s)")
        # The inputs come down while the run waits in line for a slot (if it was claimed ahead) and while
        # the Running proposal is on its way: neither delays the container's start. A refused run's inputs
        # are dropped again, and a stage-in still waiting for S3 stops at once instead of holding the slot.
        stop_staging = threading.Event()
        prepared = asyncio.create_task(self._prepare(flow_run, spec, run_dir, stop_staging))
        try:
            if not await self._await_slot(flow_run):
                await _discard(prepared, run_dir, stop_staging)
                return None
            accepted = await self._gateway.call(
                lambda: self.client.set_flow_run_state(flow_run.id, Running(message=f"on node {self.name}")),
                f"starting job {flow_run.id}",
                self.node_config.api_retry_seconds,
            )
        except PrefectHTTPStatusError as exc:
            await _discard(prepared, run_dir, stop_staging)
            if exc.response.status_code != 409:
                raise
            # The gateway's fence: written off meanwhile, or no longer Pending (an operator's Cancelled).
            logger.info("job %s not started: %s", flow_run.id, exc)
            return None
        except BaseException:
            await _discard(prepared, run_dir, stop_staging)
            raise
        if accepted.status != SetStateStatus.ACCEPT:
            # Cancelled (or claimed elsewhere) between the claim and now: it never starts.
            logger.info("job %s not started: %s", flow_run.id, accepted.details)
            await _discard(prepared, run_dir, stop_staging)
            await self._finish_cancel(flow_run.id)
            return None
        watch = CancelWatch(self._run_reads, flow_run.id, node_name=self.name)
        async with anyio.create_task_group() as watching:
            watching.start_soon(watch.watch)
            final = await self._run_job(flow_run, spec, run_dir, started, watch, prepared)
            watching.cancel_scope.cancel()
        return final

    async def _await_slot(self, flow_run: FlowRun) -> bool:
        """Wait for a slot if the run is held ready in line (`ready_line`): True once it holds one, False
        when it is no longer this node's to run (given back to the queue, cancelled, or written off)."""
        if not self.capacity.is_waiting(flow_run.id):
            return True
        watch = CancelWatch(self._run_reads, flow_run.id, node_name=self.name)

        async def leave_line() -> None:
            self._line.cancel(flow_run.id)

        async with anyio.create_task_group() as watching:
            watching.start_soon(watch.watch)
            await watch.on_cancel(leave_line)
            admitted = await self._wait_in_line(flow_run, watch)
            watching.cancel_scope.cancel()
        return admitted

    async def _wait_in_line(self, flow_run: FlowRun, watch: CancelWatch) -> bool:
        while True:
            turn = await self._line.wait(flow_run.id)
            if turn is ready_line.Turn.ADMITTED:
                return True
            if turn is ready_line.Turn.CANCELLED:
                if not watch.lost:  # a written-off run is its newer attempt's: no state from us
                    await self._finish_cancel(flow_run.id)
                return False
            hold = self.node_config.prefetch_hold_seconds
            if await ready_line.give_back(self.client, flow_run, self.name, hold):
                self.capacity.give_back(flow_run.id)
                self.get_flow_run_logger(flow_run).info(
                    "job %s back in the queue: no slot freed here within %g s", flow_run.id, hold
                )
                return False

    async def _cancel_run(self, flow_run_id: UUID) -> None:
        """Prefect's cancel of a claimed run that never started; a run held ready in line ends itself.

        A private hook of `BaseWorker` (tests/worker/test_ready_line.py checks that Prefect still calls it),
        called only with `PREFECT_WORKER_ENABLE_CANCELLATION` on: its Cancelled, set beside the run's own
        give-back, could be followed by that give-back's Scheduled, which Prefect accepts, and the cancelled
        job would run after all."""
        if not self._line.cancel(flow_run_id):
            await super()._cancel_run(flow_run_id)

    async def _prepare(
        self, flow_run: FlowRun, spec: JobSpec, run_dir: Path, stop: threading.Event
    ) -> _Prepared:
        """Everything a job's start needs but its slot: the inputs staged in and handed over to the job's
        user, its image (a published code is loaded from its bucket), and its container made."""
        s3 = await self._s3_client()
        config = self.node_config
        await asyncio.to_thread(
            staging.stage_in,
            s3,
            spec.bucket,
            run_dir,
            config.max_unpacked_bytes,
            config.storage_retry_seconds,
            stop,
        )
        if stop.is_set():
            raise _NotNeeded
        engine = self._docker_client()
        await asyncio.to_thread(images.ensure_image, engine, config, spec.image)
        await asyncio.to_thread(staging.hand_over, run_dir, config.container_user)
        inputs = await asyncio.to_thread(staging.input_stamps, run_dir)
        # A run not held in line has its slot already: pinned now, its start needs no `update` call.
        claim = None if self.capacity.is_waiting(flow_run.id) else self.capacity.claim_of(flow_run.id)
        cpuset = claim.cpuset if claim else None
        container = await asyncio.to_thread(
            container_runner.create_container,
            engine,
            spec,
            run_dir,
            str(flow_run.id),
            user=config.container_user,
            node=leftovers.node_label_value(config.data_dir),
            attempt=attempt_of(flow_run.labels),
            cpuset=cpuset,
        )
        return _Prepared(inputs, container, cpuset)

    async def _run_job(
        self,
        flow_run: FlowRun,
        spec: JobSpec,
        run_dir: Path,
        started: _StartReport,
        watch: CancelWatch,
        prepared: asyncio.Task[_Prepared],
    ) -> State[Any] | None:
        config = self.node_config
        claim = self.capacity.claim_of(flow_run.id)
        try:
            inputs, container, pinned = await prepared
            if watch.requested:
                await asyncio.to_thread(container_runner.remove_unstarted, container)
                return Cancelled(message=watch.message)
            s3 = await self._s3_client()
            try:
                cpuset = claim.cpuset if claim else None
                await asyncio.to_thread(
                    container_runner.start_created, container, None if cpuset == pinned else cpuset
                )
            except BaseException:
                await asyncio.to_thread(container_runner.remove_unstarted, container)
                raise
            started.report(container.name)
            memory = MemoryPeak(container).start()
            await watch.on_cancel(lambda: asyncio.to_thread(container_runner.kill_container, container))
            loop = asyncio.get_running_loop()

            def exited() -> None:  # in wait_for_container's thread
                with contextlib.suppress(RuntimeError):  # the loop has closed: the node is stopping
                    loop.call_soon_threadsafe(self._free_slot, flow_run.id)

            try:
                outcome = await asyncio.to_thread(
                    container_runner.wait_for_container,
                    container,
                    spec.time_limit_s,
                    config.docker_retry_seconds,
                    on_exit=exited,
                )
            finally:
                peak_memory = await asyncio.to_thread(memory.stop)
                self._free_slot(flow_run.id)
            # The job wrote joblog.txt and joberr.txt itself: on a full disk they may be cut short even
            # when it exited 0, so a full disk after the job fails it whatever its exit code.
            disk_full = staging.is_disk_full(run_dir)
            if watch.lost or await self._lost(flow_run.id):
                # Written off while running (this node was silent too long): the job's outputs and state
                # belong to its newer attempt now; ours must not overwrite them.
                self.get_flow_run_logger(flow_run).warning(
                    "job %s lost to a newer attempt: outputs dropped", flow_run.id
                )
                return None
            # Whatever the job wrote goes back to its bucket, even when it was cancelled or failed.
            try:
                files = await asyncio.to_thread(
                    staging.stage_out, s3, run_dir, spec.bucket, inputs, config.storage_retry_seconds
                )
            except StorageUnavailableError as exc:
                return await self._keep_outputs(flow_run, spec, run_dir, inputs, exc)
            final = (
                Cancelled(message=watch.message)
                if watch.requested
                else _final_state(spec, outcome, disk_full=disk_full)
            )
            record = result_record.build_record(
                job_id=flow_run.id,
                attempt=attempt_of(flow_run.labels),
                node=self.name,
                spec=spec,
                outcome=outcome,
                peak_memory_bytes=peak_memory,
                files=files,
                cancelled=watch.requested,
            )
            return await self._with_record(flow_run, final, record, s3)
        except LeruliError as exc:
            return Failed(message=str(exc))
        except Exception as exc:  # docker and boto3 raise their own trees; the job must still end
            return Failed(message=_describe_failure(spec, exc))

    async def _keep_outputs(
        self,
        flow_run: FlowRun,
        spec: JobSpec,
        run_dir: Path,
        inputs: dict[str, Any],
        exc: StorageUnavailableError,
    ) -> State[Any]:
        """S3 stayed away past the limit at stage-out: the job fails, its outputs stay on this node (never
        lost) and go up later by themselves (`_upload_kept_outputs`)."""
        kept = await asyncio.to_thread(
            kept_outputs.keep,
            self.node_config.data_dir,
            run_dir,
            str(flow_run.id),
            attempt_of(flow_run.labels),
            spec.bucket,
            inputs,
        )
        where = kept.where()
        self._logger.warning(
            "job %s: %s; %s, to be uploaded to %s once S3 answers", flow_run.id, exc, where, spec.bucket
        )
        return Failed(message=f"{exc}; {where}")

    async def _upload_kept_outputs_forever(self) -> None:
        """Upload the outputs kept during S3 outages once S3 answers: now (a restarted node) and then every
        `kept_upload_seconds`, for as long as the node runs."""
        while True:
            try:
                await self._upload_kept_outputs()
            except Exception as exc:  # the data dir unreadable, no S3 client: said, and tried again later
                self._logger.warning("kept outputs not offered to S3: %s", exc)
            await asyncio.sleep(self.node_config.kept_upload_seconds)

    async def _upload_kept_outputs(self) -> None:
        for kept in await asyncio.to_thread(kept_outputs.waiting, self.node_config.data_dir):
            try:
                files = await asyncio.to_thread(kept_outputs.upload_kept, await self._s3_client(), kept)
            except StorageUnavailableError:
                return  # S3 still away: the next round tries again
            except Exception as exc:  # an answer (a deleted bucket, no access): said, tried again later
                self._logger.warning("kept outputs of job %s not uploaded: %s", kept.job_id, exc)
                continue
            self._logger.warning(
                "uploaded the kept outputs of job %s to %s (%d files); %s stays until removed by hand",
                kept.job_id,
                kept.bucket,
                len(files),
                kept.path,
            )

    async def _with_record(
        self, flow_run: FlowRun, final: State[Any], record: JobRecord, s3: S3Client
    ) -> State[Any]:
        """The final state with the job's result record as its Prefect result, stored in the group's bucket.

        A record that cannot be stored is logged and left out: the job still ends as it did, and its
        outputs are in its bucket."""
        try:
            storage = await asyncio.to_thread(result_record.result_storage, self.node_config, s3)
            final.data = await result_record.persist_record(self.node_config, storage, record)
        except Exception as exc:  # S3, the gateway: the record is an addition, not the job's outcome
            self.get_flow_run_logger(flow_run).warning(
                "job %s: result record not stored: %s", flow_run.id, exc
            )
        return final

    async def _end(
        self, flow_run: FlowRun, final: State[Any], freeing: asyncio.Future[None] | None = None
    ) -> None:
        """Note the final state on disk, then send it. `freeing` is the deletion of the job's run dir under
        way: if the job filled the disk, the note waits for the room it makes."""
        self.get_flow_run_logger(flow_run).info(
            "job %s ends %s%s", flow_run.id, final.name, f": {final.message}" if final.message else ""
        )
        note = functools.partial(
            pending_states.save, self.node_config.data_dir, flow_run.id, attempt_of(flow_run.labels), final
        )
        try:
            pending = await asyncio.to_thread(note)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or freeing is None:
                raise
            await freeing
            pending = await asyncio.to_thread(note)
        await self._report_final(pending)

    async def _report_final(self, pending: pending_states.PendingState) -> None:
        """Send a job's final state until the gateway answers, however long it is away (with capped
        backoff): a job must never stay Running. Its note in the data dir goes once the gateway answered."""
        job = pending.flow_run_id
        try:
            result = await self._gateway.call(
                lambda: pending_states.send(self.client, pending),
                f"reporting job {job} {pending.name}",
                limit_seconds=math.inf,
            )
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code not in (404, 409):
                raise  # the note stays: the node's next start tries again
            # 409: a newer attempt holds the job (this node was written off); 404: the job is gone.
            self._logger.warning("job %s: state not set: %s", job, exc)
            await asyncio.to_thread(pending_states.drop, self.node_config.data_dir, job)
            return
        await asyncio.to_thread(pending_states.drop, self.node_config.data_dir, job)
        if result.status != SetStateStatus.ACCEPT:
            # A cancel that came after the container ended: Prefect allows only Cancelled from Cancelling.
            await self._finish_cancel(job)

    async def _report_held_states(self) -> None:
        """Send the final states this node held when it last stopped (the gateway was away then)."""
        for pending in await asyncio.to_thread(pending_states.waiting, self.node_config.data_dir):
            try:
                await self._report_held_state(pending)
            except Exception as exc:  # an answer other than "away": the note stays for the next start
                self._logger.warning("job %s: held final state not sent: %s", pending.flow_run_id, exc)

    async def _report_held_state(self, pending: pending_states.PendingState) -> None:
        job = pending.flow_run_id
        try:
            flow_run = await self._gateway.call(
                lambda: self.client.read_flow_run(job), f"reading job {job}", math.inf
            )
        except ObjectNotFound:
            await asyncio.to_thread(pending_states.drop, self.node_config.data_dir, job)
            return
        state = flow_run.state.type if flow_run.state is not None else None
        if attempt_of(flow_run.labels) != pending.attempt or state not in _UNFINISHED:
            # Ended or requeued since: the node's old news must not overwrite a newer attempt.
            self._logger.warning(
                "job %s moved on (%s) while this node was away: %s not sent", job, state, pending.name
            )
            await asyncio.to_thread(pending_states.drop, self.node_config.data_dir, job)
            return
        self._logger.warning(
            "job %s: sending its final state %s, held since before this start", job, pending.name
        )
        await self._report_final(pending)

    async def _lost(self, flow_run_id: UUID) -> bool:
        """Whether the server wrote this node off for the job (asked afresh right before staging out)."""
        try:
            found = await self._read_watched_runs([flow_run_id])
        except (OSError, LeruliError):
            return False  # cannot tell: upload; the gateway still fences the final state
        run = found.get(flow_run_id)
        return run is not None and is_written_off(run.labels, self.name)

    async def _finish_cancel(self, flow_run_id: UUID) -> None:
        """Move a run left in Cancelling to Cancelled (nobody else will: its infrastructure is ours)."""
        current = await self.client.read_flow_run(flow_run_id)
        if current.state is not None and current.state.type == StateType.CANCELLING:
            await self.client.set_flow_run_state(flow_run_id, Cancelled(message=current.state.message))

    async def _s3_client(self) -> S3Client:
        """One boto3 client for all jobs (thread-safe); making one takes ~0.1 s of CPU, so in a thread."""
        if self._s3 is None:
            config = self.node_config
            self._s3 = await asyncio.to_thread(
                make_s3_client,
                config.s3_server,
                config.s3_access,
                config.s3_secret.get_secret_value(),
                max_attempts=2,  # longer outages: staging's own retries, which the node's log shows
            )
        return self._s3

    def _docker_client(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = docker_engine.connect(self.node_config.docker_host)
        return self._docker


class _StartReport:
    """Tells the base class once that the job's infrastructure exists (its value: the container name)."""

    def __init__(self, task_status: anyio.abc.TaskStatus[str] | None) -> None:
        self._task_status = task_status

    def report(self, container_name: str) -> None:
        if self._task_status is not None:
            self._task_status.started(container_name)
            self._task_status = None


class _Prepared(NamedTuple):
    """A claimed job ready to start: its inputs as handed over (stage-out skips those unchanged) and its
    container, made but not started."""

    inputs: dict[str, Any]
    container: Container
    cpuset: str | None  # the CPUs it was pinned to when made (None: not pinned yet)


class _NotNeeded(Exception):
    """A preparation stopped because its job will not start here."""


async def _discard(prepared: asyncio.Task[_Prepared], run_dir: Path, stop: threading.Event) -> None:
    """Stop a preparation that is not needed any more, wait for it whatever its outcome, drop its container
    (if made) and its run dir."""
    stop.set()
    with contextlib.suppress(Exception):
        container = (await prepared).container
        await asyncio.to_thread(container_runner.remove_unstarted, container)
    await asyncio.to_thread(staging.remove_run_dir, run_dir)


def _asked(flow_run: FlowRun) -> tuple[int, int]:
    """The cores and memory a run asks for; an invalid run asks for nothing (it fails at once)."""
    try:
        spec = JobSpec.model_validate(flow_run.parameters)
    except ValidationError:
        return 0, 0
    return spec.cores, spec.memory_mb


def _final_state(
    spec: JobSpec, outcome: container_runner.ContainerOutcome, *, disk_full: bool = False
) -> State[Any]:
    if outcome.timed_out:
        return Failed(message=f"time limit exceeded ({spec.time_limit_s} s)")
    if disk_full:
        return Failed(message=NodeDiskFullError().args[0])
    if outcome.engine_lost:
        return Failed(message="docker engine unavailable: the job's end is unknown")
    if outcome.engine_restarted and outcome.exit_code != 0:
        return Failed(message=f"docker engine restarted during the job (exit code {outcome.exit_code})")
    if outcome.oom_killed:
        return Failed(message=f"out of memory (limit {spec.memory_mb} MB)")
    if outcome.exit_code == 0:
        return Completed(message="exit code 0")
    return Failed(message=f"exit code {outcome.exit_code}")


def _describe_failure(spec: JobSpec, exc: Exception) -> str:
    import docker.errors

    if isinstance(exc, docker.errors.ImageNotFound):
        return f"image {spec.image} is not on this node"
    if _is_no_space(exc):
        return NodeDiskFullError().args[0]
    return f"node error: {type(exc).__name__}: {exc}"


def _is_no_space(exc: BaseException | None) -> bool:
    """Whether an error (or what caused it) is the node's disk being full."""
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _node_config_from_settings() -> NodeConfig:
    path = load_settings().node_config
    if path is None:
        raise LeruliError("set LERULI_NODE_CONFIG to the node's node.toml (or use `leruli node start`)")
    return load_node_config(path)
