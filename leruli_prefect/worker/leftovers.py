"""What a node left behind when it died (kill -9, power loss): its job containers and run dirs.

A restarted node finds its own containers by label (several nodes may share one Docker engine, so the label
names the node's data dir) and its run dirs by name (each is named after its flow run), removes them, and
reports those jobs as lost. Blocking calls; the worker runs them in a thread.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from leruli_prefect.worker.container_runner import ATTEMPT_LABEL, FLOW_RUN_LABEL, NODE_LABEL

if TYPE_CHECKING:
    import docker


def node_label_value(data_dir: Path) -> str:
    """What names a node's containers: its data dir, which no two nodes share."""
    return str(data_dir.resolve())


def remove_leftovers(client: docker.DockerClient, data_dir: Path) -> dict[str, int | None]:
    """Remove this node's containers and run dirs; returns the flow run ids they belonged to, each with the
    attempt its container ran (None: only a run dir was left, the attempt is unknown)."""
    attempts: dict[str, int | None] = {}
    containers = client.containers.list(
        all=True, filters={"label": f"{NODE_LABEL}={node_label_value(data_dir)}"}
    )
    for container in containers:
        attempt = container.labels.get(ATTEMPT_LABEL, "1")
        attempts[container.labels[FLOW_RUN_LABEL]] = int(attempt) if attempt.isdigit() else None
        container.remove(force=True)
    runs = data_dir / "runs"
    if runs.is_dir():
        for path in runs.iterdir():
            attempts.setdefault(path.name.removesuffix(".tgz"), None)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return {run_id: attempt for run_id, attempt in attempts.items() if _is_uuid(run_id)}


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
