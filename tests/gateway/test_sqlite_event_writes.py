"""Events written by gateway/sqlite_event_writes.py are the rows Prefect's own SQLite writer leaves, and a
real server (which installs it) finds a job's events through their resources."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from prefect.server.database import dependencies
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

from leruli_prefect.gateway import sqlite_event_writes
from tests import stack

# Columns that a database default fills anew on every insert.
_FRESH = {"created", "updated"}


def test_a_changed_prefect_writer_is_refused() -> None:
    source = inspect.getsource(sqlite_event_writes._prefect_writer)
    sqlite_event_writes.check_prefect_writer(source)
    with pytest.raises(ImportError, match="read it again"):
        sqlite_event_writes.check_prefect_writer(source.replace("_in_safe_batches", "_in_batches"))


def _events(count: int) -> list[ReceivedEvent]:
    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    return [
        ReceivedEvent(
            occurred=start + timedelta(seconds=n),
            event="prefect.flow-run.Scheduled",
            resource={"prefect.resource.id": f"prefect.flow-run.{uuid4()}", "prefect.resource.name": f"r{n}"},
            related=[
                {"prefect.resource.id": f"prefect.flow.{n % 3}", "prefect.resource.role": "flow"},
                {"prefect.resource.id": "prefect.tag.owner:ada", "prefect.resource.role": "tag"},
            ],
            payload={"intended": {"from": None, "to": "SCHEDULED"}, "n": n},
            id=uuid4(),
        )
        for n in range(count)
    ]


def _rows(database: Path, table: str, order: str, leave_out: set[str]) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute(f"SELECT * FROM {table} ORDER BY {order}")]
        connection.execute(f"DELETE FROM {table}")
    return [{key: value for key, value in row.items() if key not in leave_out} for row in rows]


def test_both_writers_leave_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many events in several safe batches, some of them stored already (as when the persister retries)."""
    database = tmp_path / "prefect.db"
    fresh = dict.fromkeys(("database_config", "query_components", "orm", "interface_class"))
    monkeypatch.setattr(dependencies, "MODELS_DEPENDENCIES", fresh)
    events = _events(700)  # in 27 batches within SQLite's parameter limit
    stored_before = events[::7]  # a few in every batch: Prefect's writer fails on a batch of only those

    async def write(writer: Any) -> None:
        db = dependencies.provide_database_interface()
        async with db.session_context(begin_transaction=True) as session:
            await writer(session=session, events=stored_before)
        async with db.session_context(begin_transaction=True) as session:
            await writer(session=session, events=events)
        # A batch of events all stored before: ours writes nothing, Prefect's sends an INSERT without rows.
        if writer is sqlite_event_writes.write_sqlite_events:
            async with db.session_context(begin_transaction=True) as session:
                await writer(session=session, events=stored_before)
        else:
            with pytest.raises(sa.exc.IntegrityError, match="NOT NULL"):
                async with db.session_context(begin_transaction=True) as session:
                    await writer(session=session, events=stored_before)

    async def both() -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        await dependencies.provide_database_interface().create_db()
        written = []
        for writer in (sqlite_event_writes._prefect_writer, sqlite_event_writes.write_sqlite_events):
            await write(writer)
            written.append(
                (
                    _rows(database, "events", "id", _FRESH | {"recorded"}),
                    _rows(database, "event_resources", "event_id, resource_id", _FRESH | {"id"}),
                )
            )
        await (await dependencies.provide_database_interface().engine()).dispose()
        return written

    with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{database}"}):
        (prefect_events, prefect_resources), (our_events, our_resources) = asyncio.run(both())
    assert len(prefect_events) == 700 and len(prefect_resources) == 2100
    assert our_events == prefect_events
    assert our_resources == prefect_resources


def test_a_server_finds_a_jobs_events_by_its_resources(server: stack.Server) -> None:
    """`any_resource` reads the event_resources rows: the ones this writer inserts besides the events."""
    group = server.init_group("eventrows")
    spec = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "e" * 32}
    response = httpx.post(
        f"{server.url}/v1/jobs/batch",
        headers={"Authorization": f"Bearer {group['api_secret']}"},
        json={"jobs": [spec] * 3},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    job_ids = [job["id"] for job in response.json()["jobs"]]
    found: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the event persister writes events in the background
        found = {job_id: _events_of(server, job_id) for job_id in job_ids}
        if all(found.values()):
            break
        time.sleep(0.5)
    for job_id, events in found.items():
        assert [event["event"] for event in events] == ["prefect.flow-run.Scheduled"]
        assert events[0]["resource"]["prefect.resource.id"] == f"prefect.flow-run.{job_id}"
        roles = {related["prefect.resource.role"] for related in events[0]["related"]}
        assert {"flow", "deployment", "work-queue", "work-pool"} <= roles


def _events_of(server: stack.Server, job_id: str) -> list[dict[str, Any]]:
    body = {"filter": {"any_resource": {"id": [f"prefect.flow-run.{job_id}"]}}}
    response = httpx.post(
        f"{server.url}/prefect/api/events/filter",
        headers={"Authorization": f"Bearer {server.operator_secret}"},
        json=body,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["events"]
