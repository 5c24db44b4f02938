"""The Prefect API routes a compute node may call, each with the ownership it must prove.

Deny by default: a route missing here is refused. The list is what Prefect 3.9's `BaseWorker` calls (see
../shared/facts/prefect.md), nothing more; `block_documents` (which hands out secrets), `variables`,
other pools and other groups' flow runs are out of reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_POOL = r"[^/]+"


class Ownership(Enum):
    none = "none"  # harmless, group-independent reads
    pool = "pool"  # the {pool} in the path is the caller's work pool
    deployment = "deployment"  # the {deployment} is the caller's deployment
    flow = "flow"  # the {flow} is the leruli_job flow
    flow_run = "flow_run"  # the {flow_run} belongs to the caller's deployment
    logs = "logs"  # every log in the body belongs to one of the caller's flow runs


@dataclass(frozen=True)
class NodeRoute:
    method: str  # an HTTP method, or "WS" for a websocket
    pattern: re.Pattern[str]
    ownership: Ownership


def _route(method: str, path: str, ownership: Ownership) -> NodeRoute:
    path = path.replace("{pool}", f"(?P<pool>{_POOL})").replace("{id}", f"(?P<id>{_UUID})")
    return NodeRoute(method, re.compile(f"^{path}$"), ownership)


NODE_ROUTES: tuple[NodeRoute, ...] = (
    _route("GET", "/api/csrf-token", Ownership.none),
    _route("GET", "/api/admin/version", Ownership.none),
    _route("GET", "/api/health", Ownership.none),
    _route("GET", "/api/work_pools/{pool}", Ownership.pool),
    _route("POST", "/api/work_pools/{pool}/queues/filter", Ownership.pool),
    _route("POST", "/api/work_pools/{pool}/get_scheduled_flow_runs", Ownership.pool),
    _route("POST", "/api/work_pools/{pool}/workers/heartbeat", Ownership.pool),
    _route("WS", "/api/work_pools/{pool}/workers/connect", Ownership.pool),
    _route("GET", "/api/deployments/{id}", Ownership.deployment),
    _route("GET", "/api/flows/{id}", Ownership.flow),
    _route("GET", "/api/flow_runs/{id}", Ownership.flow_run),
    _route("PATCH", "/api/flow_runs/{id}", Ownership.flow_run),
    _route("PATCH", "/api/flow_runs/{id}/labels", Ownership.flow_run),
    _route("POST", "/api/flow_runs/{id}/set_state", Ownership.flow_run),
    _route("POST", "/api/logs/?", Ownership.logs),
    _route("WS", "/api/events/in", Ownership.none),
)


def match_node_route(method: str, path: str) -> tuple[NodeRoute, dict[str, str]] | None:
    """The route `method path` matches (with its path parameters), or None when nodes may not call it."""
    for route in NODE_ROUTES:
        if route.method == method:
            match = route.pattern.match(path)
            if match:
                return route, match.groupdict()
    return None
