"""The pool-filtered SQLite query of a node's poll (gateway/scheduled_runs_query.py) answers exactly as
Prefect's own, on a copy of a real server's database holding the queued jobs of several groups."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from prefect.server.database import query_components
from prefect.server.utilities.database import UUID as UUIDType
from prefect.server.utilities.database import Timestamp

from leruli_prefect.gateway import scheduled_runs_query
from tests import stack

SPEC = {"image": "leruli-busybox:1.0", "command": "true", "bucket": "leruli-" + "e" * 32}


def test_a_changed_prefect_template_is_refused() -> None:
    source = scheduled_runs_query.prefect_template_source()
    assert "AND fr.work_queue_id IN (SELECT id" in scheduled_runs_query.pool_filtered_source(source)
    with pytest.raises(ImportError, match="read it again"):
        scheduled_runs_query.pool_filtered_source(source.replace("ROW_NUMBER()", "RANK()"))


def _queue_jobs(server: stack.Server, group: dict[str, str], count: int) -> None:
    response = httpx.post(
        f"{server.url}/v1/jobs/batch",
        headers={"Authorization": f"Bearer {group['api_secret']}"},
        json={"jobs": [SPEC] * count},
        timeout=60,
    )
    assert response.status_code == 201, response.text


def _scheduled_run_ids(database: Path, template: str, **filters: list[UUID]) -> list[str]:
    """Run the template as Prefect's `get_scheduled_flow_runs_from_work_pool` does, on `database`."""
    rendered = query_components.jinja_env.get_template(template).render(
        work_pool_ids=filters.get("work_pool_ids"),
        work_queue_ids=filters.get("work_queue_ids"),
        respect_queue_priorities=False,
        scheduled_before=True,
        scheduled_after=None,
    )
    params = [sa.bindparam("scheduled_before", datetime.now(UTC) + timedelta(hours=1), type_=Timestamp)]
    params += [sa.bindparam(name, ids, expanding=True, type_=UUIDType) for name, ids in filters.items()]
    query = sa.text(rendered).bindparams(*params, limit=1000, worker_limit=1000, queue_limit=1000)
    engine = sa.create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return [str(row.id) for row in connection.execute(query)]
    finally:
        engine.dispose()


def test_polls_answer_as_prefects_own_query(server: stack.Server, tmp_path: Path) -> None:
    assert (server.data_dir / "prefect.db").exists()  # the session server is on SQLite
    groups = [server.init_group(name) for name in ("pollsql-a", "pollsql-b", "pollsql-c")]
    for group, count in zip(groups, (30, 5, 12), strict=True):
        _queue_jobs(server, group, count)
    copy = tmp_path / "prefect.db"
    with sqlite3.connect(server.data_dir / "prefect.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)  # a consistent copy: nodes of other tests go on claiming meanwhile
    with sqlite3.connect(copy) as db:
        pools = [UUID(row[0]) for row in db.execute("SELECT id FROM work_pool")]
        queues = [UUID(row[0]) for row in db.execute("SELECT id FROM work_queue")]
    scheduled_runs_query.install()
    prefects, ours = scheduled_runs_query.PREFECT_TEMPLATE, scheduled_runs_query.OUR_TEMPLATE

    answers = 0
    for filters in (
        *({"work_pool_ids": [pool]} for pool in pools),
        {"work_pool_ids": pools[:2]},
        {"work_queue_ids": queues[:1]},
        {"work_pool_ids": pools, "work_queue_ids": queues[1:3]},
    ):
        expected = _scheduled_run_ids(copy, prefects, **filters)
        assert _scheduled_run_ids(copy, ours, **filters) == expected, filters
        answers += bool(expected)
    assert answers >= 3  # the three groups' pools at least had runs to return
