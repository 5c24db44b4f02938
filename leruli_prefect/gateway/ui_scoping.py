"""Rewriting the filters of the Prefect UI's requests so that they only ever match one group's objects.

Pure functions on decoded JSON. Prefect ANDs the filter objects of a body (`flow_runs`, `deployments`,
`work_pools`, ...) while each object combines its own fields with its `operator`; so the group's restriction
goes in as one whole filter object whose operator is forced to `and_` (a client's `or_` would otherwise
let its other fields pull in other pools), keeping the client's other fields as further restrictions.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from uuid import UUID

# Prefect's own limit on an event page (prefect.server.events.storage.INTERACTIVE_PAGE_SIZE).
EVENT_PAGE_SIZE = 50


class BadRequestBody(ValueError):
    """The body is not a JSON object of the shape the route takes."""


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is `{}`)."""
    if not body.strip():
        return {}
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise BadRequestBody("the request body is not JSON") from exc
    if not isinstance(decoded, dict):
        raise BadRequestBody("the request body must be a JSON object")
    return decoded


def _same_id(a: object, b: str) -> bool:
    try:
        return UUID(str(a)) == UUID(b)
    except ValueError:
        return False


def forced_filter(client_filter: object, field: str, allowed: str, *, ids: bool) -> dict[str, Any]:
    """`client_filter` with `field.any_` narrowed to `allowed` and its operator forced to `and_`.

    A client that asked for other values gets an empty `any_` (matches nothing), never the others.
    """
    forced = dict(client_filter) if isinstance(client_filter, dict) else {}
    forced["operator"] = "and_"
    asked = forced.get(field)
    wanted = asked.get("any_") if isinstance(asked, dict) else None
    if wanted is None:
        values = [allowed]
    elif isinstance(wanted, list):
        same = (lambda value: _same_id(value, allowed)) if ids else (lambda value: value == allowed)
        values = [allowed] if any(same(value) for value in wanted) else []
    else:
        raise BadRequestBody(f"{field}.any_ must be a list")
    forced[field] = {"any_": values}
    return forced


def scope_to_pool(body: dict[str, Any], pool: str) -> dict[str, Any]:
    """Flow runs, flows, deployments, work pools: only those of the group's work pool."""
    return {**body, "work_pools": forced_filter(body.get("work_pools"), "name", pool, ids=False)}


def scope_flows_to_pool(body: dict[str, Any], pool: str, deployment_id: str) -> dict[str, Any]:
    """Flows: those with a deployment in the group's pool, and whose runs asked about are the group's.

    Prefect matches a flow's `flow_runs`/`task_runs` filter against all runs of the flow, apart from its
    `work_pools` filter (two separate EXISTS), and every group's jobs run the same flow: a filter on Failed
    runs found the flow when any group had one. So the run filter gets the group's deployment too.
    """
    scoped = scope_to_pool(body, pool)
    if body.get("flow_runs") is not None or body.get("task_runs") is not None:
        scoped["flow_runs"] = forced_filter(body.get("flow_runs"), "deployment_id", deployment_id, ids=True)
    return scoped


def scope_to_deployment(body: dict[str, Any], deployment_id: str) -> dict[str, Any]:
    """Task runs, artifacts (no work-pool filter there): only those of the group's deployment's runs."""
    deployments = forced_filter(body.get("deployments"), "id", deployment_id, ids=True)
    return {**body, "deployments": deployments}


def pool_resource(pool_id: UUID) -> str:
    return f"prefect.work-pool.{pool_id}"


def scope_event_filter(client_filter: object, pool_id: UUID) -> dict[str, Any]:
    """An event filter that also requires the group's work pool among the event's resources.

    Prefect ANDs the entries of a list of `any_resource` filters; the pool matches as the event's own
    resource (the pool's events) or a related one (its flow runs', workers', deployment's events).
    """
    scoped = dict(client_filter) if isinstance(client_filter, dict) else {}
    ours = {"id": [pool_resource(pool_id)]}
    theirs = scoped.get("any_resource")
    others = [] if theirs is None else theirs if isinstance(theirs, list) else [theirs]
    scoped["any_resource"] = [ours, *(entry for entry in others if entry != ours)]
    return scoped


def scope_events_body(body: dict[str, Any], pool_id: UUID) -> dict[str, Any]:
    return {**body, "filter": scope_event_filter(body.get("filter"), pool_id)}


def scope_page_token(outer_token: str, pool_id: UUID) -> str:
    """An event page token with its filter scoped again.

    The token is unsigned: base64 (in the URL) of base64 of JSON `{filter, count, page_size, offset}`.
    A forged one could ask for any filter, so the filter is always re-scoped, and the page size capped.
    """
    try:
        inner = base64.b64decode(outer_token.encode(), validate=True)
        page = json.loads(base64.b64decode(inner, validate=True))
        page["filter"] = scope_event_filter(page["filter"], pool_id)
        page["page_size"] = max(1, min(int(page["page_size"]), EVENT_PAGE_SIZE))
        page["count"], page["offset"] = int(page["count"]), max(0, int(page["offset"]))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise BadRequestBody("malformed event page token") from exc
    inner = base64.b64encode(json.dumps(page).encode())
    return base64.b64encode(inner).decode()


def gateway_next_page(next_page: str | None, gateway_base: str) -> str | None:
    """Prefect builds `next_page` from its own mount (`<host>/api/...`), which nothing reaches around the
    gateway: point it at the gateway's `/prefect/api` instead, keeping the token."""
    if not next_page:
        return None
    _, separator, query = next_page.partition("?")
    return f"{gateway_base}/api/events/filter/next{separator}{query}"


def logs_of_runs(body: dict[str, Any], run_ids: list[str]) -> dict[str, Any]:
    """A logs filter limited to `run_ids` (already checked to be the group's), fields ANDed."""
    logs = body.get("logs")
    logs = dict(logs) if isinstance(logs, dict) else {}
    logs["operator"] = "and_"
    logs["flow_run_id"] = {"any_": run_ids}
    return {**body, "logs": logs}


def asked_ids(body: dict[str, Any], *path: str) -> list[str] | None:
    """The list at `body[path...]` (e.g. the `any_` of `logs.flow_run_id`), None when absent."""
    node: object = body
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    if not isinstance(node, list) or not all(isinstance(item, str) for item in node):
        raise BadRequestBody(f"{'.'.join(path)} must be a list of ids")
    return node
