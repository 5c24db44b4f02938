"""Runs made by the bulk path (which POST /v1/jobs uses too) read back through Prefect's own API exactly like
runs made by Prefect's own `create_flow_run_from_deployment`."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from leruli_prefect.job_spec import FLOW_NAME, JobSpec, deployment_name, owner_tag
from tests import stack
from tests.stack import on_both_databases

GROUP = "bulkeq"

SPEC = {
    "image": "leruli-busybox:1.0",
    "command": "true",
    "cores": 1,
    "memory_mb": 100,
    "bucket": "leruli-" + "f" * 32,
}
# What differs between any two runs however they were made.
VOLATILE = {
    "id",
    "name",
    "created",
    "updated",
    "state_id",
    "expected_start_time",
    "next_scheduled_start_time",
    "estimated_start_time_delta",
    "idempotency_key",
    "state",
}


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def group(server: stack.Server) -> dict[str, str]:
    return server.init_group(GROUP)


def _prefect(server: stack.Server, method: str, path: str, body: object = None) -> Any:
    response = httpx.request(
        method, f"{server.url}/prefect/api{path}", headers=_bearer(server.operator_secret), json=body
    )
    assert response.status_code < 300, response.text
    return response.json()


def _made_by_prefect(server: stack.Server) -> str:
    """A run of the group's deployment made by Prefect's own API, as POST /v1/jobs once made them."""
    deployment = _prefect(server, "GET", f"/deployments/name/{FLOW_NAME}/{deployment_name(GROUP)}")
    body = {"parameters": JobSpec.model_validate(SPEC).model_dump(mode="json"), "tags": [owner_tag("admin")]}
    return _prefect(server, "POST", f"/deployments/{deployment['id']}/create_flow_run", body)["id"]


def _submit_one(server: stack.Server, group: dict[str, str]) -> str:
    response = httpx.post(f"{server.url}/v1/jobs", headers=_bearer(group["api_secret"]), json=SPEC)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _submit_batch(
    server: stack.Server, group: dict[str, str], keys: list[str | None]
) -> list[dict[str, Any]]:
    jobs = [{**SPEC, "idempotency_key": key} for key in keys]
    response = httpx.post(
        f"{server.url}/v1/jobs/batch", headers=_bearer(group["api_secret"]), json={"jobs": jobs}
    )
    assert response.status_code == 201, response.text
    return response.json()["jobs"]


def _stable(run: dict[str, Any]) -> dict[str, Any]:
    stable = {key: value for key, value in run.items() if key not in VOLATILE}
    stable["tags"] = sorted(stable["tags"])  # Prefect makes them from a set: their order means nothing
    return stable


def _state_shape(state: dict[str, Any]) -> dict[str, Any]:
    details = {k: v for k, v in state["state_details"].items() if k not in ("scheduled_time", "flow_run_id")}
    return {"type": state["type"], "name": state["name"], "message": state["message"], "details": details}


@on_both_databases
def test_bulk_runs_equal_runs_made_by_prefect(server: stack.Server, group: dict[str, str]) -> None:
    reference_id = _made_by_prefect(server)
    bulk_ids = [job["id"] for job in _submit_batch(server, group, [None, None, None])]
    bulk_ids.append(_submit_one(server, group))
    reference = _prefect(server, "GET", f"/flow_runs/{reference_id}")

    for run_id in bulk_ids:
        run = _prefect(server, "GET", f"/flow_runs/{run_id}")
        assert _stable(run) == _stable(reference)
        assert _state_shape(run["state"]) == _state_shape(reference["state"])
        assert run["state"]["state_details"]["flow_run_id"] == run_id
        assert run["state_id"] == run["state"]["id"]
        assert (
            run["expected_start_time"]
            == run["next_scheduled_start_time"]
            == run["state"]["state_details"]["scheduled_time"]
        )
        states = _prefect(server, "GET", f"/flow_run_states/?flow_run_id={run_id}")
        assert [s["type"] for s in states] == ["SCHEDULED"]

    # What workers and the UI ask for finds them like the reference.
    pool = group["work_pool"]
    scheduled = _prefect(server, "POST", f"/work_pools/{pool}/get_scheduled_flow_runs", {})
    assert {reference_id, *bulk_ids} <= {entry["flow_run"]["id"] for entry in scheduled}
    listed = _prefect(server, "POST", "/flow_runs/filter", {"work_pools": {"name": {"any_": [pool]}}})
    assert {reference_id, *bulk_ids} <= {run["id"] for run in listed}
    counted = _prefect(server, "POST", "/flow_runs/count", {"work_pools": {"name": {"any_": [pool]}}})
    assert counted == len(listed)


def _scheduled_events(server: stack.Server, run_id: str) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": ["prefect.flow-run.Scheduled"]},
            "resource": {"id": [f"prefect.flow-run.{run_id}"]},
        }
    }
    return _prefect(server, "POST", "/events/filter", body)["events"]


@on_both_databases
def test_bulk_runs_emit_the_same_events(server: stack.Server, group: dict[str, str]) -> None:
    reference_id = _made_by_prefect(server)
    bulk_ids = [job["id"] for job in _submit_batch(server, group, [None, None])]
    bulk_ids.append(_submit_one(server, group))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the event persister writes events in the background
        reference = _scheduled_events(server, reference_id)
        bulk = {run_id: _scheduled_events(server, run_id) for run_id in bulk_ids}
        if reference and all(bulk.values()):
            break
        time.sleep(0.5)
    assert len(reference) == 1
    ref = reference[0]
    for bulk_id, events in bulk.items():
        assert len(events) == 1
        got = events[0]
        assert got["related"] == ref["related"]
        assert got["payload"] == ref["payload"]
        assert got["payload"]["intended"] == {"from": None, "to": "SCHEDULED"}
        assert set(got["resource"]) == set(ref["resource"])
        assert got["resource"]["prefect.resource.id"] == f"prefect.flow-run.{bulk_id}"
        run = _prefect(server, "GET", f"/flow_runs/{bulk_id}")
        assert got["resource"]["prefect.resource.name"] == run["name"]
        assert got["id"] == run["state"]["id"]  # like Prefect's, the event's id is the state's
        assert _same_instant(got["occurred"], run["state"]["timestamp"])
        assert _same_instant(got["resource"]["prefect.state-timestamp"], run["state"]["timestamp"])


def _same_instant(one: str, other: str) -> bool:
    return datetime.fromisoformat(one) == datetime.fromisoformat(other)


@on_both_databases
def test_one_submission_answers_the_job_as_it_reads_back(server: stack.Server, group: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}/v1/jobs", headers=_bearer(group["api_secret"]), json=SPEC)
    assert response.status_code == 201, response.text
    created = response.json()
    read = httpx.get(f"{server.url}/v1/jobs/{created['id']}", headers=_bearer(group["api_secret"])).json()
    assert created == read
    assert (created["state"], created["owner"], created["image"]) == ("Scheduled", "admin", SPEC["image"])


@on_both_databases
def test_idempotency_keys_answer_the_first_job_and_stay_in_their_group(
    server: stack.Server, group: dict[str, str]
) -> None:
    first = _submit_batch(server, group, ["dir-a", "dir-b", "dir-a"])
    assert [job["existed"] for job in first] == [False, False, True]
    assert first[0]["id"] == first[2]["id"] and first[0]["id"] != first[1]["id"]
    again = _submit_batch(server, group, ["dir-b", "dir-c"])
    assert again[0] == {**first[1], "existed": True}
    assert again[1]["existed"] is False
    single = httpx.post(
        f"{server.url}/v1/jobs",
        headers=_bearer(group["api_secret"]),
        json={**SPEC, "idempotency_key": "dir-a"},
    )
    assert single.json()["id"] == first[0]["id"]

    other = server.init_group("bulkeq-other")
    theirs = _submit_batch(server, other, ["dir-a"])[0]
    assert theirs["existed"] is False and theirs["id"] != first[0]["id"]


def test_batch_input_is_validated_whole(server: stack.Server, group: dict[str, str]) -> None:
    bad = [SPEC, {**SPEC, "image": "no version"}]
    response = httpx.post(
        f"{server.url}/v1/jobs/batch", headers=_bearer(group["api_secret"]), json={"jobs": bad}
    )
    assert response.status_code == 422
    assert "jobs.1.image" in str(response.json()["detail"]) or "image" in str(response.json()["detail"])
    token = httpx.post(
        f"{server.url}/v1/jobs/batch", headers=_bearer(group["group_token"]), json={"jobs": [SPEC]}
    )
    assert token.status_code == 403
