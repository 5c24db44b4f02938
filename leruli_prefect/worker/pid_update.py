"""Prefect's worker records each job's container name as its flow run's `infrastructure_pid`, in a request of
its own once the container has started: about 13 ms of the server's CPU per job (bench/RESULTS.md, row 2).

Only Prefect's worker-side cancel of a still-Pending run reads it, to kill that run's infrastructure; it is
off on our nodes (`PREFECT_WORKER_ENABLE_CANCELLATION`). With it on, such a run is marked Cancelled without
the kill, and the node's own cancel watch (`worker/cancellation.py`) stops the container, which it knows by
name (`container_runner.container_name`). So a node leaves that update out; any other update goes through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Update = Callable[..., Awaitable[Any]]


def without_infrastructure_pid(update_flow_run: Update) -> Update:
    """`PrefectClient.update_flow_run`, sending nothing when the only change is the `infrastructure_pid`."""

    async def update(*args: Any, infrastructure_pid: str | None = None, **changes: Any) -> Any:
        if not args[1:] and not changes.keys() - {"flow_run_id"}:
            return None
        return await update_flow_run(*args, **changes)

    return update
