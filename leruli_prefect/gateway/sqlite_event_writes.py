"""Prefect's events written to SQLite with one statement per table and batch, as Prefect writes PostgreSQL.

Every job makes Prefect events (its Scheduled state at creation, then each state it goes through), and the
server's event persister writes them in batches. On SQLite, Prefect 3.9 writes each batch as one multi-row
`INSERT ... VALUES (...), (...), ...`, one for the events and one for their resources: SQLAlchemy compiles
such a statement afresh for every batch, a bind parameter at a time: 13 per event and 8 per resource it names.
py-spy on the server during `POST /v1/jobs/batch` of 1,000 jobs: a third of its CPU in that compilation.

So the gateway replaces Prefect's SQLite writer with the same steps given the rows as a list (an
`executemany` of one cached statement), which is how Prefect's own PostgreSQL writer already does it: the
same rows, the same check for events stored before. A batch holding only such events writes nothing here;
Prefect's writer sends an `INSERT` without rows for it, which fails (the test shows both). Measured: a batch
of 1,000 jobs cost the server 5.9-6.3 ms of CPU per job, its events' persisting included, and 3.3-4.1 ms
with this writer (bench/RESULTS.md).

This goes below Prefect's public classes: it refuses to install unless Prefect's writer is the one it was
written against (its source's sha256), and tests/gateway/test_sqlite_event_writes.py proves that both writers
leave the same rows.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any

import prefect
import sqlalchemy as sa
from prefect.server.database import db_injector
from prefect.server.events.storage import database as prefect_event_storage

from leruli_prefect.gateway.scheduled_runs_query import PINNED_PREFECT

if TYPE_CHECKING:
    from prefect.server.events.schemas.events import ReceivedEvent
    from sqlalchemy.ext.asyncio import AsyncSession

# sha256 of Prefect 3.9.1's `_write_sqlite_events` source: any change to it must be read before replacing it.
PREFECT_WRITER_SHA256 = "df0fa1ecaf56fa30be2fb30c1948695d058a70be6713916853aa92bcf3938989"

_prefect_writer = prefect_event_storage._write_sqlite_events


@db_injector
async def write_sqlite_events(db: Any, session: AsyncSession, events: list[ReceivedEvent]) -> None:
    """Prefect's `_write_sqlite_events`, each batch's rows inserted by `executemany`."""
    for batch in prefect_event_storage._in_safe_batches(events):  # the IN list below stays within limits
        found = await session.scalars(
            sa.select(db.Event.id).where(db.Event.id.in_({event.id for event in batch}))
        )
        stored = set(found.all())
        new = [event for event in batch if event.id not in stored]
        if not new:
            continue
        await session.execute(db.queries.insert(db.Event), [event.as_database_row() for event in new])
        resource_rows = [row for event in new for row in event.as_database_resource_rows()]
        if resource_rows:
            await session.execute(db.queries.insert(db.EventResource), resource_rows)


def check_prefect_writer(source: str) -> None:
    if hashlib.sha256(source.encode()).hexdigest() != PREFECT_WRITER_SHA256:
        raise ImportError(
            "leruli_prefect.gateway.sqlite_event_writes is written for Prefect 3.9.1's _write_sqlite_events,"
            f" and Prefect {prefect.__version__} has another: read it again before replacing it"
        )


def install() -> None:
    """Make Prefect's event persister use `write_sqlite_events` on SQLite (idempotent)."""
    if not prefect.__version__.startswith(PINNED_PREFECT):  # pragma: no cover - guards an upgrade
        raise ImportError(f"sqlite_event_writes is written for Prefect {PINNED_PREFECT}x")
    check_prefect_writer(inspect.getsource(_prefect_writer))
    # `write_events` looks the writer up in its module at every call.
    prefect_event_storage._write_sqlite_events = write_sqlite_events
