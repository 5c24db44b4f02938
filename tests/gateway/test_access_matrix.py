"""Every route of the gateway and every Prefect route nodes use, against every kind of caller.

Each cell is a real request to a real server. A route that appears without a row here fails the test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
import websockets

from leruli_prefect.gateway.node_routes import NODE_ROUTES, Ownership
from tests import stack
from tests.gateway.access_world import CALLERS, World, build_world, unique
from tests.stack import on_both_databases

BAD = {
    "none": 401,
    "malformed": 401,
    "A-disabled": 401,
    "A-rotated": 401,
    "B-disabled": 401,
    "B-rotated": 401,
}


def expect(default: int, **cells: int) -> dict[str, int]:
    """Every caller gets `default` but the bad credentials (401) and the cells named (A_user= for A-user)."""
    table = {caller: default for caller in CALLERS} | BAD
    table.update({name.replace("_", "-"): status for name, status in cells.items()})
    return table


def members(ok: int, *, other_group: int) -> dict[str, int]:
    """A route for group members (token, users, admins): nodes and the operator are refused."""
    return expect(
        403, A_token=ok, A_user=ok, A_admin=ok, B_token=other_group, B_user=other_group, B_admin=other_group
    )


def writers(ok: int, *, other_group: int, admins_only: bool = False) -> dict[str, int]:
    regular = 403 if admins_only else ok
    regular_b = 403 if admins_only else other_group
    return expect(403, A_user=regular, A_admin=ok, B_user=regular_b, B_admin=other_group)


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the OpenAPI path
    expected: dict[str, int]
    request: Callable[[World, str], tuple[str, object]]  # (world, caller) -> (concrete path, body)


def fixed(path: str, body: object = None) -> Callable[[World, str], tuple[str, object]]:
    return lambda world, caller: (path, body)


def _code(caller: str) -> dict[str, object]:
    """The image the world's jobs name: once a group has a code, jobs naming an unpublished one are refused.

    Publishing the same image again is answered with the first record, so every writer gets 201.
    """
    return {
        "name": "leruli-busybox",
        "version": "1.0",
        "image_id": "sha256:" + "a" * 64,
        "archive_sha256": "b" * 64,
        "object_key": "codes/leruli-busybox/1.0.tar.gz",
        "size": 1,
    }


def _rotate_request(world: World, caller: str) -> tuple[str, object]:
    return "/v1/compute-secret", None


GATEWAY_ROWS = (
    Row("GET", "/v1/health", expect(200) | {c: 200 for c in BAD}, fixed("/v1/health")),
    Row(
        "GET",
        "/v1/whoami",
        expect(200),
        fixed("/v1/whoami"),
    ),
    Row(
        "POST",
        "/v1/groups",
        expect(403, operator=201),
        lambda world, caller: ("/v1/groups", {"name": unique("mg")}),
    ),
    Row("GET", "/v1/jobs", members(200, other_group=200), fixed("/v1/jobs")),
    Row(
        "POST",
        "/v1/jobs",
        writers(201, other_group=201),
        fixed("/v1/jobs", {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "e" * 32}),
    ),
    Row(
        "GET",
        "/v1/jobs/{job_id}",
        members(200, other_group=404),
        lambda w, c: (f"/v1/jobs/{w.new_job()}", None),
    ),
    Row(
        "POST",
        "/v1/jobs/{job_id}/cancel",
        writers(200, other_group=404),
        lambda w, c: (f"/v1/jobs/{w.new_job()}/cancel", None),
    ),
    Row(
        "POST",
        "/v1/jobs/{job_id}/prune",
        writers(200, other_group=404),
        lambda w, c: (f"/v1/jobs/{w.new_job(ended=True)}/prune", None),
    ),
    Row(
        "POST",
        "/v1/jobs/batch",
        writers(201, other_group=201),
        fixed(
            "/v1/jobs/batch",
            {"jobs": [{"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "e" * 32}]},
        ),
    ),
    # Another group's ids are left out of the answer (200, empty), exactly as ids that do not exist.
    Row(
        "POST",
        "/v1/jobs/lookup",
        members(200, other_group=200),
        lambda w, c: ("/v1/jobs/lookup", {"ids": [w.new_job()]}),
    ),
    # Nodes only; another group's runs are left out of the answer (tests/gateway/test_node_runs.py).
    Row(
        "POST",
        "/v1/node/runs",
        expect(403, A_compute=200, B_compute=200),
        lambda w, c: ("/v1/node/runs", {"ids": [w.new_job()]}),
    ),
    Row("GET", "/v1/users", members(200, other_group=200), fixed("/v1/users")),
    Row(
        "POST",
        "/v1/users",
        writers(201, other_group=201, admins_only=True),
        lambda w, c: ("/v1/users", {"name": unique("new")}),
    ),
    Row(
        "POST",
        "/v1/users/{name}/disable",
        writers(200, other_group=404, admins_only=True),
        lambda w, c: (f"/v1/users/{w.new_user()}/disable", None),
    ),
    Row(
        "PATCH",
        "/v1/users/{name}",
        writers(200, other_group=404, admins_only=True),
        lambda w, c: (f"/v1/users/{w.new_user()}", {"is_admin": True}),
    ),
    # Each user's own secret (the world keeps the new one): there is no other group's object to aim at.
    Row("POST", "/v1/users/me/secret", writers(200, other_group=200), fixed("/v1/users/me/secret")),
    Row("POST", "/v1/compute-secret", writers(200, other_group=200, admins_only=True), _rotate_request),
    Row("GET", "/v1/audit", members(200, other_group=200), fixed("/v1/audit")),
    Row(
        "GET",
        "/v1/codes",
        members(200, other_group=200) | {"A-compute": 200, "B-compute": 200},
        fixed("/v1/codes"),
    ),
    Row("GET", "/v1/codes/bucket", writers(200, other_group=200), fixed("/v1/codes/bucket")),
    Row(
        "GET",
        "/v1/results/storage",
        members(200, other_group=200) | {"A-compute": 200, "B-compute": 200},
        fixed("/v1/results/storage"),
    ),
    Row("POST", "/v1/codes", writers(201, other_group=201), lambda w, c: ("/v1/codes", _code(c))),
)
# whoami answers every valid credential, nodes' and the operator's included.
GATEWAY_ROWS[1].expected.update({"A-compute": 200, "B-compute": 200, "operator": 200})


@pytest.fixture(scope="module")
def world(server: stack.Server) -> World:
    return build_world(server)


@on_both_databases
def test_every_gateway_route_has_a_row(server: stack.Server) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    routes = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert routes == {(row.method, row.path) for row in GATEWAY_ROWS}


@on_both_databases
@pytest.mark.parametrize("row", GATEWAY_ROWS, ids=lambda row: f"{row.method} {row.path}")
def test_gateway_route(world: World, row: Row) -> None:
    wrong = {}
    for caller in CALLERS:
        path, body = row.request(world, caller)
        response = world.call(caller, row.method, path, body)
        if response.status_code != row.expected[caller]:
            wrong[caller] = f"{response.status_code} (expected {row.expected[caller]}): {response.text[:160]}"
        if response.status_code >= 400:
            assert "detail" in response.json(), response.text
            assert "Traceback" not in response.text
        if row.path == "/v1/compute-secret" and response.status_code == 200:
            world.rotated(caller[0], response.json()["compute_secret"])
        if row.path == "/v1/users/me/secret" and response.status_code == 200:
            world.secrets[caller] = response.json()["api_secret"]
    assert not wrong, json.dumps(wrong, indent=1)


# --- The Prefect API behind the gateway: what nodes may call ------------------------------------------

_NODE_REQUESTS: dict[str, Callable[[World], tuple[str, object]]] = {
    "/api/csrf-token": lambda w: ("/api/csrf-token?client=matrix", None),
    "/api/admin/version": lambda w: ("/api/admin/version", None),
    "/api/health": lambda w: ("/api/health", None),
    "/api/work_pools/{pool}": lambda w: (f"/api/work_pools/{w.pools['A']}", None),
    "/api/work_pools/{pool}/queues/filter": lambda w: (f"/api/work_pools/{w.pools['A']}/queues/filter", {}),
    "/api/work_pools/{pool}/get_scheduled_flow_runs": lambda w: (
        f"/api/work_pools/{w.pools['A']}/get_scheduled_flow_runs",
        {},
    ),
    "/api/work_pools/{pool}/workers/heartbeat": lambda w: (
        f"/api/work_pools/{w.pools['A']}/workers/heartbeat",
        {"name": "matrix-node"},
    ),
    "/api/work_pools/{pool}/workers/connect": lambda w: (
        f"/api/work_pools/{w.pools['A']}/workers/connect",
        None,
    ),
    "/api/deployments/{id}": lambda w: (f"/api/deployments/{w.deployments['A']}", None),
    "/api/flows/{id}": lambda w: (f"/api/flows/{w.flow_id}", None),
    "/api/flow_runs/{id}": lambda w: (f"/api/flow_runs/{w.new_job()}", None),
    "/api/flow_runs/{id}/labels": lambda w: (f"/api/flow_runs/{w.new_job()}/labels", {"matrix": "1"}),
    "/api/flow_runs/{id}/set_state": lambda w: (
        f"/api/flow_runs/{w.new_job()}/set_state",
        {"state": {"type": "SCHEDULED", "name": "Scheduled"}},
    ),
    "/api/logs/?": lambda w: (
        "/api/logs/",
        [
            {
                "name": "matrix",
                "level": 20,
                "message": "m",
                "timestamp": "2026-11-26T00:00:00Z",
                "flow_run_id": w.new_job(),
            }
        ],
    ),
    "/api/events/in": lambda w: ("/api/events/in", None),
}


def _template(route_pattern: str) -> str:
    """A NODE_ROUTES regex as a path: `^/api/work_pools/(?P<pool>[^/]+)$` -> /api/work_pools/{pool}."""
    import re

    path = route_pattern.strip("^$")
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)


# Open to every caller, with or without a credential, as Prefect keeps them (the UI polls health).
_OPEN_PROBES = {"/api/health"}


def _node_expected(ownership: Ownership, passed: int, template: str) -> dict[str, int]:
    if template in _OPEN_PROBES:
        return {caller: passed for caller in CALLERS}
    table = expect(403, operator=passed, A_compute=passed)
    owned = ownership in (Ownership.pool, Ownership.deployment, Ownership.flow_run, Ownership.logs)
    table["B-compute"] = 404 if owned else passed
    return table


def test_every_node_route_has_a_request() -> None:
    assert {_template(route.pattern.pattern) for route in NODE_ROUTES} == set(_NODE_REQUESTS)


@pytest.mark.parametrize(
    "route",
    [r for r in NODE_ROUTES if r.method != "WS"],
    ids=lambda r: f"{r.method} {_template(r.pattern.pattern)}",
)
@on_both_databases
def test_node_route(world: World, route: object) -> None:
    template = _template(route.pattern.pattern)  # type: ignore[attr-defined]
    wrong = {}
    for caller in CALLERS:
        path, body = _NODE_REQUESTS[template](world)
        if route.method == "PATCH" and template == "/api/flow_runs/{id}":  # type: ignore[attr-defined]
            body = {}
        # What the operator gets for the very same request is what an allowed node must get.
        passed = world.call("operator", route.method, f"/prefect{path}", body).status_code  # type: ignore[attr-defined]
        expected = _node_expected(route.ownership, passed, template)[caller]  # type: ignore[attr-defined]
        response = world.call(caller, route.method, f"/prefect{path}", body)  # type: ignore[attr-defined]
        if response.status_code != expected:
            wrong[caller] = f"{response.status_code} (expected {expected}): {response.text[:160]}"
    assert not wrong, json.dumps(wrong, indent=1)


async def _handshake(url: str, headers: dict[str, str], token: str) -> bool:
    try:
        async with websockets.connect(
            url, additional_headers=headers, subprotocols=["prefect"], open_timeout=10
        ) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "auth_success"
    except websockets.exceptions.InvalidStatus:
        return False


@pytest.mark.parametrize(
    "route", [r for r in NODE_ROUTES if r.method == "WS"], ids=lambda r: r.pattern.pattern
)
@on_both_databases
def test_node_websocket(world: World, route: object) -> None:
    path, _ = _NODE_REQUESTS[_template(route.pattern.pattern)](world)  # type: ignore[attr-defined]
    url = world.server.url.replace("http://", "ws://") + f"/prefect{path}"
    owned = route.ownership is not Ownership.none  # type: ignore[attr-defined]
    allowed = {"A-compute", "operator"} | (set() if owned else {"B-compute"})
    token = world.server.operator_secret
    opened = {caller: asyncio.run(_handshake(url, world.headers(caller), token)) for caller in CALLERS}
    assert {caller for caller, ok in opened.items() if ok} == allowed
