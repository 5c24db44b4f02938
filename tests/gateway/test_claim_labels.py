"""A node's accepted claim labels its run with its holder in the same request (`gateway/claim_labels.py`)."""

from __future__ import annotations

import gzip
import time
import uuid
from typing import Any

import httpx
import pytest

from leruli_prefect.attempts import HOLDER_LABEL, LOST_LABEL_PREFIX, WORKER_NAME_HEADER, attempt_of
from leruli_prefect.gateway.claim_labels import is_accepted, labelling_when_accepted
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


def test_a_claim_without_a_worker_name_is_answered_but_not_labelled(
    server: stack.Server, alpha: dict[str, str]
) -> None:
    run_id = stack.submit_unstaged_job(server, alpha)
    claimed = _claim(server, alpha, run_id, None)
    assert claimed.json()["status"] == "ACCEPT"
    assert HOLDER_LABEL not in _run(server, run_id)["labels"]


@pytest.mark.parametrize(
    ("status", "body", "accepted"),
    [
        (201, b'{"status": "ACCEPT", "state": {}}', True),
        (200, b'{"status": "ACCEPT"}', True),
        (200, b'{"status": "REJECT"}', False),
        (200, b'{"status": "ABORT"}', False),
        (409, b'{"status": "ACCEPT"}', False),
        (200, b"not json", False),
        (200, b'["ACCEPT"]', False),
    ],
)
def test_only_an_accepted_state_counts(status: int, body: bytes, accepted: bool) -> None:
    assert is_accepted(_Answer(status, body).messages[0], body) is accepted


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (gzip.compress(b'{"status": "ACCEPT"}'), True),
        (gzip.compress(b'{"status": "ABORT"}'), False),
        (b"not gzip", False),
    ],
)
def test_a_gzipped_answer_is_read(body: bytes, accepted: bool) -> None:
    start = {"type": "http.response.start", "status": 201, "headers": [(b"content-encoding", b"gzip")]}
    assert is_accepted(start, body) is accepted


class _Answer:
    """Prefect's answer as ASGI messages (its start, then the body in `chunks`), passed through the labelling
    send; what went out, and how many messages had gone out when the labels were written."""

    def __init__(self, status: int, *chunks: bytes) -> None:
        body = [{"type": "http.response.body", "body": chunk, "more_body": True} for chunk in chunks]
        body[-1]["more_body"] = False
        self.messages = [{"type": "http.response.start", "status": status, "headers": []}, *body]
        self.sent: list[dict[str, Any]] = []
        self.labelled: list[int] = []

    async def pass_through(self, *, label_fails: bool = False) -> None:
        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        async def label() -> None:
            if label_fails:
                raise RuntimeError("database away")
            self.labelled.append(len(self.sent))

        labelling = labelling_when_accepted(send, label)
        for message in self.messages:
            await labelling(message)


@pytest.mark.anyio
async def test_the_answer_waits_for_the_labels_and_is_passed_whole() -> None:
    answer = _Answer(201, b'{"status": "AC', b'CEPT"}')
    await answer.pass_through()
    assert answer.labelled == [0]  # nothing of the answer went out before the labels were written
    assert answer.sent == answer.messages


@pytest.mark.anyio
async def test_a_refused_claim_writes_no_labels() -> None:
    answer = _Answer(200, b'{"status": "ABORT"}')
    await answer.pass_through()
    assert answer.labelled == []
    assert answer.sent == answer.messages


@pytest.mark.anyio
async def test_a_failed_label_write_still_answers_the_node() -> None:
    answer = _Answer(201, b'{"status": "ACCEPT"}')
    await answer.pass_through(label_fails=True)
    assert answer.sent == answer.messages
