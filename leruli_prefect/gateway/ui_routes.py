"""The Prefect API routes the Prefect UI may call for a group's members, each with the rule that scopes it.

Deny by default: a route missing here is refused (403). The table is what Prefect 3.9.1's two UIs call on
every page (measured with headless Chromium, ../shared/facts/prefect-ui.md, and tests/ui walking both the
classic UI and the new one at /v2), one rule per route; how each
rule is carried out is in `ui_tenant`. Operators never come here: they get the whole, unscoped API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class Rule(Enum):
    passthrough = "passthrough"  # group-independent reads (the server's version, health)
    settings_stub = "settings_stub"  # the server's settings are the operator's: a stub that renders
    storage_stub = "storage_stub"  # the default result storage block: none, as far as tenants know
    empty_list = "empty_list"  # cannot be scoped to a group (automations, blocks, variables, limits, ...)
    zero = "zero"  # the count of such a list
    pool_filter = "pool_filter"  # body's `work_pools` filter forced to the group's pool with `and_`
    flow_filter = "flow_filter"  # the same, and any nested run filter forced to the group's deployment
    deployment_filter = "deployment_filter"  # body's `deployments` filter forced (task runs, artifacts)
    event_filter = "event_filter"  # body's event filter also needs the group's pool among its resources
    event_count = "event_count"  # the same, for counts of events
    event_page = "event_page"  # the page token's filter is decoded and scoped again
    own_flow_run = "own_flow_run"  # {id} is a flow run of the group's deployment, else 404
    own_task_run = "own_task_run"  # {id} is a task run of such a flow run, else 404
    own_deployment = "own_deployment"  # {id} is the group's deployment, else 404
    own_flow = "own_flow"  # {id} is the flow the group's deployment runs (leruli_job), else 404
    own_pool = "own_pool"  # {pool} is the group's work pool, else 404
    own_work_queue = "own_work_queue"  # {id} is a work queue of the group's pool, else 404
    own_logs = "own_logs"  # logs of the group's flow runs only
    own_run_counts = "own_run_counts"  # task run counts of the group's flow runs only
    flow_deployment_counts = "flow_deployment_counts"  # recomputed over the group's deployments
    flow_next_runs = "flow_next_runs"  # recomputed over the group's flow runs
    pool_queues = "pool_queues"  # work queues of the group's pool only
    cancel = "cancel"  # a proposed Cancelling/Cancelled state, done by the /v1 cancel code


# Rules that change something: refused to the read-only group token.
WRITING_RULES = frozenset({Rule.cancel})


@dataclass(frozen=True)
class UiRoute:
    method: str
    path: str  # as written in the table, e.g. /api/flow_runs/{id}
    pattern: re.Pattern[str]
    rule: Rule


def _route(method: str, path: str, rule: Rule) -> UiRoute:
    regex = (
        re.escape(path)
        .replace(re.escape("{id}"), f"(?P<id>{_UUID})")
        .replace(re.escape("{pool}"), "(?P<pool>[^/]+)")
        .replace(re.escape("{name}"), "(?P<name>[^/]+)")
        .replace(re.escape("{rest}"), ".+")
    )
    return UiRoute(method, path, re.compile(f"^{regex}/?$"), rule)


UI_ROUTES: tuple[UiRoute, ...] = (
    _route("GET", "/api/admin/version", Rule.passthrough),
    _route("GET", "/api/health", Rule.passthrough),
    _route("GET", "/api/admin/settings", Rule.settings_stub),
    _route("GET", "/api/admin/storage", Rule.storage_stub),
    # Flow runs, flows, deployments and pools: everything the UI lists is filtered by work pool.
    _route("POST", "/api/flow_runs/filter", Rule.pool_filter),
    _route("POST", "/api/flow_runs/count", Rule.pool_filter),
    _route("POST", "/api/flow_runs/paginate", Rule.pool_filter),
    _route("POST", "/api/flow_runs/lateness", Rule.pool_filter),
    _route("POST", "/api/flow_runs/history", Rule.pool_filter),
    _route("POST", "/api/ui/flow_runs/history", Rule.pool_filter),
    # Flows are shared by every group (all run `leruli_job`), and Prefect tests a flow's runs apart from its
    # deployments' pools: "flows with a Failed run" would otherwise count other groups' runs.
    _route("POST", "/api/flows/filter", Rule.flow_filter),
    _route("POST", "/api/flows/count", Rule.flow_filter),
    _route("POST", "/api/flows/paginate", Rule.flow_filter),
    _route("POST", "/api/deployments/filter", Rule.pool_filter),
    _route("POST", "/api/deployments/count", Rule.pool_filter),
    _route("POST", "/api/deployments/paginate", Rule.pool_filter),
    _route("POST", "/api/work_pools/filter", Rule.pool_filter),
    _route("POST", "/api/work_pools/count", Rule.pool_filter),
    # Task runs and artifacts have no work-pool filter: they are limited to the group's deployment.
    _route("POST", "/api/task_runs/filter", Rule.deployment_filter),
    _route("POST", "/api/task_runs/count", Rule.deployment_filter),
    _route("POST", "/api/task_runs/paginate", Rule.deployment_filter),
    _route("POST", "/api/task_runs/history", Rule.deployment_filter),
    _route("POST", "/api/artifacts/filter", Rule.deployment_filter),
    _route("POST", "/api/artifacts/count", Rule.deployment_filter),
    _route("POST", "/api/artifacts/latest/filter", Rule.deployment_filter),
    _route("POST", "/api/artifacts/latest/count", Rule.deployment_filter),
    # Events: the feed polls these (no websocket in either UI).
    _route("POST", "/api/events/filter", Rule.event_filter),
    _route("POST", "/api/events/count-by/{name}", Rule.event_count),
    _route("GET", "/api/events/filter/next", Rule.event_page),
    # Reads by id or name, checked for ownership.
    _route("GET", "/api/flow_runs/{id}", Rule.own_flow_run),
    _route("GET", "/api/flow_runs/{id}/graph", Rule.own_flow_run),
    _route("GET", "/api/flow_runs/{id}/graph-v2", Rule.own_flow_run),
    _route("GET", "/api/flow_runs/{id}/logs/download", Rule.own_flow_run),
    _route("GET", "/api/task_runs/{id}", Rule.own_task_run),
    _route("GET", "/api/ui/task_runs/{id}", Rule.own_task_run),
    _route("GET", "/api/deployments/{id}", Rule.own_deployment),
    _route("GET", "/api/flows/{id}", Rule.own_flow),
    _route("GET", "/api/work_pools/{pool}", Rule.own_pool),
    _route("POST", "/api/work_pools/{pool}/queues/filter", Rule.own_pool),
    _route("GET", "/api/work_pools/{pool}/queues/{name}", Rule.own_pool),
    _route("POST", "/api/work_pools/{pool}/workers/filter", Rule.own_pool),
    _route("GET", "/api/work_queues/{id}", Rule.own_work_queue),
    _route("POST", "/api/work_queues/filter", Rule.pool_queues),
    _route("POST", "/api/logs/filter", Rule.own_logs),
    _route("POST", "/api/ui/flow_runs/count-task-runs", Rule.own_run_counts),
    _route("POST", "/api/ui/flows/count-deployments", Rule.flow_deployment_counts),
    _route("POST", "/api/ui/flows/next-runs", Rule.flow_next_runs),
    # The one action: cancelling a job (own jobs; an admin's also others' of the group).
    _route("POST", "/api/flow_runs/{id}/set_state", Rule.cancel),
    # Not scopable to a group: empty, so that pages render their empty state instead of breaking.
    _route("POST", "/api/automations/filter", Rule.empty_list),
    _route("GET", "/api/automations/related-to/{rest}", Rule.empty_list),
    _route("POST", "/api/block_documents/filter", Rule.empty_list),
    _route("POST", "/api/block_documents/count", Rule.zero),
    _route("POST", "/api/block_types/filter", Rule.empty_list),
    _route("POST", "/api/block_schemas/filter", Rule.empty_list),
    _route("POST", "/api/variables/filter", Rule.empty_list),
    _route("POST", "/api/variables/count", Rule.zero),
    _route("POST", "/api/concurrency_limits/filter", Rule.empty_list),
    _route("POST", "/api/v2/concurrency_limits/filter", Rule.empty_list),
    _route("POST", "/api/saved_searches/filter", Rule.empty_list),
    # The new UI's (/v2) state filter offers the state names seen in every run's history, each with when it
    # was last seen: another group's "Failed, a minute ago". Empty: it then offers Prefect's own states.
    _route("GET", "/api/observed-states", Rule.empty_list),
)


def match_ui_route(method: str, path: str) -> tuple[UiRoute, dict[str, str]] | None:
    """The route `method path` matches (with its path parameters), or None when tenants may not call it."""
    for route in UI_ROUTES:
        if route.method == method:
            match = route.pattern.match(path)
            if match:
                return route, match.groupdict()
    return None
