"""`POST /v1/node/runs`: what a node watches of the runs it holds, through a real server."""

from __future__ import annotations

import uuid

import httpx
import pytest

from leruli_prefect.job_spec import CANCEL_TAG
from tests import stack


def _node(group: dict[str, str]) -> dict[str, str]:
    return {"X-Leruli-Group-Token": group["group_token"], "X-Leruli-Compute-Secret": group["compute_secret"]}


def _watch(server: stack.Server, group: dict[str, str], ids: list[str]) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/node/runs", headers=_node(group), json={"ids": ids}, timeout=30)


@stack.on_both_databases
def test_a_node_reads_its_groups_runs_with_their_cancel(server: stack.Server) -> None:
    mine = server.init_group(f"watch-{uuid.uuid4().hex[:8]}")
    other = server.init_group(f"watch-{uuid.uuid4().hex[:8]}")
    queued, cancelled, elsewhere = (
        stack.submit_unstaged_job(server, mine),
        stack.submit_unstaged_job(server, mine),
        stack.submit_unstaged_job(server, other),
    )
    cancel = httpx.post(
        f"{server.url}/v1/jobs/{cancelled}/cancel",
        headers={"Authorization": f"Bearer {mine['api_secret']}"},
        timeout=30,
    )
    assert cancel.status_code == 200, cancel.text

    response = _watch(server, mine, [queued, cancelled, elsewhere, str(uuid.uuid4())])
    assert response.status_code == 200, response.text
    runs = {run["id"]: run for run in response.json()["runs"]}
    assert set(runs) == {queued, cancelled}  # another group's run and a missing one are left out alike
    assert runs[queued]["state_type"] == "SCHEDULED"
    assert CANCEL_TAG not in runs[queued]["tags"]
    assert runs[cancelled]["state_type"] == "CANCELLED"
    assert CANCEL_TAG in runs[cancelled]["tags"]
    assert "cancel" in (runs[cancelled]["state_message"] or "").lower()


@pytest.mark.parametrize(
    "body", [{"ids": []}, {"ids": ["not-a-uuid"]}, {"ids": [str(uuid.uuid4())] * 1001}, {}, []]
)
def test_a_bad_watch_gets_a_clear_422(server: stack.Server, alpha: dict[str, str], body: object) -> None:
    response = httpx.post(f"{server.url}/v1/node/runs", headers=_node(alpha), json=body, timeout=30)
    assert response.status_code == 422
    assert "detail" in response.json()
