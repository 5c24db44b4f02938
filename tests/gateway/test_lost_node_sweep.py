"""The sweeper's rule for a lost worker: silent for 3 of its own heartbeat intervals; and every worker read,
however many pages the server splits them into (no server; the held runs' query runs in
tests/worker/test_lost_nodes.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from prefect.client.schemas.objects import Worker

from leruli_prefect.attempts import HOLDER_LABEL
from leruli_prefect.gateway.lost_nodes import LOST_AFTER_HEARTBEATS, HeldRun, is_lost, sweep_once

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _worker(silent_s: float | None, interval: int | None = 10) -> Worker:
    return Worker(
        name="node",
        work_pool_id=uuid4(),
        last_heartbeat_time=None if silent_s is None else NOW - timedelta(seconds=silent_s),
        heartbeat_interval_seconds=interval,
    )


def test_a_worker_is_lost_after_three_of_its_own_intervals() -> None:
    assert not is_lost(_worker(LOST_AFTER_HEARTBEATS * 10 - 1), NOW)
    assert is_lost(_worker(LOST_AFTER_HEARTBEATS * 10 + 1), NOW)
    assert is_lost(_worker(7, interval=2), NOW)


def test_a_worker_without_a_stated_interval_gets_prefects_default() -> None:
    assert not is_lost(_worker(60, interval=None), NOW)
    assert is_lost(_worker(91, interval=None), NOW)


def test_an_unknown_worker_is_given_time() -> None:
    assert not is_lost(None, NOW)
    assert not is_lost(_worker(None), NOW)


def test_silence_while_the_server_was_down_does_not_count() -> None:
    started = NOW - timedelta(seconds=5)
    assert is_lost(_worker(LOST_AFTER_HEARTBEATS * 10 + 60), NOW)
    assert not is_lost(_worker(LOST_AFTER_HEARTBEATS * 10 + 60), NOW, up_since=started)
    assert is_lost(
        _worker(LOST_AFTER_HEARTBEATS * 10 + 60), started + timedelta(seconds=31), up_since=started
    )


class _PagedPrefect:
    """Prefect's API as the sweeper reads it: at most `page` workers per read, as the server does."""

    def __init__(
        self, runs: list[HeldRun], workers: list[Worker], page: int, refused: UUID | None = None
    ) -> None:
        self.runs, self.workers, self.page = runs, workers, page
        self.refused = refused  # a run whose write-off the server refuses
        self.written_off: list[UUID] = []

    async def held_runs(self) -> list[HeldRun]:
        return self.runs

    async def read_workers_for_work_pool(
        self, pool: str, *, limit: int | None = None, offset: int | None = None
    ) -> list[Worker]:
        return self.workers[offset or 0 : (offset or 0) + min(limit or self.page, self.page)]

    async def update_flow_run_labels(self, flow_run_id: UUID, labels: dict[str, Any]) -> None:
        if flow_run_id == self.refused:
            raise RuntimeError("409: refused")
        self.written_off.append(flow_run_id)

    async def set_flow_run_state(self, flow_run_id: UUID, state: Any, force: bool = False) -> None:
        pass


def _held_run(holder: str) -> HeldRun:
    return HeldRun(uuid4(), {HOLDER_LABEL: holder}, "pool")


def test_a_lost_run_past_the_first_page_is_written_off() -> None:
    """More workers than one read returns: the lost node is the last of them, its run the last held."""
    busy = [_worker(1, interval=10).model_copy(update={"name": f"node-{n}"}) for n in range(450)]
    lost = _worker(LOST_AFTER_HEARTBEATS * 10 + 1).model_copy(update={"name": "lost-node"})
    runs = [_held_run(f"node-{n}") for n in range(450)] + [_held_run("lost-node")]
    prefect = _PagedPrefect(runs, [*busy, lost], page=200)
    for worker in prefect.workers:  # silent for as long as _worker says, counted from now
        worker.last_heartbeat_time = datetime.now(UTC) - (NOW - worker.last_heartbeat_time)
    written_off = asyncio.run(sweep_once(prefect, held_runs=prefect.held_runs))  # type: ignore[arg-type]
    assert [run.id for run in written_off] == prefect.written_off == [runs[-1].id]


def test_a_run_that_cannot_be_written_off_does_not_hide_the_next() -> None:
    lost = _worker(LOST_AFTER_HEARTBEATS * 10 + 1).model_copy(update={"name": "lost-node"})
    lost.last_heartbeat_time = datetime.now(UTC) - (NOW - lost.last_heartbeat_time)
    runs = [_held_run("lost-node"), _held_run("lost-node")]
    prefect = _PagedPrefect(runs, [lost], page=200, refused=runs[0].id)
    written_off = asyncio.run(sweep_once(prefect, held_runs=prefect.held_runs))  # type: ignore[arg-type]
    assert [run.id for run in written_off] == prefect.written_off == [runs[1].id]
