"""Cancelling jobs through the real server, node, Docker and S3: running jobs stop at once and keep their
outputs; queued jobs never start."""

from __future__ import annotations

import time

import docker
import docker.errors

from tests.stack import on_both_databases
from tests.worker.conftest import NODE_CORES, NODE_MEMORY_MB
from tests.worker.node_stack import (
    NodeUnderTest,
    state_history,
    wait_for_container,
    wait_for_output,
    wait_until_gone,
)

# The deadline from the cancel to the container's end.
CANCEL_DEADLINE_S = 2.0


def _seconds_until_stopped(container: docker.models.containers.Container, since: float) -> float:
    while True:
        try:
            container.reload()
        except docker.errors.NotFound:
            break
        if container.status != "running":
            break
        time.sleep(0.02)
    return time.monotonic() - since


@on_both_databases
def test_running_job_stops_within_deadline_and_keeps_its_outputs(
    gamma_node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    job_id, bucket = gamma_node.submit("echo started; echo partial > partial.txt; sleep 120")
    container = wait_for_container(engine, job_id)
    wait_for_output(gamma_node.run_dir(job_id) / "partial.txt", timeout=30)

    asked = time.monotonic()
    response = gamma_node.cancel(job_id)
    assert response.json()["status"] == "ACCEPT", response.text
    stopped_after = _seconds_until_stopped(container, asked)
    print(f"cancel-to-stopped: {stopped_after:.3f} s")

    job = gamma_node.wait_final(job_id, timeout=30)
    assert (job["state"], job["reason"]) == ("Cancelled", None)
    assert stopped_after < CANCEL_DEADLINE_S
    assert {"partial.txt", "joblog.txt", "joberr.txt"} <= gamma_node.keys(bucket)
    assert gamma_node.read(bucket, "partial.txt") == "partial\n"
    assert gamma_node.read(bucket, "joblog.txt") == "started\n"
    # The run dir is deleted while the final state goes out: gone moments after it, at the latest.
    wait_until_gone(gamma_node.run_dir(job_id), "the cancelled job's run dir", timeout=10)


@on_both_databases
def test_queued_job_that_is_cancelled_never_starts(
    gamma_node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    # The blocker holds all the node's memory, so the next job waits in the queue.
    blocker_id, _ = gamma_node.submit("sleep 120", memory_mb=NODE_MEMORY_MB)
    wait_for_container(engine, blocker_id)
    queued_id, queued_bucket = gamma_node.submit("echo ran > ran.txt")
    time.sleep(2)  # a couple of the node's polls: it sees the job and must leave it
    assert gamma_node.job(queued_id)["state"] == "Scheduled"

    assert gamma_node.cancel(queued_id, "CANCELLED").json()["status"] == "ACCEPT"
    gamma_node.cancel(blocker_id)
    assert gamma_node.wait_final(blocker_id, timeout=30)["state"] == "Cancelled"
    # A job submitted after the cancel runs: the node has polled since and passed the cancelled one by.
    later_id, _ = gamma_node.submit("true")
    assert gamma_node.wait_final(later_id)["state"] == "Completed"

    assert gamma_node.job(queued_id)["state"] == "Cancelled"
    assert state_history(gamma_node.server, queued_id) == ["SCHEDULED", "CANCELLED"]
    assert gamma_node.keys(queued_bucket) == {"run.tgz"}


def test_a_node_watches_all_its_running_jobs_with_one_read_a_round(
    gamma_node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    jobs = [gamma_node.submit("sleep 120", memory_mb=256)[0] for _ in range(NODE_CORES)]  # 1 core each
    containers = [wait_for_container(engine, job_id) for job_id in jobs]
    log_start = len(gamma_node.server.process.log_text())
    time.sleep(3)
    requests = gamma_node.server.process.log_text()[log_start:]
    # Twice a second for the node (`cancel_poll_seconds`), however many jobs it runs.
    assert 3 <= requests.count("POST /v1/node/runs") <= 9, requests[-2000:]
    assert "GET /prefect/api/flow_runs/" not in requests

    asked = time.monotonic()
    for job_id in jobs:
        assert gamma_node.cancel(job_id).json()["status"] == "ACCEPT"
    for container in containers:
        assert _seconds_until_stopped(container, asked) < CANCEL_DEADLINE_S
    assert {gamma_node.wait_final(job_id, timeout=30)["state"] for job_id in jobs} == {"Cancelled"}
