"""A node's claim, Running and Completed written by gateway/plain_transitions.py leave the rows, the answer
and the event that Prefect's orchestration leaves; anything not plain is left to Prefect."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from packaging.version import Version
from prefect.results import ResultRecordMetadata
from prefect.serializers import JSONSerializer
from prefect.server import models, schemas
from prefect.server.database import dependencies
from prefect.server.events.clients import PrefectServerEventsClient
from prefect.server.orchestration.core_policy import CoreFlowPolicy
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

from leruli_prefect.gateway import plain_transitions

_StateType = schemas.states.StateType
# Columns a write fills anew each time (or that name the run itself).
_FRESH = {"id", "created", "updated", "name", "state_id", "flow_run_id", "result_artifact_id"}


def test_a_changed_prefect_orchestration_is_refused() -> None:
    sources = plain_transitions.prefect_sources()
    compiled, global_names = plain_transitions.compiled_rules(), plain_transitions.global_rules()
    plain_transitions.check_prefect(sources, compiled, global_names)
    with pytest.raises(ImportError, match="read it again"):
        plain_transitions.check_prefect(
            sources.replace("run_count += 1", "run_count += 2"), compiled, global_names
        )
    more_rules = {transition: [*names, "NewRule"] for transition, names in compiled.items()}
    with pytest.raises(ImportError, match="read them again"):
        plain_transitions.check_prefect(sources, more_rules, global_names)


class _World:
    """A fresh Prefect database with a flow, a pool, a queue and two deployments (one with a limit)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.events: list[Any] = []

    async def setup(self) -> None:
        self.db = dependencies.provide_database_interface()
        await self.db.create_db()
        async with self.db.session_context(begin_transaction=True) as session:
            flow = await models.flows.create_flow(session, schemas.core.Flow(name="job"))
            pool = await models.workers.create_work_pool(
                session, schemas.actions.WorkPoolCreate(name="pool", type="leruli")
            )
            queue = await models.workers.create_work_queue(
                session, pool.id, schemas.actions.WorkQueueCreate(name="queue")
            )
            self.flow_id, self.queue_id = flow.id, queue.id
            self.deployment_id = await self._deployment(session, "plain", limit=None)
            self.limited_deployment_id = await self._deployment(session, "limited", limit=2)

    async def _deployment(self, session: Any, name: str, limit: int | None) -> UUID:
        deployment = await models.deployments.create_deployment(
            session,
            schemas.core.Deployment(
                name=name,
                flow_id=self.flow_id,
                work_queue_id=self.queue_id,
                work_queue_name="queue",
                concurrency_limit=limit,
            ),
        )
        assert deployment is not None
        return deployment.id

    async def scheduled_run(self, due: datetime, *, deployment_id: UUID | None = None) -> UUID:
        scheduled = schemas.states.Scheduled(scheduled_time=due)
        async with self.db.session_context(begin_transaction=True) as session:
            run = await models.flow_runs.create_flow_run(
                session,
                schemas.core.FlowRun(
                    flow_id=self.flow_id,
                    deployment_id=deployment_id or self.deployment_id,
                    work_queue_id=self.queue_id,
                    work_queue_name="queue",
                    tags=["owner:ada"],
                    state=scheduled,
                ),
            )
        return run.id

    async def by_prefect(self, run_id: UUID, state: schemas.states.State) -> Any:
        async with self.db.session_context(begin_transaction=True) as session:
            return await models.flow_runs.set_flow_run_state(
                session,
                run_id,
                state,
                flow_policy=CoreFlowPolicy,
                orchestration_parameters={"api-version": Version("0.8.4")},
                client_version="3.9.1",
            )

    async def by_gateway(self, run_id: UUID, state: schemas.states.State) -> Any:
        async with self.db.session_context(begin_transaction=True) as session:
            return await plain_transitions.write_plain(session, run_id, state)

    def rows(self, table: str, where: str, run_id: UUID) -> list[dict[str, Any]]:
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            found = connection.execute(
                f"SELECT * FROM {table} WHERE {where} = ? ORDER BY timestamp", (str(run_id),)
            )
            return [dict(row) for row in found]

    def run_row(self, run_id: UUID) -> dict[str, Any]:
        with sqlite3.connect(self.database) as connection:
            connection.row_factory = sqlite3.Row
            return dict(connection.execute("SELECT * FROM flow_run WHERE id = ?", (str(run_id),)).fetchone())


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    fresh = dict.fromkeys(("database_config", "query_components", "orm", "interface_class"))
    monkeypatch.setattr(dependencies, "MODELS_DEPENDENCIES", fresh)
    created = _World(tmp_path / "prefect.db")

    async def keep(_client: Any, event: Any) -> None:
        created.events.append(event)

    monkeypatch.setattr(PrefectServerEventsClient, "emit", keep)
    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{created.database}"}):
        yield created


def _run_async(world: _World, steps: Any) -> Any:
    async def whole() -> Any:
        await world.setup()
        try:
            return await steps()
        finally:
            await (await world.db.engine()).dispose()

    return asyncio.run(whole())


def _states(at: datetime) -> list[schemas.states.State]:
    """A node's three proposals, with fixed times and transition ids (the same for both runs)."""
    result = ResultRecordMetadata(
        storage_key="results/job/attempt-1.json", serializer=JSONSerializer(), storage_block_id=uuid4()
    )
    proposals = [
        schemas.states.State(type=_StateType.PENDING),
        schemas.states.State(type=_StateType.RUNNING, message="on node node-a"),
        schemas.states.State(
            type=_StateType.COMPLETED, message="exit code 0", data=result.model_dump(mode="json")
        ),
    ]
    for step, state in enumerate(proposals):
        state.timestamp = at + timedelta(seconds=step)
        state.state_details.transition_id = uuid4()
    return proposals


def _same_but_ids(value: Any, ids: dict[str, str]) -> Any:
    """`value` as JSON text with each id of `ids` replaced by its name."""
    text = json.dumps(value, default=str, sort_keys=True)
    for found, name in ids.items():
        text = text.replace(found, name)
    return json.loads(text)


def _without(row: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in columns}


def test_a_claim_running_and_completed_leave_what_prefect_leaves(world: _World) -> None:
    async def steps() -> Any:
        due = datetime.now(UTC) - timedelta(seconds=5)
        prefects, ours = await world.scheduled_run(due), await world.scheduled_run(due)
        answers = []
        for state in _states(datetime.now(UTC)):
            by_prefect = await world.by_prefect(prefects, state.model_copy(deep=True, update={"id": uuid4()}))
            by_gateway = await world.by_gateway(ours, state.model_copy(deep=True, update={"id": uuid4()}))
            assert by_gateway is not None, f"{state.type} was not written as plain"
            answers.append((by_prefect, by_gateway))
        return prefects, ours, answers

    prefects, ours, answers = _run_async(world, steps)
    names = {str(prefects): "RUN", str(ours): "RUN"}
    prefect_states = world.rows("flow_run_state", "flow_run_id", prefects)
    our_states = world.rows("flow_run_state", "flow_run_id", ours)
    assert [row["type"] for row in our_states] == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    names |= {str(UUID(a["id"])): f"STATE{n}" for n, a in enumerate(prefect_states)}
    names |= {str(UUID(a["id"])): f"STATE{n}" for n, a in enumerate(our_states)}
    prefect_run, our_run = world.run_row(prefects), world.run_row(ours)
    names[prefect_run["name"]] = names[our_run["name"]] = "NAME"

    for by_prefect, by_gateway in answers:
        assert by_gateway.status == by_prefect.status == schemas.responses.SetStateStatus.ACCEPT
        ours_answer = _same_but_ids(by_gateway.model_dump(mode="json"), names)
        prefects_answer = _same_but_ids(by_prefect.model_dump(mode="json"), names)
        assert ours_answer == prefects_answer, json.dumps([ours_answer, prefects_answer], indent=1)
    assert _same_but_ids(_without(our_run, _FRESH), names) == _same_but_ids(
        _without(prefect_run, _FRESH), names
    )
    assert our_run["run_count"] == 1 and our_run["total_run_time"] is not None
    # The states the transitions wrote (the Scheduled ones were made a moment apart).
    assert [_same_but_ids(_without(row, _FRESH), names) for row in our_states[1:]] == [
        _same_but_ids(_without(row, _FRESH), names) for row in prefect_states[1:]
    ]
    # The result reference became an artifact, as Prefect stores it.
    with sqlite3.connect(world.database) as connection:
        connection.row_factory = sqlite3.Row
        stored = {
            row["flow_run_id"]: _without(dict(row), _FRESH)
            for row in connection.execute("SELECT * FROM artifact")
        }
    assert str(ours) in stored and str(prefects) in stored, (stored, ours, prefects)
    assert stored[str(ours)] == stored[str(prefects)]
    assert json.loads(stored[str(ours)]["data"])["storage_key"] == "results/job/attempt-1.json"

    # One state-change event per proposal, in order, each the same as Prefect's but for the ids.
    events = [
        event.model_dump(mode="json", exclude={"received"})
        for event in world.events
        if event.event != "prefect.flow-run.Scheduled"  # from the runs' creation
    ]
    prefect_events = [e for e in events if e["resource"]["prefect.resource.id"].endswith(str(prefects))]
    our_events = [e for e in events if e["resource"]["prefect.resource.id"].endswith(str(ours))]
    assert [e["event"] for e in our_events] == [
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.Completed",
    ]
    assert _same_but_ids(our_events, names) == _same_but_ids(prefect_events, names)


def test_what_is_not_plain_is_left_to_prefect(world: _World) -> None:
    """Nothing is written for these; Prefect's orchestration decides them (as its answers here show)."""

    async def steps() -> dict[str, Any]:
        now = datetime.now(UTC)
        seen: dict[str, Any] = {}

        async def both(what: str, run_id: UUID, state: schemas.states.State) -> None:
            seen[what] = (
                await world.by_gateway(run_id, state),
                (await world.by_prefect(run_id, state)).status,
            )

        limited = await world.scheduled_run(now, deployment_id=world.limited_deployment_id)
        await both("claim of a run whose deployment has a limit", limited, schemas.states.Pending())

        early = await world.scheduled_run(now + timedelta(hours=1))
        await world.by_prefect(early, schemas.states.Pending())  # a claim may come early; Running may not
        await both("Running before the scheduled time", early, schemas.states.Running())

        claimed = await world.scheduled_run(now)
        await world.by_gateway(claimed, schemas.states.Pending())
        await both("a second claim", claimed, schemas.states.Pending())

        repeated = await world.scheduled_run(now)
        claim = schemas.states.Pending()
        claim.state_details.transition_id = uuid4()
        await world.by_gateway(repeated, claim)
        again = schemas.states.Running()
        again.state_details.transition_id = claim.state_details.transition_id
        await both("a repeated transition id", repeated, again)

        await both("Failed (Prefect may retry it)", claimed, schemas.states.Failed())
        seen["a run that does not exist"] = (await world.by_gateway(uuid4(), schemas.states.Pending()), None)
        return seen

    seen = _run_async(world, steps)
    assert {what: written for what, (written, _) in seen.items()} == dict.fromkeys(seen)
    status = schemas.responses.SetStateStatus
    assert seen["claim of a run whose deployment has a limit"][1] == status.ACCEPT  # a slot was free
    assert seen["Running before the scheduled time"][1] == status.WAIT
    assert seen["a second claim"][1] == status.ABORT
    assert seen["a repeated transition id"][1] == status.REJECT
