"""A node's proposed state is orchestrated in the gateway's process and answered as Prefect answers it
(`gateway/node_states.py`)."""

from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy.exc

from leruli_prefect.attempts import WORKER_NAME_HEADER
from leruli_prefect.gateway import node_states, prefect_writes
from leruli_prefect.gateway.asgi import Refused
from tests import stack

RUN_ID = uuid.UUID(int=1)
CLIENT = {"x-prefect-api-version": "0.8.4", "user-agent": "prefect/3.9.1 (API 0.8.4)"}


def _propose(
    server: stack.Server, run_id: str, state: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    url = f"{server.url}/prefect/api/flow_runs/{run_id}/set_state"
    return httpx.post(url, headers=headers, json={"state": state, "force": False}, timeout=30)


def _shape(value: Any) -> Any:
    """The keys of a JSON answer, nested; values left out (ids and times differ from run to run)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


@stack.on_both_databases
def test_a_nodes_proposals_are_orchestrated_and_answered_as_prefect_answers(server: stack.Server) -> None:
    group = server.init_group(f"states-{uuid.uuid4().hex[:8]}")
    node = {**stack.node_headers(group), WORKER_NAME_HEADER: "node-a", **CLIENT}
    operator = {"Authorization": f"Bearer {server.operator_secret}", **CLIENT}
    ours, prefects = stack.submit_unstaged_job(server, group), stack.submit_unstaged_job(server, group)

    for state_type in ("PENDING", "RUNNING", "COMPLETED"):
        by_gateway = _propose(server, ours, {"type": state_type}, node)
        by_prefect = _propose(server, prefects, {"type": state_type}, operator)  # operators reach Prefect
        assert by_gateway.status_code == by_prefect.status_code == 201, (by_gateway.text, by_prefect.text)
        assert by_gateway.json()["status"] == "ACCEPT"
        assert _shape(by_gateway.json()) == _shape(by_prefect.json())
        assert by_gateway.json()["state"]["type"] == state_type

    run = httpx.get(f"{server.url}/prefect/api/flow_runs/{ours}", headers=operator, timeout=30).json()
    assert run["state_type"] == "COMPLETED"
    # Prefect's global policy ran: it keeps a run's start and end times and counts its runs.
    assert run["start_time"] is not None and run["end_time"] is not None
    assert run["run_count"] == 1
    # Its state-change events reach Prefect's event store, as the UI and automations read them.
    assert _state_events(server, ours, operator) == [
        "prefect.flow-run.Scheduled",
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.Completed",
    ]


def _state_events(server: stack.Server, run_id: str, headers: dict[str, str]) -> list[str]:
    body = {"filter": {"any_resource": {"id": [f"prefect.flow-run.{run_id}"]}, "order": "ASC"}}
    names: list[str] = []
    deadline = time.monotonic() + 30
    while len(names) < 4 and time.monotonic() < deadline:  # the persister writes them in the background
        time.sleep(0.5)
        response = httpx.post(
            f"{server.url}/prefect/api/events/filter", headers=headers, json=body, timeout=30
        )
        assert response.status_code == 200, response.text
        names = [event["event"] for event in response.json()["events"]]
    return names


def test_a_transition_prefect_refuses_is_refused_here_too(server: stack.Server) -> None:
    # A group of its own: a node of a shared group (alpha) would claim these jobs first.
    group = server.init_group(f"refused-{uuid.uuid4().hex[:8]}")
    node = {**stack.node_headers(group), WORKER_NAME_HEADER: "node-a", **CLIENT}
    operator = {"Authorization": f"Bearer {server.operator_secret}", **CLIENT}
    ours, prefects = stack.submit_unstaged_job(server, group), stack.submit_unstaged_job(server, group)
    answers = {}
    for run_id, headers in ((ours, node), (prefects, operator)):
        answers[run_id] = [
            _propose(server, run_id, {"type": state_type}, headers).json()["status"]
            for state_type in ("PENDING", "RUNNING", "PENDING")
        ]
    # Prefect's core policy: a running run is not claimed again.
    assert answers[ours] == answers[prefects] == ["ACCEPT", "ACCEPT", "ABORT"]


def test_a_cancelling_or_unreadable_proposal_is_left_to_prefect() -> None:
    def parse(body: bytes, headers: dict[str, str] = CLIENT) -> node_states.Proposal | None:
        return node_states.parse(RUN_ID, body, headers)

    assert parse(b'{"state": {"type": "CANCELLING"}}') is None  # Prefect also schedules its timeout check
    assert parse(b'{"state": {"type": "NOT_A_STATE"}}') is None
    assert parse(b'{"state": {"type": "RUNNING"}, "force": "yes"}') is None
    assert parse(b'{"force": true}') is None
    assert parse(b"not json") is None
    assert parse(b'{"state": {"type": "RUNNING"}}', {"x-prefect-api-version": "1.2"}) is None

    proposal = parse(b'{"state": {"type": "COMPLETED", "name": "Done"}, "force": true}')
    assert proposal is not None
    assert (proposal.state.type.value, proposal.state.name, proposal.force) == ("COMPLETED", "Done", True)
    assert str(proposal.api_version) == "0.8.4"
    assert proposal.client_version == "3.9.1"
    assert proposal.holder is None
    held = parse(b'{"state": {"type": "RUNNING"}}', {**CLIENT, WORKER_NAME_HEADER: "node-a"})
    assert held is not None and held.holder == "node-a"


def _busy() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))


@pytest.mark.anyio
async def test_a_busy_database_is_retried_then_answered_503(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def busy_twice(proposal: node_states.Proposal) -> node_states.Answer:
        calls.append(1)
        if len(calls) <= 2:
            raise _busy()
        return node_states.Answer(201, b"{}")

    async def always_busy(proposal: node_states.Proposal) -> node_states.Answer:
        raise _busy()

    monkeypatch.setattr(prefect_writes, "BUSY_RETRIES", 3)
    monkeypatch.setattr(node_states, "busy_pause", _no_wait)
    proposal = node_states.parse(RUN_ID, b'{"state": {"type": "RUNNING"}}', CLIENT)
    assert proposal is not None

    monkeypatch.setattr(node_states, "_orchestrate", busy_twice)
    assert await node_states.propose(proposal, lock=None) == node_states.Answer(201, b"{}")
    assert len(calls) == 3

    monkeypatch.setattr(node_states, "_orchestrate", always_busy)
    answer = await node_states.propose(proposal, lock=None)
    assert answer.status == 503


@pytest.mark.anyio
async def test_any_other_failure_is_answered_500_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    async def broken(proposal: node_states.Proposal) -> node_states.Answer:
        calls.append(1)
        raise RuntimeError("a bug")

    monkeypatch.setattr(node_states, "_orchestrate", broken)
    proposal = node_states.parse(RUN_ID, b'{"state": {"type": "RUNNING"}}', CLIENT)
    assert proposal is not None
    answer = await node_states.propose(proposal, lock=None)
    assert (answer.status, len(calls)) == (500, 1)


@pytest.mark.anyio
async def test_a_fenced_off_proposal_is_refused_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fenced(proposal: node_states.Proposal) -> node_states.Answer:
        raise Refused(409, "node node-a lost this job; attempt 2 holds it")

    monkeypatch.setattr(node_states, "_orchestrate", fenced)
    proposal = node_states.parse(RUN_ID, b'{"state": {"type": "COMPLETED"}}', CLIENT)
    assert proposal is not None
    with pytest.raises(Refused) as refused:  # the guard answers it, and audits it
        await node_states.propose(proposal, lock=None)
    assert refused.value.status == 409


async def _no_wait(_: float) -> None:
    return None
