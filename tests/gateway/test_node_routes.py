"""The node route table: what a compute node may call on the Prefect API, and nothing else."""

from __future__ import annotations

import pytest

from leruli_prefect.gateway.node_routes import Ownership, match_node_route

RUN = "0b8a3c1e-8d3f-4a9e-9c1d-2f3e4a5b6c7d"


@pytest.mark.parametrize(
    ("method", "path", "ownership", "params"),
    [
        ("GET", "/api/work_pools/leruli-qm", Ownership.pool, {"pool": "leruli-qm"}),
        ("POST", "/api/work_pools/leruli-qm/get_scheduled_flow_runs", Ownership.pool, {"pool": "leruli-qm"}),
        ("WS", "/api/work_pools/leruli-qm/workers/connect", Ownership.pool, {"pool": "leruli-qm"}),
        ("POST", f"/api/flow_runs/{RUN}/set_state", Ownership.flow_run, {"id": RUN}),
        ("PATCH", f"/api/flow_runs/{RUN}", Ownership.flow_run, {"id": RUN}),
        ("GET", f"/api/deployments/{RUN}", Ownership.deployment, {"id": RUN}),
        ("POST", "/api/logs/", Ownership.logs, {}),
        ("WS", "/api/events/in", Ownership.none, {}),
    ],
)
def test_worker_routes_are_allowed_with_their_ownership(
    method: str, path: str, ownership: Ownership, params: dict[str, str]
) -> None:
    matched = match_node_route(method, path)
    assert matched is not None
    route, found = matched
    assert route.ownership is ownership
    assert found == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/block_documents/filter"),
        ("GET", "/api/variables/name/x"),
        ("POST", "/api/variables/filter"),
        ("POST", "/api/flow_runs/filter"),
        ("DELETE", f"/api/flow_runs/{RUN}"),
        ("POST", "/api/deployments/"),
        ("PATCH", "/api/work_pools/leruli-qm"),
        ("DELETE", "/api/work_pools/leruli-qm"),
        ("GET", "/api/work_pools/leruli-qm/../leruli-other"),
        ("WS", "/api/events/out"),
        ("GET", f"/api/flow_runs/{RUN}/../../block_documents"),
        ("POST", f"/api/flow_runs/{RUN}x/set_state"),
    ],
)
def test_everything_else_is_refused(method: str, path: str) -> None:
    assert match_node_route(method, path) is None
