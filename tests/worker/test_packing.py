"""Packing jobs onto a node by cores and memory: the rules (pure), the one private hook of Prefect's worker,
and several jobs at once through the real server, node and Docker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.workers.base import BaseWorker

from leruli_prefect.storage.buckets import new_bucket_name
from leruli_prefect.worker import poll_window
from leruli_prefect.worker.packing import NodeCapacity
from tests import stack
from tests.stack import TEST_IMAGE
from tests.worker.conftest import NODE_CORES, NODE_MEMORY_MB
from tests.worker.node_stack import NodeUnderTest, state_history, timed
from tests.worker.private_hooks import assert_hook_still_used


def test_reserve_respects_cores_memory_and_slots() -> None:
    capacity = NodeCapacity(cores=4, memory_mb=1000, slots=3, cpu_ids=[0, 1, 2, 3])
    assert capacity.reserve("a", cores=2, memory_mb=400).cpuset == "0,1"
    assert capacity.reserve("b", cores=3, memory_mb=100) is None  # 2 cores left
    assert capacity.reserve("c", cores=1, memory_mb=700) is None  # 600 MB left
    assert capacity.reserve("d", cores=1, memory_mb=600).cpuset == "2"
    assert capacity.reserve("e", cores=1, memory_mb=0).cpuset == "3"
    assert capacity.reserve("f", cores=0, memory_mb=0) is None  # 3 slots used
    capacity.release("a")
    assert capacity.reserve("g", cores=2, memory_mb=400).cpuset == "0,1"  # a's CPUs, reused


def test_node_never_claims_more_than_itself() -> None:
    capacity = NodeCapacity(cores=2, memory_mb=1000, slots=2, cpu_ids=[0, 1])
    assert capacity.fits_node(cores=2, memory_mb=1000)
    assert not capacity.fits_node(cores=3, memory_mb=10)
    assert not capacity.fits_node(cores=1, memory_mb=1001)


def test_oversubscribed_node_uses_quotas_only() -> None:
    capacity = NodeCapacity(cores=8, memory_mb=1000, slots=2, cpu_ids=[0, 1])
    claim = capacity.reserve("a", cores=4, memory_mb=10)
    assert claim is not None and claim.cpuset is None


def test_release_all_but_frees_claims_no_longer_in_hand() -> None:
    capacity = NodeCapacity(cores=2, memory_mb=1000, slots=2, cpu_ids=[0, 1])
    capacity.reserve("kept", cores=1, memory_mb=1)
    capacity.reserve("refused", cores=1, memory_mb=1)
    assert capacity.release_all_but(["kept"]) == ["refused"]
    assert capacity.jobs == ["kept"]


def test_a_job_winding_down_frees_its_slot_but_stays_in_hand() -> None:
    capacity = NodeCapacity(cores=1, memory_mb=100, slots=1, cpu_ids=[0])
    capacity.reserve("ended", cores=1, memory_mb=100)
    assert not capacity.has_free_slot()
    capacity.wind_down("ended")
    assert capacity.has_free_slot() and capacity.holds("ended")
    assert capacity.reserve("next", cores=1, memory_mb=100).cpuset == "0"
    assert capacity.release_all_but(["next"]) == ["ended"]
    assert not capacity.holds("ended") and capacity.holds("next")


def test_the_private_hook_we_override_still_exists() -> None:
    # LeruliWorker filters the runs to claim in BaseWorker._get_scheduled_flow_runs (see its docstring);
    # if Prefect renames it, packing silently stops: this test fails first.
    assert_hook_still_used("_get_scheduled_flow_runs", ["self"], BaseWorker.get_and_submit_flow_runs)


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    return max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)


def test_jobs_run_side_by_side_on_their_own_cpus_and_never_beyond_the_cores(
    gamma_node: NodeUnderTest,
) -> None:
    command = timed("nproc > nproc.txt; grep Cpus_allowed_list /proc/self/status > cpus.txt; sleep 3")
    jobs = [gamma_node.submit(command, cores=1, memory_mb=200) for _ in range(3)]
    for job_id, _ in jobs:
        assert gamma_node.wait_final(job_id)["state"] == "Completed"

    spans = {bucket: gamma_node.container_span(bucket) for _, bucket in jobs}
    assert _most_at_once(list(spans.values())) == NODE_CORES
    for _, bucket in jobs:
        assert gamma_node.read(bucket, "nproc.txt") == "1\n"
    # The two that started first ran side by side (which two of three equal jobs: see worker/claim_order.py).
    started_first = sorted(jobs, key=lambda job: spans[job[1]][0])[:2]
    first_two = {gamma_node.read(bucket, "cpus.txt").split()[-1] for _, bucket in started_first}
    assert first_two == {"0", "1"}  # each on its own CPU


def test_memory_is_packed_too(gamma_node: NodeUnderTest) -> None:
    command = timed("sleep 2")
    jobs = [gamma_node.submit(command, cores=1, memory_mb=NODE_MEMORY_MB // 2 + 100) for _ in range(2)]
    for job_id, _ in jobs:
        assert gamma_node.wait_final(job_id)["state"] == "Completed"
    assert _most_at_once([gamma_node.container_span(bucket) for _, bucket in jobs]) == 1


def test_job_with_all_cores_sees_them_all(gamma_node: NodeUnderTest) -> None:
    job_id, bucket = gamma_node.submit("nproc > nproc.txt", cores=NODE_CORES)
    assert gamma_node.wait_final(job_id)["state"] == "Completed"
    assert gamma_node.read(bucket, "nproc.txt") == f"{NODE_CORES}\n"


def test_job_bigger_than_the_node_is_never_claimed(gamma_node: NodeUnderTest) -> None:
    big_id, _ = gamma_node.submit("true", cores=NODE_CORES + 1)
    huge_id, _ = gamma_node.submit("true", memory_mb=NODE_MEMORY_MB + 1)
    # A job submitted after them completes: the node polled and passed them by without claiming them.
    later_id, _ = gamma_node.submit("true")
    assert gamma_node.wait_final(later_id)["state"] == "Completed"
    for job_id in (big_id, huge_id):
        assert state_history(gamma_node.server, job_id) == ["SCHEDULED"]
        gamma_node.cancel(job_id, "CANCELLED")  # left for a bigger node that this test does not have


def test_a_small_job_behind_a_full_poll_window_of_too_big_ones_is_claimed(gamma_node: NodeUnderTest) -> None:
    # A node asks for the head of the queue only (`poll_window.WINDOW` runs); when none of them can ever be
    # its own, it must look further back rather than idle.
    too_big = {"image": TEST_IMAGE, "command": "true", "bucket": new_bucket_name(), "cores": NODE_CORES + 1}
    response = httpx.post(
        f"{gamma_node.server.url}/v1/jobs/batch",
        json={"jobs": [too_big] * (poll_window.WINDOW + 6)},
        headers={"Authorization": f"Bearer {gamma_node.group['api_secret']}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    big_ids = [job["id"] for job in response.json()["jobs"]]
    try:
        later_id, _ = gamma_node.submit("true")
        assert gamma_node.wait_final(later_id)["state"] == "Completed"
        assert {state_history(gamma_node.server, job_id)[-1] for job_id in big_ids[:3]} == {"SCHEDULED"}
        # What one poll is offered: the window, or the server's default page; an unknown pool, nothing.
        pool = gamma_node.group["work_pool"]
        assert len(asyncio.run(_offered(gamma_node.server, pool, poll_window.WINDOW))) == poll_window.WINDOW
        assert len(asyncio.run(_offered(gamma_node.server, pool, None))) == len(big_ids)
        assert asyncio.run(_offered(gamma_node.server, "leruli-no-such-pool", None)) == []
    finally:
        for job_id in big_ids:
            gamma_node.cancel(job_id, "CANCELLED")


async def _offered(server: stack.Server, pool: str, limit: int | None) -> list[object]:
    async with PrefectClient(f"{server.url}/prefect/api", api_key=server.operator_secret) as client:
        return await poll_window.scheduled_runs(
            client,
            work_pool_name=pool,
            work_queue_names=None,
            scheduled_before=datetime.now(UTC),
            limit=limit,
        )
