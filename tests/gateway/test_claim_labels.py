"""A node's accepted claim labels its run with its holder in the same transaction (`claim_labels`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from leruli_prefect.attempts import HOLDER_LABEL, LOST_LABEL_PREFIX, WORKER_NAME_HEADER, attempt_of
from leruli_prefect.gateway.job_runs import WORKER_TYPE
from tests import stack

PENDING = {"state": {"type": "PENDING", "name": "Pending"}}


def _claim(server: stack.Server, group: dict[str, str], run_id: str, worker: str | None) -> httpx.Response:
    headers = stack.node_headers(group)
    if worker is not None:
        headers[WORKER_NAME_HEADER] = worker
    url = f"{server.url}/prefect/api/flow_runs/{run_id}/set_state"
    return httpx.post(url, headers=headers, json=PENDING, timeout=30)


def _run(server: stack.Server, run_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.operator_secret}"}
    response = httpx.get(f"{server.url}/prefect/api/flow_runs/{run_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@stack.on_both_databases
def test_an_accepted_claim_names_its_holder_before_the_node_hears_of_it(server: stack.Server) -> None:
    group = server.init_group(f"claim-{uuid.uuid4().hex[:8]}")
    run_id = stack.submit_unstaged_job(server, group)

    claimed = _claim(server, group, run_id, "node-a")
    assert claimed.status_code in (200, 201), claimed.text
    assert claimed.json()["status"] == "ACCEPT"
    run = _run(server, run_id)  # read right after the answer: no labels request of the node's in between
    assert run["state_type"] == "PENDING"
    assert run["labels"][HOLDER_LABEL] == "node-a"
    assert run["labels"]["prefect.worker.type"] == WORKER_TYPE
    assert run["labels"]["prefect.work-pool.name"] == run["work_pool_name"] == group["work_pool"]
    assert run["labels"]["prefect.work-pool.id"] == run["work_pool_id"]
    assert run["labels"]["prefect.flow.id"] == run["flow_id"]  # the run's own labels are kept

    # A second node's claim is not accepted (Pending only from Scheduled): the run stays the first node's.
    second = _claim(server, group, run_id, "node-b")
    assert second.status_code in (200, 201), second.text
    assert second.json()["status"] != "ACCEPT"
    assert _run(server, run_id)["labels"][HOLDER_LABEL] == "node-a"


def test_a_node_that_dies_right_after_its_claim_loses_the_job(server: stack.Server) -> None:
    # Before, the node labelled the run in a request of its own: dead in between, it left the run Pending
    # with no holder, which the lost-node sweeper never writes off.
    group = server.init_group(f"ghost-{uuid.uuid4().hex[:8]}")
    run_id = stack.submit_unstaged_job(server, group)
    heartbeat = httpx.post(
        f"{server.url}/prefect/api/work_pools/{group['work_pool']}/workers/heartbeat",
        headers=stack.node_headers(group),
        json={"name": "ghost", "heartbeat_interval_seconds": 1},
        timeout=30,
    )
    assert heartbeat.status_code < 300, heartbeat.text
    assert _claim(server, group, run_id, "ghost").json()["status"] == "ACCEPT"

    # 3 missed heartbeats of 1 s, then the next sweep (every 2 s): requeued as attempt 2.
    deadline = time.monotonic() + 60
    while (run := _run(server, run_id))["labels"].get(LOST_LABEL_PREFIX + "1") != "ghost":
        assert time.monotonic() < deadline, run["labels"]
        time.sleep(0.5)
    assert attempt_of(run["labels"]) == 2


def test_a_claim_without_a_worker_name_is_answered_but_not_labelled(server: stack.Server) -> None:
    # A group of its own: a live node of a shared group could claim the job before this test does.
    group = server.init_group(f"nameless-{uuid.uuid4().hex[:8]}")
    run_id = stack.submit_unstaged_job(server, group)
    claimed = _claim(server, group, run_id, None)
    assert claimed.json()["status"] == "ACCEPT"
    assert HOLDER_LABEL not in _run(server, run_id)["labels"]
