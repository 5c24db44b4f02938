"""Filling a group's queue with 10,000 jobs within the benchmark's time budget.

Through the REST API a job costs the server a full flow run creation (about 5–20 runs/s on this machine),
so 10,000 would take many minutes. Until the bulk path exists, the queue is filled the way a bulk insert
would fill it: a sample is submitted through `POST /v1/jobs` concurrently (its rate is a figure of its
own), then the first of them is cloned row by row in Prefect's SQLite database (its flow run and its
Scheduled state, with new ids), in one transaction. The clones are indistinguishable from REST-made jobs
to every read path measured (list, status, the node's polling).
"""

from __future__ import annotations

import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.batch_submission import submit_in_bulk
from bench.bench_stack import CONCURRENCY
from bench.job_submission import post_job, trivial_spec
from bench.timing import timed
from leruli_prefect.client import GatewayClient

if TYPE_CHECKING:
    from uuid import UUID

    from bench.bench_stack import BenchStack


@dataclass(frozen=True)
class Backlog:
    job_ids: list[UUID]
    rest_jobs: int
    rest_rate: float  # jobs/s through concurrent POST /v1/jobs
    cloned_jobs: int
    clone_rate: float  # runs/s by the bulk insert


def seed_backlog(bench: BenchStack, group: str, total: int, rest_sample: int) -> Backlog:
    spec = trivial_spec()
    with timed() as span, ThreadPoolExecutor(CONCURRENCY) as pool:
        rest_ids = list(pool.map(lambda _: post_job(bench, group, spec), range(rest_sample)))
    rest_rate = rest_sample / span.seconds
    clones = total - rest_sample
    with timed() as span:
        if hasattr(GatewayClient, "submit_jobs"):  # the bulk path: `POST /v1/jobs/batch`
            cloned_ids = submit_in_bulk(bench, group, [spec] * clones)
        else:
            cloned_ids = clone_flow_run(bench.server.data_dir / "prefect.db", rest_ids[0], clones)
    return Backlog(
        job_ids=rest_ids + cloned_ids,
        rest_jobs=rest_sample,
        rest_rate=rest_rate,
        cloned_jobs=clones,
        clone_rate=clones / span.seconds if clones else 0.0,
    )


def clone_flow_run(database: object, template_id: UUID, copies: int) -> list[UUID]:
    """Insert `copies` copies of a Scheduled flow run (and its state row) with fresh ids; returns them."""
    connection = sqlite3.connect(str(database), timeout=120)
    connection.row_factory = sqlite3.Row
    try:
        run = dict(connection.execute("SELECT * FROM flow_run WHERE id = ?", (str(template_id),)).fetchone())
        state = dict(
            connection.execute("SELECT * FROM flow_run_state WHERE id = ?", (run["state_id"],)).fetchone()
        )
        new_ids = [uuid.uuid4() for _ in range(copies)]
        runs, states = [], []
        for index, run_id in enumerate(new_ids):
            state_id = str(uuid.uuid4())
            runs.append({**run, "id": str(run_id), "name": f"backlog-{index:05d}", "state_id": state_id})
            states.append({**state, "id": state_id, "flow_run_id": str(run_id)})
        with connection:  # one transaction
            connection.executemany(_insert("flow_run", run), runs)
            connection.executemany(_insert("flow_run_state", state), states)
        return new_ids
    finally:
        connection.close()


def _insert(table: str, row: dict[str, object]) -> str:
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f":{name}" for name in row)
    return f"INSERT INTO {table} ({columns}) VALUES ({values})"
