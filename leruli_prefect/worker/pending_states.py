"""Final states a node has not got through to the gateway yet, written to its data dir so none is dropped.

A job's final state is written here before it is sent, and removed once the gateway has answered. The node
keeps trying while it runs (no time limit: a job must never stay Running because a server was away long);
a node that stopped meanwhile finds the note at its next start and sends it then (`waiting`). Each note holds
the state as Prefect's API takes it (`StateCreate`, result reference included) and the job's attempt, so a
restarted node never ends a newer attempt of the job.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from prefect.client.schemas import OrchestrationResult
from prefect.states import to_state_create

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.states import State

PENDING_DIR = "pending-states"


@dataclass(frozen=True)
class PendingState:
    flow_run_id: UUID
    attempt: int
    state: dict[str, Any]  # a `StateCreate` as JSON

    @property
    def name(self) -> str:
        return str(self.state.get("name") or self.state.get("type"))


def pending_dir(data_dir: Path) -> Path:
    return data_dir / PENDING_DIR


def save(data_dir: Path, flow_run_id: UUID, attempt: int, state: State[Any]) -> PendingState:
    """Write the note for a final state about to be sent (atomically: a crash leaves the old one or none)."""
    body = to_state_create(state).model_dump(mode="json", serialize_as_any=True)
    pending = PendingState(flow_run_id, attempt, body)
    directory = pending_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    note = directory / f"{flow_run_id}.json"
    partial = note.with_suffix(".json.partial")
    partial.write_text(json.dumps({"flow_run_id": str(flow_run_id), "attempt": attempt, "state": body}))
    os.replace(partial, note)
    return pending


def drop(data_dir: Path, flow_run_id: UUID) -> None:
    """The gateway has answered: the note is done with."""
    (pending_dir(data_dir) / f"{flow_run_id}.json").unlink(missing_ok=True)


def waiting(data_dir: Path) -> list[PendingState]:
    """The notes a node left when it stopped before the gateway answered."""
    directory = pending_dir(data_dir)
    if not directory.is_dir():
        return []
    found = []
    for note in sorted(directory.glob("*.json")):
        try:
            content = json.loads(note.read_text())
            found.append(
                PendingState(UUID(content["flow_run_id"]), int(content["attempt"]), content["state"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one of ours, or cut short (never: written atomically)
    return found


async def send(client: PrefectClient, pending: PendingState) -> OrchestrationResult[Any]:
    """Propose the state, as Prefect's `set_flow_run_state` does (from the saved `StateCreate`)."""
    state = dict(pending.state)
    state["state_details"] = {
        **(state.get("state_details") or {}),
        "flow_run_id": str(pending.flow_run_id),
        "transition_id": str(uuid4()),
    }
    response = await client.request(
        "POST",
        "/flow_runs/{id}/set_state",
        path_params={"id": pending.flow_run_id},
        json={"state": state, "force": False},
    )
    return OrchestrationResult.model_validate(response.json())
