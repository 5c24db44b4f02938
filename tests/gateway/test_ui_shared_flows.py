"""Every group's jobs run the same Prefect flow (`leruli_job`): flow-level answers must not tell one group's
members anything about another group's runs. Group B has a Failed run, group A none; every call the two
UIs' dashboards make (recorded with headless Chromium, tests/ui) shows A no failure at all."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import stack
from tests.gateway.access_world import build_world
from tests.gateway.ui_replay_world import TENANTS, UiWorld

_NOW = datetime.now(UTC)
SINCE, UNTIL = (_NOW - timedelta(days=1)).isoformat(), (_NOW + timedelta(days=1)).isoformat()
FAILURES = {"type": {"any_": ["FAILED", "CRASHED"]}}
WINDOW = {"before_": UNTIL, "after_": SINCE}
HISTORY = {"history_start": SINCE, "history_end": UNTIL, "history_interval_seconds": 4320}
FAILED_EVENT = "prefect.flow-run.Failed"

# The calls the classic dashboard (/prefect/dashboard) and the new one (/prefect/v2/dashboard) make, as
# recorded, with each state filter asking for failures; then the same lists unfiltered.
DASHBOARD_CALLS: list[tuple[str, dict[str, Any]]] = [
    # The classic dashboard's "failed runs" card: flows having a Failed or Crashed run in the window.
    (
        "/flows/paginate",
        {"flow_runs": {"state": FAILURES, "expected_start_time": WINDOW}, "sort": "UPDATED_DESC"},
    ),
    ("/flows/filter", {"flow_runs": {"state": FAILURES}}),
    ("/flows/count", {"flow_runs": {"state": FAILURES}}),
    ("/flows/count", {"flow_runs": {"operator": "or_", "state": FAILURES}}),
    ("/flows/filter", {"task_runs": {"state": FAILURES}}),
    (
        "/flows/filter",
        {"work_pools": {"operator": "or_", "name": {"any_": []}}, "flow_runs": {"state": FAILURES}},
    ),
    ("/flow_runs/count", {"flow_runs": {"state": FAILURES}}),
    ("/flow_runs/count", {"flow_runs": {"operator": "and_", "expected_start_time": WINDOW}}),
    ("/flow_runs/filter", {"flow_runs": {"state": FAILURES}}),
    ("/flow_runs/filter", {"sort": "ID_DESC", "offset": 0, "limit": 200}),
    ("/flow_runs/paginate", {"page": 1, "limit": 100, "sort": "START_TIME_DESC"}),
    ("/flow_runs/history", HISTORY),
    ("/ui/flow_runs/history", {"sort": "EXPECTED_START_TIME_DESC", "limit": 1000, "offset": 0}),
    ("/deployments/count", {"flow_runs": {"state": FAILURES}}),
    ("/deployments/filter", {"flow_runs": {"state": FAILURES}}),
    ("/work_pools/filter", {"offset": 0}),
    ("/task_runs/count", {"task_runs": {"state": FAILURES}}),
    ("/task_runs/history", {**HISTORY, "flow_runs": {"state": FAILURES}}),
    ("/events/filter", {"filter": {"occurred": {"since": SINCE}, "event": {"name": [FAILED_EVENT]}}}),
    ("/events/count-by/event", {"filter": {"occurred": {"since": SINCE}}}),
    (
        "/events/count-by/time",
        {
            "filter": {"occurred": {"since": SINCE}, "event": {"name": [FAILED_EVENT]}},
            "time_unit": "hour",
            "time_interval": 1,
        },
    ),
]


@pytest.fixture(scope="module")
def ui(server: stack.Server) -> UiWorld:
    world = build_world(server)
    ui = UiWorld(world, {}, world.flow_id)
    ui.world.new_job("A")  # A has runs, none of them failed
    ui.world.new_job("A", ended=True)
    failed = world.new_job("B")
    ui.operator(
        "POST",
        f"/flow_runs/{failed}/set_state",
        {"state": {"type": "FAILED", "name": "Failed"}, "force": True},
    )
    _wait_for_failed_event(ui, world.pools["B"])
    return ui


def _pool_id(ui: UiWorld, pool: str) -> str:
    return ui.operator("GET", f"/work_pools/{pool}").json()["id"]


def _wait_for_failed_event(ui: UiWorld, pool: str, timeout: float = 60) -> None:
    """Events reach the database through Prefect's event pipeline a moment later."""
    related = {"id": [f"prefect.work-pool.{_pool_id(ui, pool)}"]}
    body = {"filter": {"occurred": {"since": SINCE}, "event": {"name": [FAILED_EVENT]}, "related": related}}
    deadline = time.monotonic() + timeout
    while ui.operator("POST", "/events/filter", body).json()["total"] < 1:
        assert time.monotonic() < deadline, "B's Failed event did not arrive"
        time.sleep(0.5)


def _failures_in(answer: Any) -> list[str]:
    """Whatever in an answer says that a run failed: a flow found by a failure filter, a count, a state."""
    text = json.dumps(answer)
    return [word for word in ('"FAILED"', '"Failed"', '"CRASHED"', FAILED_EVENT) if word in text]


def test_prefect_itself_would_tell_group_a_about_bs_failure(ui: UiWorld) -> None:
    """The unscoped answer for A's own pool (the operator's) does show the shared flow with a Failed run:
    without the gateway's rewriting, A's dashboard would learn that another group's job failed."""
    a_pool = {"work_pools": {"name": {"any_": [ui.world.pools["A"]]}}}
    assert ui.operator("POST", "/flows/filter", {**a_pool, "flow_runs": {"state": FAILURES}}).json()
    assert ui.operator("POST", "/flows/count", {**a_pool, "flow_runs": {"state": FAILURES}}).json() >= 1
    assert ui.operator("POST", "/flow_runs/count", {**a_pool, "flow_runs": {"state": FAILURES}}).json() == 0


@pytest.mark.parametrize("caller", TENANTS)
def test_group_a_sees_no_failure_on_any_dashboard_call(ui: UiWorld, caller: str) -> None:
    wrong = {}
    for path, body in DASHBOARD_CALLS:
        response = ui.call(caller, "POST", path, body)
        where = f"{path} {json.dumps(body)[:100]}"
        if response.status_code != 200:
            wrong[where] = f"status {response.status_code}: {response.text[:200]}"
            continue
        answer = response.json()
        asks_failures = "FAILED" in json.dumps(body)
        empty = answer in (0, [], {}) or (isinstance(answer, dict) and answer.get("results") == [])
        if asks_failures and path.startswith(("/flows/", "/flow_runs/", "/deployments/")) and not empty:
            wrong[where] = f"found something: {response.text[:300]}"
        elif path == "/events/count-by/time" and sum(bucket["count"] for bucket in answer):
            wrong[where] = f"counts Failed events: {response.text[:300]}"
        elif failures := _failures_in(answer):
            wrong[where] = f"shows {failures}: {response.text[:300]}"
    assert not wrong, json.dumps(wrong, indent=1)


@pytest.mark.parametrize("caller", TENANTS)
def test_the_new_uis_state_filter_offers_no_observed_failure(ui: UiWorld, caller: str) -> None:
    """The new UI's runs filter lists the states of every run's history with when each was last seen."""
    assert _failures_in(ui.operator("GET", "/observed-states").json())  # Prefect's own answer shows B's
    response = ui.call(caller, "GET", "/observed-states")
    assert response.status_code == 200 and response.json() == []


def test_group_b_sees_its_own_failure(ui: UiWorld) -> None:
    """The same calls as B's member do show B's Failed run: the rewriting narrows, it does not blind."""
    body = {"flow_runs": {"state": FAILURES}}
    assert [flow["id"] for flow in ui.call("B-user", "POST", "/flows/filter", body).json()] == [ui.flow_id]
    assert ui.call("B-user", "POST", "/flows/count", body).json() == 1
    assert ui.call("B-user", "POST", "/flow_runs/count", body).json() == 1
    events = {"filter": {"occurred": {"since": SINCE}, "event": {"name": [FAILED_EVENT]}}}
    assert ui.call("B-user", "POST", "/events/filter", events).json()["total"] >= 1
