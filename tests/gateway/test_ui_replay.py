"""The tenant-aware Prefect UI, replayed through a real server: every route of the UI's table and hostile
variants of them, as every kind of caller. No answer to a group's member may hold another group's object,
and no mutation may cross groups."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leruli_prefect.gateway.ui_routes import UI_ROUTES, Rule
from leruli_prefect.job_spec import CANCEL_TAG
from tests import stack
from tests.gateway.access_world import unique
from tests.gateway.ui_replay_world import TENANTS, UI_CALLERS, UiWorld, build_ui_world

Request = tuple[str, Any]  # (path under /prefect/api, JSON body or None)
# Prefect refuses to count events over too long a span: the last day holds all of this world's.
SINCE = {"occurred": {"since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}}


@pytest.fixture(scope="module")
def ui(server: stack.Server) -> UiWorld:
    return build_ui_world(server)


def _own(ui: UiWorld) -> Any:
    return ui.objects["A"]


# One request per route of the table, aimed at group A's own objects (what the UI itself sends).
ROUTE_REQUESTS: dict[str, Callable[[UiWorld], Request]] = {
    "/api/admin/version": lambda w: ("/admin/version", None),
    "/api/health": lambda w: ("/health", None),
    "/api/admin/settings": lambda w: ("/admin/settings", None),
    "/api/admin/storage": lambda w: ("/admin/storage", None),
    "/api/flow_runs/filter": lambda w: ("/flow_runs/filter", {"sort": "ID_DESC", "limit": 200}),
    "/api/flow_runs/count": lambda w: ("/flow_runs/count", {}),
    "/api/flow_runs/paginate": lambda w: ("/flow_runs/paginate", {"page": 1, "limit": 100}),
    "/api/flow_runs/lateness": lambda w: ("/flow_runs/lateness", {}),
    "/api/flow_runs/history": lambda w: (
        "/flow_runs/history",
        {
            "history_start": "2020-01-01T00:00:00Z",
            "history_end": "2030-01-01T00:00:00Z",
            "history_interval_seconds": 86400 * 365,
        },
    ),
    "/api/ui/flow_runs/history": lambda w: ("/ui/flow_runs/history", {"limit": 200}),
    "/api/flows/filter": lambda w: ("/flows/filter", {}),
    "/api/flows/count": lambda w: ("/flows/count", {}),
    "/api/flows/paginate": lambda w: ("/flows/paginate", {}),
    "/api/deployments/filter": lambda w: ("/deployments/filter", {}),
    "/api/deployments/count": lambda w: ("/deployments/count", {}),
    "/api/deployments/paginate": lambda w: ("/deployments/paginate", {}),
    "/api/work_pools/filter": lambda w: ("/work_pools/filter", {}),
    "/api/work_pools/count": lambda w: ("/work_pools/count", {}),
    "/api/task_runs/filter": lambda w: ("/task_runs/filter", {}),
    "/api/task_runs/count": lambda w: ("/task_runs/count", {}),
    "/api/task_runs/paginate": lambda w: ("/task_runs/paginate", {}),
    "/api/task_runs/history": lambda w: (
        "/task_runs/history",
        {
            "history_start": "2020-01-01T00:00:00Z",
            "history_end": "2030-01-01T00:00:00Z",
            "history_interval_seconds": 86400 * 365,
        },
    ),
    "/api/artifacts/filter": lambda w: ("/artifacts/filter", {}),
    "/api/artifacts/count": lambda w: ("/artifacts/count", {}),
    "/api/artifacts/latest/filter": lambda w: ("/artifacts/latest/filter", {}),
    "/api/artifacts/latest/count": lambda w: ("/artifacts/latest/count", {}),
    "/api/events/filter": lambda w: ("/events/filter", {"filter": SINCE, "limit": 50}),
    "/api/events/count-by/{name}": lambda w: ("/events/count-by/event", {"filter": SINCE}),
    "/api/events/filter/next": lambda w: (_forged_page_path(w, {}), None),
    "/api/flow_runs/{id}": lambda w: (f"/flow_runs/{_own(w).user_job}", None),
    "/api/flow_runs/{id}/graph": lambda w: (f"/flow_runs/{_own(w).user_job}/graph", None),
    "/api/flow_runs/{id}/graph-v2": lambda w: (f"/flow_runs/{_own(w).user_job}/graph-v2", None),
    "/api/flow_runs/{id}/logs/download": lambda w: (f"/flow_runs/{_own(w).user_job}/logs/download", None),
    "/api/task_runs/{id}": lambda w: (f"/task_runs/{_own(w).task_run}", None),
    "/api/ui/task_runs/{id}": lambda w: (f"/ui/task_runs/{_own(w).task_run}", None),
    "/api/deployments/{id}": lambda w: (f"/deployments/{_own(w).deployment}", None),
    "/api/flows/{id}": lambda w: (f"/flows/{w.flow_id}", None),
    "/api/work_pools/{pool}": lambda w: (f"/work_pools/{_own(w).pool}", None),
    "/api/work_pools/{pool}/queues/filter": lambda w: (f"/work_pools/{_own(w).pool}/queues/filter", {}),
    "/api/work_pools/{pool}/queues/{name}": lambda w: (f"/work_pools/{_own(w).pool}/queues/default", None),
    "/api/work_pools/{pool}/workers/filter": lambda w: (f"/work_pools/{_own(w).pool}/workers/filter", {}),
    "/api/work_queues/{id}": lambda w: (f"/work_queues/{_own(w).queue_id}", None),
    "/api/work_queues/filter": lambda w: ("/work_queues/filter", {}),
    "/api/logs/filter": lambda w: ("/logs/filter", {"logs": {"flow_run_id": {"any_": [_own(w).user_job]}}}),
    "/api/ui/flow_runs/count-task-runs": lambda w: (
        "/ui/flow_runs/count-task-runs",
        {"flow_run_ids": [_own(w).user_job, _own(w).admin_job]},
    ),
    "/api/ui/flows/count-deployments": lambda w: ("/ui/flows/count-deployments", {"flow_ids": [w.flow_id]}),
    "/api/ui/flows/next-runs": lambda w: ("/ui/flows/next-runs", {"flow_ids": [w.flow_id]}),
    "/api/flow_runs/{id}/set_state": lambda w: (
        f"/flow_runs/{_own(w).user_job}/set_state",
        {"state": {"type": "RUNNING"}},  # anything but a cancel: refused to tenants (cancels: below)
    ),
    "/api/automations/filter": lambda w: ("/automations/filter", {}),
    "/api/automations/related-to/{rest}": lambda w: (
        f"/automations/related-to/prefect.deployment.{_own(w).deployment}",
        None,
    ),
    "/api/block_documents/filter": lambda w: ("/block_documents/filter", {"include_secrets": True}),
    "/api/block_documents/count": lambda w: ("/block_documents/count", {}),
    "/api/block_types/filter": lambda w: ("/block_types/filter", {}),
    "/api/block_schemas/filter": lambda w: ("/block_schemas/filter", {}),
    "/api/variables/filter": lambda w: ("/variables/filter", {}),
    "/api/variables/count": lambda w: ("/variables/count", {}),
    "/api/concurrency_limits/filter": lambda w: ("/concurrency_limits/filter", {}),
    "/api/v2/concurrency_limits/filter": lambda w: ("/v2/concurrency_limits/filter", {}),
    "/api/saved_searches/filter": lambda w: ("/saved_searches/filter", {}),
    "/api/observed-states": lambda w: ("/observed-states", None),
}

_OWNED_RULES = {
    Rule.own_flow_run,
    Rule.own_task_run,
    Rule.own_deployment,
    Rule.own_pool,
    Rule.own_work_queue,
}


def _forged_page_path(ui: UiWorld, event_filter: dict[str, Any]) -> str:
    """`events/filter/next` with a page token made up by the caller: unsigned, so anyone can write one."""
    page = {"filter": {**SINCE, **event_filter}, "count": 10_000, "page_size": 50, "offset": 0}
    inner = base64.b64encode(json.dumps(page).encode())
    return f"/events/filter/next?page-token={base64.b64encode(inner).decode()}"


def _leaks(ui: UiWorld, caller: str, text: str) -> list[str]:
    """The other group's markers found in an answer to `caller`."""
    other = "A" if caller.startswith("B") else "B"
    return [marker for marker in ui.objects[other].markers() if marker in text]


def _expected(route: Any, caller: str, operator_status: int) -> int:
    if route.path == "/api/health" or caller == "operator":
        return operator_status  # health is open to all, as Prefect keeps it
    if caller == "A-disabled":
        return 401
    if route.rule is Rule.cancel:
        return 403  # a proposed Running: the UI may only cancel
    if caller == "B-user" and route.rule in _OWNED_RULES:
        return 404
    return operator_status


def test_every_ui_route_has_a_request() -> None:
    assert {route.path for route in UI_ROUTES} == set(ROUTE_REQUESTS)


@pytest.mark.parametrize("route", UI_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_ui_route_as_every_caller(ui: UiWorld, route: Any) -> None:
    path, body = ROUTE_REQUESTS[route.path](ui)
    wrong = {}
    operator_status = (
        200 if route.rule is Rule.cancel else ui.call("operator", route.method, path, body).status_code
    )
    assert operator_status < 300 or route.rule is Rule.cancel, operator_status
    for caller in UI_CALLERS:
        if caller == "operator" and route.rule is Rule.cancel:
            continue  # the operator's set_state would really set it; cancels are tested below
        response = ui.call(caller, route.method, path, body)
        expected = _expected(route, caller, operator_status)
        if response.status_code != expected:
            wrong[caller] = f"{response.status_code} (expected {expected}): {response.text[:200]}"
        elif caller != "operator" and (leaked := _leaks(ui, caller, response.text)):
            wrong[caller] = f"leaked {leaked}: {response.text[:300]}"
    assert not wrong, json.dumps(wrong, indent=1)


def _both_pools(ui: UiWorld) -> dict[str, Any]:
    """An operator's filter on the two groups' pools: the session server holds other tests' runs too."""
    pools = [ui.objects["A"].pool, ui.objects["B"].pool]
    return {"limit": 200, "work_pools": {"name": {"any_": pools}}}


def test_the_leak_detector_sees_other_groups_objects(ui: UiWorld) -> None:
    """The operator's unscoped answers do hold both groups' objects: the replay could catch a leak."""
    for path, body in (
        ("/flow_runs/filter", _both_pools(ui)),
        ("/task_runs/filter", {}),
        ("/events/filter", {"filter": SINCE, "limit": 50}),
        ("/logs/filter", {"logs": {"flow_run_id": {"any_": [ui.objects["B"].user_job]}}}),
    ):
        assert _leaks(ui, "A-user", ui.operator("POST", path, body).text), path
    forged = ui.operator("GET", _forged_page_path(ui, {}))
    assert _leaks(ui, "A-user", forged.text)


def _hostile(ui: UiWorld) -> list[tuple[str, str, Any]]:
    b = ui.objects["B"]
    a = ui.objects["A"]
    return [
        ("POST", "/flow_runs/filter", {"work_pools": {"operator": "or_", "name": {"any_": [b.pool]}}}),
        ("POST", "/flow_runs/filter", {"work_pools": {"operator": "or_", "id": {"any_": [b.pool_id]}}}),
        ("POST", "/flow_runs/filter", {"flow_runs": {"operator": "or_", "id": {"any_": [b.user_job]}}}),
        ("POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [b.deployment]}}}),
        ("POST", "/flow_runs/count", {"work_pools": {"operator": "or_", "name": {"any_": [a.pool, b.pool]}}}),
        ("POST", "/deployments/filter", {"deployments": {"operator": "or_", "id": {"any_": [b.deployment]}}}),
        ("POST", "/work_pools/filter", {"work_pools": {"operator": "or_", "name": {"any_": [b.pool]}}}),
        ("POST", "/task_runs/filter", {"deployments": {"operator": "or_", "id": {"any_": [b.deployment]}}}),
        ("POST", "/task_runs/filter", {"task_runs": {"id": {"any_": [b.task_run]}}}),
        ("POST", "/artifacts/filter", {"flow_runs": {"id": {"any_": [b.user_job]}}}),
        ("POST", "/artifacts/latest/filter", {"deployments": {"id": {"any_": [b.deployment]}}}),
        ("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [b.user_job]}}}),
        (
            "POST",
            "/logs/filter",
            {"logs": {"operator": "or_", "flow_run_id": {"any_": [a.user_job, b.user_job]}}},
        ),
        ("POST", "/logs/filter", {"logs": {"task_run_id": {"any_": [b.task_run]}}}),
        ("POST", "/logs/filter", {}),
        (
            "POST",
            "/events/filter",
            {"filter": {**SINCE, "any_resource": {"id": [f"prefect.work-pool.{b.pool_id}"]}}},
        ),
        (
            "POST",
            "/events/filter",
            {"filter": {**SINCE, "related": {"id": [f"prefect.flow-run.{b.user_job}"]}}},
        ),
        ("POST", "/events/count-by/resource", {"filter": SINCE}),
        ("GET", _forged_page_path(ui, {}), None),
        ("GET", _forged_page_path(ui, {"any_resource": {"id": [f"prefect.flow-run.{b.user_job}"]}}), None),
        ("POST", "/ui/flow_runs/count-task-runs", {"flow_run_ids": [b.user_job]}),
        ("POST", "/ui/flows/next-runs", {"flow_ids": [ui.flow_id]}),
        ("POST", "/work_queues/filter", {"work_queues": {"id": {"any_": [b.queue_id]}}}),
    ]


@pytest.mark.parametrize("caller", TENANTS)
def test_hostile_filters_return_nothing_of_the_other_group(ui: UiWorld, caller: str) -> None:
    wrong = {}
    for method, path, body in _hostile(ui):
        response = ui.call(caller, method, path, body)
        if response.status_code >= 300:
            wrong[f"{method} {path[:60]} {json.dumps(body)[:80]}"] = f"status {response.status_code}"
        elif leaked := _leaks(ui, caller, response.text):
            wrong[f"{method} {path[:60]} {json.dumps(body)[:80]}"] = f"leaked {leaked}"
    assert not wrong, json.dumps(wrong, indent=1)


@pytest.mark.parametrize("caller", TENANTS)
def test_foreign_ids_in_paths_are_not_found(ui: UiWorld, caller: str) -> None:
    b = ui.objects["B"]
    for path in (
        f"/flow_runs/{b.user_job}",
        f"/flow_runs/{b.user_job}/graph-v2",
        f"/flow_runs/{b.user_job}/logs/download",
        f"/task_runs/{b.task_run}",
        f"/ui/task_runs/{b.task_run}",
        f"/deployments/{b.deployment}",
        f"/work_pools/{b.pool}",
        f"/work_pools/{b.pool}/queues/default",
        f"/work_queues/{b.queue_id}",
    ):
        response = ui.call(caller, "GET", path)
        assert response.status_code == 404, (path, response.status_code, response.text)
    assert ui.call(caller, "POST", f"/work_pools/{b.pool}/queues/filter", {}).status_code == 404


def test_scoped_answers_still_hold_the_groups_own_objects(ui: UiWorld) -> None:
    a = ui.objects["A"]
    runs = ui.call("A-user", "POST", "/flow_runs/filter", {}).json()
    assert {run["id"] for run in runs} == {a.user_job, a.admin_job, a.ended_job}
    logs = ui.call(
        "A-token", "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [a.user_job]}}}
    ).json()
    assert [log["message"] for log in logs] == [a.log_marker, a.log_marker]
    assert [t["id"] for t in ui.call("A-user", "POST", "/task_runs/filter", {}).json()] == [a.task_run]
    assert [x["id"] for x in ui.call("A-user", "POST", "/artifacts/filter", {}).json()] == [a.artifact]
    assert ui.call("A-user", "POST", "/ui/flows/count-deployments", {"flow_ids": [ui.flow_id]}).json() == {
        ui.flow_id: 1
    }
    next_run = ui.call("A-user", "POST", "/ui/flows/next-runs", {"flow_ids": [ui.flow_id]}).json()[ui.flow_id]
    assert next_run["id"] in {a.user_job, a.admin_job}
    events = ui.call("A-user", "POST", "/events/filter", {"filter": SINCE, "limit": 50}).json()
    assert events["total"] >= 3 and a.user_job in json.dumps(events["events"])


def test_event_pages_link_to_the_gateway_and_stay_scoped(ui: UiWorld) -> None:
    page = ui.call("A-user", "POST", "/events/filter", {"filter": SINCE, "limit": 1}).json()
    assert page["next_page"].startswith(f"{ui.url}/prefect/api/events/filter/next?page-token=")
    path = page["next_page"].removeprefix(f"{ui.url}/prefect/api")
    following = ui.call("A-user", "GET", path)
    assert following.status_code == 200 and not _leaks(ui, "A-user", following.text)
    assert following.json()["events"]
    operator_page = ui.operator("POST", "/events/filter", {"filter": SINCE, "limit": 1}).json()
    assert operator_page["next_page"].startswith(f"{ui.url}/prefect/api/events/filter/next?")
    assert ui.operator("GET", operator_page["next_page"].removeprefix(f"{ui.url}/prefect/api")).json()[
        "events"
    ]


def test_mutations_are_refused_and_do_not_cross_groups(ui: UiWorld) -> None:
    a, b = ui.objects["A"], ui.objects["B"]
    before = ui.operator("GET", f"/deployments/{b.deployment}").json()
    upsert = {"name": b.deployment_name, "flow_id": ui.flow_id, "work_pool_name": a.pool}
    for caller in TENANTS:
        for method, path, body in (
            ("POST", "/deployments/", upsert),
            ("PATCH", f"/deployments/{b.deployment}", {"work_pool_name": a.pool}),
            ("PATCH", f"/deployments/{a.deployment}", {"description": "x"}),
            ("POST", f"/deployments/{a.deployment}/create_flow_run", {}),
            ("PATCH", f"/work_pools/{a.pool}", {"description": "x"}),
            ("DELETE", f"/flow_runs/{a.user_job}", None),
            ("POST", "/block_documents/", {"name": "x"}),
            ("POST", "/variables/", {"name": "x", "value": "y"}),
            ("POST", f"/flow_runs/{a.user_job}/set_state", {"state": {"type": "SCHEDULED"}}),
        ):
            response = ui.call(caller, method, path, body)
            assert response.status_code == 403, (caller, method, path, response.text)
        cancel = {"state": {"type": "CANCELLING"}}
        assert ui.call(caller, "POST", f"/flow_runs/{b.user_job}/set_state", cancel).status_code in (403, 404)
    after = ui.operator("GET", f"/deployments/{b.deployment}").json()
    assert (after["work_pool_name"], after["updated"]) == (before["work_pool_name"], before["updated"])
    assert ui.run_state(b.user_job)[0] == "SCHEDULED"
    assert ui.run_state(a.user_job)[0] == "SCHEDULED"


def test_cancel_from_the_ui_follows_the_roles(ui: UiWorld) -> None:
    world = ui.world
    cancel = {"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True}
    admins_job = ui.objects["A"].admin_job
    assert ui.call("A-user", "POST", f"/flow_runs/{admins_job}/set_state", cancel).status_code == 403
    assert ui.call("A-token", "POST", f"/flow_runs/{admins_job}/set_state", cancel).status_code == 403
    assert ui.run_state(admins_job)[0] == "SCHEDULED"
    own = world.new_job("A")  # the regular user's
    response = ui.call("A-user", "POST", f"/flow_runs/{own}/set_state", cancel)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "ACCEPT"
    state, tags = ui.run_state(own)
    assert state == "CANCELLED" and CANCEL_TAG in tags  # queued: cancelled at once, by the /v1 code
    others = world.new_job("A")
    assert ui.call("A-admin", "POST", f"/flow_runs/{others}/set_state", cancel).status_code == 201
    assert ui.run_state(others)[0] == "CANCELLED"
    assert ui.call("A-admin", "POST", f"/flow_runs/{others}/set_state", cancel).status_code == 409


def test_sign_in_follows_the_gateways_database(ui: UiWorld) -> None:
    world = ui.world
    name = unique("signin")
    world.secrets["fresh"] = world.as_admin("A", "POST", "/v1/users", {"name": name}).json()["api_secret"]
    assert ui.call("fresh", "GET", "/admin/version").status_code == 200
    assert ui.call("fresh", "POST", "/flow_runs/count", {}).json() >= 3
    world.as_admin("A", "POST", f"/v1/users/{name}/disable")
    assert ui.call("fresh", "POST", "/flow_runs/count", {}).status_code == 401  # signed out at once
    world.secrets["fresh"] = "lq_user_" + "x" * 43  # a secret the gateway does not know (rotated out)
    assert ui.call("fresh", "GET", "/admin/version").status_code == 401
    # The browser never gets the server's credential, not even in the settings the UI reads.
    for caller in TENANTS:
        for path in ("/admin/settings", "/admin/storage", "/admin/version"):
            assert ui.world.server.operator_secret not in ui.call(caller, "GET", path).text
    # A script's Bearer API secret is not a UI sign-in: the Prefect API stays closed to it.
    assert ui.call("A-user", "POST", "/flow_runs/filter", {}, bearer=True).status_code == 403


def test_operators_keep_the_unscoped_ui(ui: UiWorld) -> None:
    runs = ui.operator("POST", "/flow_runs/filter", _both_pools(ui)).json()
    ids = {run["id"] for run in runs}
    assert {ui.objects["A"].user_job, ui.objects["B"].user_job} <= ids
    pools = {pool["name"] for pool in ui.operator("POST", "/work_pools/filter", {}).json()}
    assert {ui.objects["A"].pool, ui.objects["B"].pool} <= pools
