"""The race between a claim and a cancel: the node's Running proposal is refused because the run was
cancelled while Pending. The node must not start it and must finish the cancel (nobody else will)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import (
    OrchestrationResult,
    SetStateStatus,
    StateAcceptDetails,
    StateRejectDetails,
)
from prefect.settings import (
    PREFECT_LOGGING_TO_API_ENABLED,
    PREFECT_SERVER_ALLOW_EPHEMERAL_MODE,
    temporary_settings,
)
from prefect.states import Cancelling, State

from leruli_prefect.worker.leruli_worker import LeruliWorker
from tests.worker.offline_config import offline_node_config


class CancellingServer:
    """Answers like Prefect for a run an operator moved to Cancelling while it was Pending."""

    def __init__(self) -> None:
        self.proposed: list[StateType] = []

    async def set_flow_run_state(self, flow_run_id: UUID, state: State[Any], **_: Any) -> OrchestrationResult:
        self.proposed.append(state.type)
        if state.type is StateType.CANCELLED:
            return OrchestrationResult(
                state=state, status=SetStateStatus.ACCEPT, details=StateAcceptDetails()
            )
        reason = "Cannot transition flows that are cancelling to a state other than Cancelled."
        return OrchestrationResult(
            state=None, status=SetStateStatus.REJECT, details=StateRejectDetails(reason=reason)
        )

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        return FlowRun(id=flow_run_id, flow_id=uuid4(), state=Cancelling())


@pytest.mark.anyio
async def test_run_cancelled_while_pending_never_starts_and_ends_cancelled(tmp_path: Path) -> None:
    # any Docker call would fail the job instead
    config = offline_node_config(tmp_path, docker_host="unix:///nonexistent.sock")
    # Stage-in runs beside the Running proposal and this S3 never answers: with the default retry it would
    # wait 300 s for S3; the refused proposal must stop it at once.
    assert config.storage_retry_seconds == 300
    worker = LeruliWorker(work_pool_name="leruli-race", node_config=config)
    server = CancellingServer()
    worker._client = server  # type: ignore[assignment]  # a fake API in place of the one `setup` opens
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "d" * 32}
    flow_run = FlowRun(id=uuid4(), flow_id=uuid4(), parameters=spec)
    worker.capacity.reserve(flow_run.id, cores=1, memory_mb=256)

    # No API at all: the run's logs stay local, and no temporary Prefect server may start.
    quiet = {PREFECT_LOGGING_TO_API_ENABLED: False, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False}
    with temporary_settings(updates=quiet):
        started = time.monotonic()
        result = await worker.run(flow_run, configuration=None)  # type: ignore[arg-type]
        took = time.monotonic() - started
    print(f"\n[cancel race] refused run ended in {took:.2f} s")

    assert result.status_code == 0
    assert server.proposed == [StateType.RUNNING, StateType.CANCELLED]
    assert worker._docker is None  # no container was ever asked for
    assert not worker.capacity.holds(flow_run.id)
    # Its inputs may have been fetched while the Running proposal travelled; none are left behind.
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # Not a speed target: far below the retry limit, i.e. the stage-in was stopped rather than waited out.
    assert took < config.storage_retry_seconds / 10
