"""When a node asks for work: every run that fits is claimed from one poll, and a freed slot is filled at once
rather than at the next poll (real server, node, Docker and S3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests import stack
from tests.worker.node_stack import NodeUnderTest, flow_run, prefect_api

# So long that a run started by the node's second regular poll would be obvious (Prefect's jitter: ±30 %).
POLL_SECONDS = 60
EARLIEST_SECOND_POLL = POLL_SECONDS * 0.7


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
    jobs = [node.submit("sleep 2", cores=1, memory_mb=64)[0] for _ in range(3)]

    node.process = stack.start_node(node.config)  # type: ignore[attr-defined]
    started = time.time()  # the node's first poll has happened; its second is >= 42 s away
    for job_id in jobs:
        assert node.wait_final(job_id, timeout=EARLIEST_SECOND_POLL)["state"] == "Completed"

    spans = sorted(_running_span(node, job_id) for job_id in jobs)
    (first_start, first_end), (second_start, second_end), (third_start, _) = spans
    # The first poll took two runs (both slots): they ran side by side.
    assert second_start < first_end
    # The third could only start when a slot freed; it did, long before a second poll could have come.
    assert third_start >= min(first_end, second_end) - 1
    assert third_start < started + EARLIEST_SECOND_POLL
    # From the claim straight to Running: no Submitting state in between (one write less per job).
    assert _state_names(node, jobs[0]) == ["Scheduled", "Pending", "Running", "Completed"]


def _state_names(node: NodeUnderTest, job_id: str) -> list[str]:
    response = prefect_api(node.server, "GET", "/flow_run_states/", params={"flow_run_id": job_id})
    assert response.status_code == 200, response.text
    return [state["name"] for state in sorted(response.json(), key=lambda s: s["timestamp"])]
