"""Runs held ready: claimed while the node's slots are busy, started the moment a slot frees, given back to
the queue when they wait too long, and cancelled for good (rules, then a real server, node, Docker and S3)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.responses import (
    OrchestrationResult,
    SetStateStatus,
    StateAcceptDetails,
    StateRejectDetails,
)
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelling, Pending, State
from prefect.workers.base import BaseWorker

from leruli_prefect.worker import ready_line
from leruli_prefect.worker.packing import NodeCapacity
from tests import stack
from tests.worker.node_stack import NodeUnderTest, flow_run, prefect_api, start_node_for_new_group, timed
from tests.worker.private_hooks import assert_hook_still_used

# Long enough that the second job is claimed while the first still runs, even on a loaded machine.
FIRST_JOB_SECONDS = 12


def _capacity(*, cores: int = 2, slots: int = 1, line: int = 2) -> NodeCapacity:
    return NodeCapacity(cores=cores, memory_mb=1000, slots=slots, cpu_ids=list(range(cores)), line=line)


def test_runs_in_line_start_in_the_order_they_came_and_none_overtakes() -> None:
    capacity = _capacity(cores=2, slots=2, line=2)
    assert capacity.reserve_or_wait("small-1", cores=1, memory_mb=10)
    assert capacity.reserve_or_wait("big", cores=2, memory_mb=10)  # 1 core left: in line
    assert capacity.reserve_or_wait("small-2", cores=1, memory_mb=10)  # would fit, but big came first
    assert capacity.is_waiting("small-2") and capacity.claim_of("small-2") is None
    assert not capacity.reserve_or_wait("small-3", cores=1, memory_mb=10)  # the line is full
    assert not capacity.has_room()
    capacity.wind_down("small-1")
    assert capacity.admit() == ["big"]  # small-2 waits for the room big leaves
    assert capacity.claim_of("big").cpuset == "0,1" and capacity.is_waiting("small-2")
    capacity.release("big")
    assert capacity.admit() == ["small-2"]
    assert capacity.has_room()


def test_after_a_give_back_the_line_takes_nobody_until_a_container_ends() -> None:
    capacity = _capacity(slots=1, line=1)
    assert capacity.reserve_or_wait("long", cores=1, memory_mb=10)
    assert capacity.reserve_or_wait("ready", cores=1, memory_mb=10)
    capacity.give_back("ready")
    assert not capacity.holds("ready") and not capacity.has_room()
    assert not capacity.reserve_or_wait("ready", cores=1, memory_mb=10)  # not taken straight back
    capacity.wind_down("long")
    assert capacity.has_room() and capacity.reserve_or_wait("ready", cores=1, memory_mb=10)
    assert capacity.claim_of("ready") is not None


def test_no_line_without_prefetch() -> None:
    capacity = _capacity(slots=1, line=0)
    assert capacity.reserve_or_wait("a", cores=1, memory_mb=10)
    assert not capacity.has_room() and not capacity.reserve_or_wait("b", cores=1, memory_mb=10)


@pytest.mark.anyio
async def test_a_wait_ends_admitted_cancelled_or_held_too_long() -> None:
    capacity = _capacity(slots=1, line=2)
    line = ready_line.ReadyLine(capacity, hold_seconds=30)
    for job in ("running", "first", "second"):
        assert capacity.reserve_or_wait(job, cores=1, memory_mb=10)

    first = asyncio.create_task(line.wait("first"))  # type: ignore[arg-type]
    second = asyncio.create_task(line.wait("second"))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert line.cancel("second")  # type: ignore[arg-type]
    assert await second is ready_line.Turn.CANCELLED and not capacity.holds("second")
    assert not first.done()
    capacity.wind_down("running")
    line.admit()
    assert await first is ready_line.Turn.ADMITTED and capacity.claim_of("first") is not None
    assert not line.cancel("first")  # type: ignore[arg-type]  # holds a slot: Prefect's own cancel applies

    assert capacity.reserve_or_wait("third", cores=1, memory_mb=10)
    line.hold_seconds = 0.1
    assert await line.wait("third") is ready_line.Turn.HELD_TOO_LONG  # type: ignore[arg-type]
    assert capacity.is_waiting("third")  # until the server has taken it back


def test_the_private_cancel_hook_we_override_still_exists() -> None:
    # LeruliWorker keeps Prefect's cancel away from runs in line (see its `_cancel_run`); if Prefect renames
    # the hook, a give-back could bring a cancelled job back: this test fails first.
    assert_hook_still_used("_cancel_run", ["self", "flow_run_id"], BaseWorker._setup_cancellation_observer)


class _Server:
    """Answers a give-back as Prefect would for a run in `state`; or fails with `error`."""

    def __init__(self, state: State[Any], error: Exception | None = None) -> None:
        self.state = state
        self.error = error
        self.proposed: list[StateType] = []

    async def set_flow_run_state(self, flow_run_id: UUID, state: State[Any], **_: Any) -> OrchestrationResult:
        if self.error is not None:
            raise self.error
        self.proposed.append(state.type)
        allowed = state.type is StateType.CANCELLED or self.state.type is StateType.PENDING
        if not allowed:
            return OrchestrationResult(
                state=None, status=SetStateStatus.REJECT, details=StateRejectDetails(reason="cancelling")
            )
        self.state = state
        return OrchestrationResult(state=state, status=SetStateStatus.ACCEPT, details=StateAcceptDetails())

    async def read_flow_run(self, flow_run_id: UUID) -> FlowRun:
        return FlowRun(id=flow_run_id, flow_id=uuid4(), state=self.state)


def _http_error(status: int) -> PrefectHTTPStatusError:
    request = httpx.Request("POST", "http://gateway/prefect/api/flow_runs/x/set_state")
    response = httpx.Response(status, request=request)
    return PrefectHTTPStatusError.from_httpx_error(
        httpx.HTTPStatusError("", request=request, response=response)
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("server", "no_longer_ours", "proposed"),
    [
        (_Server(Pending()), True, [StateType.SCHEDULED]),
        (_Server(Cancelling(message="by ada")), True, [StateType.SCHEDULED, StateType.CANCELLED]),
        (_Server(Pending(), _http_error(409)), True, []),  # written off: another attempt's now
        (_Server(Pending(), _http_error(503)), False, []),
        (_Server(Pending(), httpx.ConnectError("refused")), False, []),
    ],
    ids=["given-back", "cancel-came-first", "written-off", "gateway-busy", "gateway-away"],
)
async def test_a_give_back(server: _Server, no_longer_ours: bool, proposed: list[StateType]) -> None:
    run = FlowRun(id=uuid4(), flow_id=uuid4(), state=Pending())
    assert await ready_line.give_back(server, run, "node-a", 5) is no_longer_ours  # type: ignore[arg-type]
    assert server.proposed == proposed


# Through the real parts: a node of one slot that holds one run ready.


def _ready_node(
    server: stack.Server, s3_env: dict[str, str], tmp_path: Path, name: str, hold: float
) -> NodeUnderTest:
    return start_node_for_new_group(
        server, s3_env, tmp_path, name, slots=1, prefetch=1, prefetch_hold_seconds=hold, cores=1
    )


def _states(node: NodeUnderTest, job_id: str) -> list[dict[str, Any]]:
    response = prefect_api(node.server, "GET", "/flow_run_states/", params={"flow_run_id": job_id})
    assert response.status_code == 200, response.text
    return sorted(response.json(), key=lambda state: state["timestamp"])


def _types(node: NodeUnderTest, job_id: str) -> list[str]:
    return [state["type"] for state in _states(node, job_id)]


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _moment(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()


def test_the_next_job_is_claimed_while_the_slot_is_busy_and_starts_when_it_frees(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    node = _ready_node(server, s3_env, tmp_path, "ready", hold=60)
    try:
        first, first_bucket = node.submit(timed(f"sleep {FIRST_JOB_SECONDS}"), cores=1)
        node.wait_state(first, "Running")
        second, second_bucket = node.submit(timed("true"), cores=1)
        assert node.wait_final(first)["state"] == "Completed"
        assert node.wait_final(second)["state"] == "Completed"
    finally:
        node.process.stop()
    claimed = next(state for state in _states(node, second) if state["type"] == "PENDING")
    # Claimed while the first job's container still ran (it sleeps after its Running state) ...
    assert _moment(claimed["timestamp"]) < _moment(flow_run(server, first)["start_time"]) + FIRST_JOB_SECONDS
    assert _types(node, second) == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    # ... and its container started only once the first one's had ended: one slot.
    assert node.container_span(second_bucket)[0] >= node.container_span(first_bucket)[1]


def test_a_job_held_too_long_goes_back_to_the_queue_and_an_idle_node_runs_it(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    busy = _ready_node(server, s3_env, tmp_path, "holdback", hold=2)
    idle: stack.Process | None = None
    try:
        long_job, _ = busy.submit("sleep 600", cores=1)  # cancelled below; must outlast a node's start
        busy.wait_state(long_job, "Running")
        short_job, _ = busy.submit("true", cores=1)
        _wait_for(
            lambda: _types(busy, short_job) == ["SCHEDULED", "PENDING", "SCHEDULED"],
            30,
            f"job {short_job} not claimed and given back: {_types(busy, short_job)}",
        )
        given_back = _states(busy, short_job)[-1]
        assert given_back["message"].startswith("back in the queue: no slot freed on node")
        # It kept its place in the queue (its first scheduled time), so the next free node takes it first.
        first_scheduled = _states(busy, short_job)[0]["state_details"]["scheduled_time"]
        assert _moment(given_back["state_details"]["scheduled_time"]) == _moment(first_scheduled)

        config = stack.write_node_config(tmp_path / "idle.toml", server=server, group=busy.group, s3=s3_env)
        idle = stack.start_node(config)
        assert busy.wait_final(short_job, timeout=60)["state"] == "Completed"
        assert busy.job(long_job)["state"] == "Running"  # the busy node's slot never freed
        assert _types(busy, short_job) == [
            "SCHEDULED",
            "PENDING",
            "SCHEDULED",
            "PENDING",
            "RUNNING",
            "COMPLETED",
        ]
        busy.cancel(long_job)
        assert busy.wait_final(long_job, timeout=60)["state"] == "Cancelled"
    finally:
        busy.process.stop()
        if idle is not None:
            idle.stop()


def test_a_job_cancelled_while_held_ready_ends_cancelled_at_once_and_for_good(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    node = _ready_node(server, s3_env, tmp_path, "readycancel", hold=60)
    try:
        long_job, _ = node.submit("sleep 60", cores=1)
        node.wait_state(long_job, "Running")
        held, _ = node.submit("true", cores=1)
        node.wait_state(held, "Pending")
        assert node.cancel(held).status_code == 201
        assert node.wait_final(held, timeout=15)["state"] == "Cancelled"  # not after the 60 s job
        assert node.job(long_job)["state"] == "Running"
        node.cancel(long_job)
        assert node.wait_final(long_job, timeout=60)["state"] == "Cancelled"
        # Its slot freed meanwhile: the cancelled job stays cancelled, it never ran.
        time.sleep(2)
        assert _types(node, held) == ["SCHEDULED", "PENDING", "CANCELLING", "CANCELLED"]
    finally:
        node.process.stop()
