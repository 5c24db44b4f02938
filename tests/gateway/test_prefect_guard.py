"""The door in front of the Prefect API, through a real server: who gets through, to what."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests import stack


def _node(group: dict[str, str], token_of: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "X-Leruli-Group-Token": (token_of or group)["group_token"],
        "X-Leruli-Compute-Secret": group["compute_secret"],
    }


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def beta_run_id(server: stack.Server, beta: dict[str, str]) -> str:
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "a" * 32}
    response = httpx.post(f"{server.url}/v1/jobs", headers=_bearer(beta["api_secret"]), json=spec)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_nodes_reach_their_own_pool_only(
    server: stack.Server, alpha: dict[str, str], beta: dict[str, str]
) -> None:
    api = f"{server.url}/prefect/api"
    assert httpx.get(f"{api}/work_pools/leruli-alpha", headers=_node(alpha)).status_code == 200
    assert httpx.get(f"{api}/work_pools/leruli-beta", headers=_node(alpha)).status_code == 404
    scheduled = httpx.post(
        f"{api}/work_pools/leruli-beta/get_scheduled_flow_runs", headers=_node(alpha), json={}
    )
    assert scheduled.status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/block_documents/filter"),
        ("POST", "/variables/filter"),
        ("POST", "/flow_runs/filter"),
        ("POST", "/deployments/filter"),
        ("DELETE", "/work_pools/leruli-alpha"),
        ("PATCH", "/work_pools/leruli-alpha"),
    ],
)
def test_nodes_are_refused_everything_else(
    server: stack.Server, alpha: dict[str, str], method: str, path: str
) -> None:
    response = httpx.request(method, f"{server.url}/prefect/api{path}", headers=_node(alpha), json={})
    assert response.status_code == 403
    assert "compute nodes may not call" in response.json()["detail"]


def test_nodes_cannot_touch_another_groups_flow_runs(
    server: stack.Server, alpha: dict[str, str], beta_run_id: str
) -> None:
    api = f"{server.url}/prefect/api"
    assert httpx.get(f"{api}/flow_runs/{beta_run_id}", headers=_node(alpha)).status_code == 404
    state = {"state": {"type": "RUNNING", "name": "Running"}}
    assert (
        httpx.post(f"{api}/flow_runs/{beta_run_id}/set_state", headers=_node(alpha), json=state).status_code
        == 404
    )
    logs = [
        {
            "name": "x",
            "level": 20,
            "message": "forged",
            "timestamp": "2026-01-01T00:00:00Z",
            "flow_run_id": beta_run_id,
        }
    ]
    assert httpx.post(f"{api}/logs/", headers=_node(alpha), json=logs).status_code == 404
    assert httpx.get(f"{api}/flow_runs/{uuid.uuid4()}", headers=_node(alpha)).status_code == 404


def test_who_is_refused(server: stack.Server, alpha: dict[str, str], beta: dict[str, str]) -> None:
    pool = f"{server.url}/prefect/api/work_pools/leruli-alpha"
    assert httpx.get(pool).status_code == 401
    assert httpx.get(pool, headers=_node(alpha, token_of=beta)).status_code == 401
    assert (
        httpx.get(pool, headers={**_node(alpha), "X-Leruli-Compute-Secret": "lq_compute_nope"}).status_code
        == 401
    )
    assert httpx.get(pool, headers=_bearer(alpha["api_secret"])).status_code == 403
    assert httpx.get(pool, headers=_bearer(alpha["group_token"])).status_code == 403
    assert httpx.get(pool, headers=_bearer(server.operator_secret)).status_code == 200
    assert (
        httpx.get(pool, auth=(server.operator_secret, "")).status_code == 401
    )  # Basic of "secret:" is not it
    # Nothing reaches Prefect around the guard.
    assert httpx.get(f"{server.url}/api/work_pools/leruli-alpha", headers=_node(alpha)).status_code == 404
    assert httpx.get(f"{server.url}/api/health").status_code == 404


def test_operator_signs_in_to_the_ui_with_basic_auth(server: stack.Server) -> None:
    import base64

    settings = httpx.get(f"{server.url}/prefect/ui-settings").json()
    assert settings["auth"] == "BASIC"
    assert settings["api_url"] == f"{server.url}/prefect/api"
    basic = base64.b64encode(server.operator_secret.encode()).decode()
    assert (
        httpx.get(
            f"{server.url}/prefect/api/admin/version", headers={"Authorization": f"Basic {basic}"}
        ).status_code
        == 200
    )
    assert httpx.get(f"{server.url}/prefect/").status_code == 200


async def _websocket_handshake(url: str, headers: dict[str, str]) -> dict[str, object]:
    async with websockets.connect(
        url, additional_headers=headers, subprotocols=["prefect"], open_timeout=10
    ) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "the node does not know the server's secret"}))
        return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


def test_node_websockets_are_guarded_too(
    server: stack.Server, alpha: dict[str, str], beta: dict[str, str]
) -> None:
    ws_api = server.url.replace("http://", "ws://") + "/prefect/api"
    reply = asyncio.run(
        _websocket_handshake(f"{ws_api}/work_pools/leruli-alpha/workers/connect", _node(alpha))
    )
    assert reply["type"] == "auth_success"
    for url, headers in (
        (f"{ws_api}/work_pools/leruli-beta/workers/connect", _node(alpha)),
        (f"{ws_api}/events/out", _node(alpha)),
        (f"{ws_api}/work_pools/leruli-alpha/workers/connect", _node(alpha, token_of=beta)),
    ):
        with pytest.raises(websockets.exceptions.InvalidStatus):
            asyncio.run(_websocket_handshake(url, headers))


async def _open_then_rotate(server: stack.Server, group: dict[str, str]) -> tuple[int | None, float]:
    """Open a node websocket, rotate the compute secret, and time how long until the socket is closed."""
    import time

    url = (
        server.url.replace("http://", "ws://")
        + f"/prefect/api/work_pools/{group['work_pool']}/workers/connect"
    )
    async with websockets.connect(url, additional_headers=_node(group), subprotocols=["prefect"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "x"}))
        assert json.loads(await ws.recv())["type"] == "auth_success"
        async with httpx.AsyncClient() as client:
            rotated = await client.post(
                f"{server.url}/v1/compute-secret", headers=_bearer(group["api_secret"])
            )
        assert rotated.status_code == 200
        started = time.monotonic()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), timeout=5)
        return ws.close_code, time.monotonic() - started


def test_rotation_closes_open_node_websockets(server: stack.Server) -> None:
    group = server.init_group("sockets")
    code, seconds = asyncio.run(_open_then_rotate(server, group))
    assert code == 1008
    assert seconds < 1
    refused = httpx.get(f"{server.url}/prefect/api/work_pools/{group['work_pool']}", headers=_node(group))
    assert refused.status_code == 401


def test_a_node_may_reference_its_own_groups_result_storage_only(
    server: stack.Server, alpha: dict[str, str], beta: dict[str, str]
) -> None:
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "c" * 32}
    run_id = httpx.post(f"{server.url}/v1/jobs", headers=_bearer(beta["api_secret"]), json=spec).json()["id"]
    # The first call per group registers Prefect's S3Bucket block: slow on a loaded machine.
    storage = {
        name: httpx.get(f"{server.url}/v1/results/storage", headers=_node(group), timeout=60).json()
        for name, group in (("alpha", alpha), ("beta", beta))
    }
    assert storage["alpha"]["bucket"] != storage["beta"]["bucket"]
    assert storage["beta"]["block_document_name"] == "leruli-results-beta"

    def propose(block_id: str) -> httpx.Response:
        data = {"storage_key": f"jobs/{run_id}/attempt-1.json", "storage_block_id": block_id}
        state = {"state": {"type": "COMPLETED", "name": "Completed", "data": data}}  # a job's result
        url = f"{server.url}/prefect/api/flow_runs/{run_id}/set_state"
        return httpx.post(url, headers=_node(beta), json=state, timeout=30)

    refused = propose(storage["alpha"]["block_document_id"])
    assert refused.status_code == 403
    assert "its own group's result storage" in refused.json()["detail"]
    assert propose(storage["beta"]["block_document_id"]).status_code in {200, 201}


def test_a_node_starts_only_a_job_it_holds_pending(server: stack.Server, beta: dict[str, str]) -> None:
    # Prefect accepts Running after Cancelled; an operator's forced Cancelled of a job a node held ready must
    # not be undone by that node's start.
    api = f"{server.url}/prefect/api"
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "b" * 32}
    jobs = [
        httpx.post(f"{server.url}/v1/jobs", headers=_bearer(beta["api_secret"]), json=spec).json()["id"]
        for _ in range(2)
    ]
    node = {**_node(beta), "X-Prefect-Worker-Name": "node-b"}

    def propose(job: str, state_type: str, headers: dict[str, str]) -> httpx.Response:
        body = {"state": {"type": state_type, "name": state_type.title()}, "force": state_type == "CANCELLED"}
        return httpx.post(f"{api}/flow_runs/{job}/set_state", headers=headers, json=body)

    for job in jobs:
        assert propose(job, "PENDING", node).json()["status"] == "ACCEPT"
    assert propose(jobs[0], "CANCELLED", _bearer(server.operator_secret)).json()["status"] == "ACCEPT"

    refused = propose(jobs[0], "RUNNING", node)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "the job is Cancelled: a node starts only a job it holds Pending"
    assert propose(jobs[1], "RUNNING", node).json()["status"] == "ACCEPT"
    assert propose(jobs[1], "RUNNING", node).status_code != 409  # a retried start is no refusal
    assert propose(jobs[1], "CANCELLED", _bearer(server.operator_secret)).json()["status"] == "ACCEPT"
