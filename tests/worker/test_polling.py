"""When a node asks for work: every run that fits is claimed from one poll, a freed slot is filled at once
rather than at the next poll, and from the runs the last poll offered (real server, node, Docker and S3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from leruli_prefect.job_spec import pool_name
from leruli_prefect.worker.kept_offers import KEPT_SECONDS
from tests import stack
from tests.worker.node_stack import NodeUnderTest, flow_run, prefect_api, timed

# So long that a run started by the node's second regular poll would be obvious (Prefect's jitter: ±30 %).
POLL_SECONDS = 60
EARLIEST_SECOND_POLL = POLL_SECONDS * 0.7
JOBS_FROM_ONE_POLL = 8


@pytest.fixture
def slow_polling_group(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> Iterator[NodeUnderTest]:
    """A group with jobs waiting, and (once `start` is called) a 2-slot node that polls once a minute."""
    group = server.init_group("slowpoll")
    config = stack.write_node_config(tmp_path / "slowpoll-node.toml", server=server, group=group, s3=s3_env)
    config.write_text(config.read_text() + f"poll_seconds = {POLL_SECONDS}\n")
    node = NodeUnderTest(server, group, s3_env, None, tmp_path / "slowpoll-node-data")  # type: ignore[arg-type]
    node.config = config  # type: ignore[attr-defined]
    yield node
    if node.process is not None:
        node.process.stop()


def _running_span(node: NodeUnderTest, job_id: str) -> tuple[float, float]:
    run = flow_run(node.server, job_id)
    start, end = (datetime.fromisoformat(str(run[key])).timestamp() for key in ("start_time", "end_time"))
    return start, end


def test_one_poll_claims_every_run_that_fits_and_a_freed_slot_is_filled_at_once(
    slow_polling_group: NodeUnderTest,
) -> None:
    node = slow_polling_group
    submitted = [node.submit(timed("sleep 2"), cores=1, memory_mb=64) for _ in range(3)]
    jobs = [job_id for job_id, _ in submitted]

    node.process = stack.start_node(node.config)  # type: ignore[attr-defined]
    started = time.time()  # the node's first poll has happened; its second is >= 42 s away
    for job_id in jobs:
        assert node.wait_final(job_id, timeout=EARLIEST_SECOND_POLL)["state"] == "Completed"

    spans = sorted(node.container_span(bucket) for _, bucket in submitted)
    (first_start, first_end), (second_start, second_end), (third_start, _) = spans
    # The first poll took two runs (both slots): they ran side by side.
    assert second_start < first_end
    # The third could only start when a slot freed; it did, long before a second poll could have come.
    assert third_start >= min(first_end, second_end)
    assert max(_running_span(node, job_id)[0] for job_id in jobs) < started + EARLIEST_SECOND_POLL
    # From the claim straight to Running: no Submitting state in between (one write less per job).
    assert _state_names(node, jobs[0]) == ["Scheduled", "Pending", "Running", "Completed"]


def _state_names(node: NodeUnderTest, job_id: str) -> list[str]:
    response = prefect_api(node.server, "GET", "/flow_run_states/", params={"flow_run_id": job_id})
    assert response.status_code == 200, response.text
    return [state["name"] for state in sorted(response.json(), key=lambda s: s["timestamp"])]


def test_a_slot_is_filled_when_the_container_ends_not_when_its_outputs_are_out(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    # One slot; the first job writes 300 MB, so its outputs take seconds to reach S3 after its container
    # has ended. The second job is claimed and runs meanwhile.
    group = server.init_group("winddown")
    config = stack.write_node_config(tmp_path / "wind.toml", server=server, group=group, s3=s3_env, slots=1)
    node = NodeUnderTest(server, group, s3_env, None, tmp_path / "wind-data")  # type: ignore[arg-type]
    big = node.submit("dd if=/dev/zero of=big.bin bs=1M count=300 status=none", cores=1, memory_mb=256)[0]
    small = node.submit("true", cores=1, memory_mb=64)[0]
    process = stack.start_node(config)
    try:
        assert node.wait_final(big, timeout=180)["state"] == "Completed"
        assert node.wait_final(small, timeout=60)["state"] == "Completed"
    finally:
        process.stop()
    _, big_end = _running_span(node, big)
    small_start, _ = _running_span(node, small)
    assert small_start < big_end


def test_a_busy_node_takes_its_next_jobs_from_one_poll(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    # One slot, regular polls once a minute: every job after the first is taken when the slot frees. The
    # runs the first poll offered are kept (`kept_offers`), so the node does not ask the server once per job.
    group = server.init_group("keptoffers")
    config = stack.write_node_config(tmp_path / "kept.toml", server=server, group=group, s3=s3_env, slots=1)
    config.write_text(config.read_text() + f"poll_seconds = {POLL_SECONDS}\n")
    node = NodeUnderTest(server, group, s3_env, None, tmp_path / "kept-data")  # type: ignore[arg-type]
    jobs = [node.submit("true", cores=1, memory_mb=64)[0] for _ in range(JOBS_FROM_ONE_POLL)]
    started = time.monotonic()
    process = stack.start_node(config)
    try:
        for job_id in jobs:
            assert node.wait_final(job_id, timeout=EARLIEST_SECOND_POLL)["state"] == "Completed"
        elapsed = time.monotonic() - started
    finally:
        process.stop()
    polls = server.process.log_text().count(f"/work_pools/{pool_name('keptoffers')}/get_scheduled_flow_runs ")
    # The start's poll, the one that finds nothing after the last job, one more for a poll under way, and
    # one per `KEPT_SECONDS` the jobs took (8 jobs: 2-3 s here, 3 polls in all). Without kept offers the
    # node asked once per job and more (10 here).
    assert 1 <= polls <= 3 + elapsed / KEPT_SECONDS, (polls, elapsed)
