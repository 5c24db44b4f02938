"""One read per round for every run a node watches (`run_reads`), without a server."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID, uuid4

import pytest

from leruli_prefect.worker.run_reads import RunReads, WatchedRun

INTERVAL = 0.05


def _run(state_type: str) -> WatchedRun:
    return WatchedRun(state_type, None, {}, [])


class Server:
    def __init__(self) -> None:
        self.calls: list[list[UUID]] = []
        self.states: dict[UUID, str] = {}
        self.fail_next = False

    async def read_many(self, run_ids: Sequence[UUID]) -> dict[UUID, WatchedRun]:
        self.calls.append(sorted(run_ids))
        if self.fail_next:
            self.fail_next = False
            raise OSError("gateway away")
        return {run_id: _run(self.states[run_id]) for run_id in run_ids if run_id in self.states}


@pytest.mark.anyio
async def test_the_watches_of_all_jobs_share_one_read_per_round() -> None:
    server = Server()
    runs = [uuid4() for _ in range(5)]
    server.states = {run_id: "RUNNING" for run_id in runs[:4]}  # the fifth is not (or no longer) there
    reads = RunReads(server.read_many, interval=INTERVAL)
    found = await asyncio.gather(*(reads.next(run_id) for run_id in runs), reads.next(runs[0]))
    assert server.calls == [sorted(runs)]  # one request for all, each run asked once
    assert [run.state_type if run else None for run in found] == ["RUNNING"] * 4 + [None, "RUNNING"]
    server.states[runs[1]] = "CANCELLING"
    assert (await reads.next(runs[1])).state_type == "CANCELLING"  # type: ignore[union-attr]
    assert server.calls[1] == [runs[1]]


@pytest.mark.anyio
async def test_a_failed_read_reaches_every_watch_and_the_next_round_reads_again() -> None:
    server = Server()
    runs = [uuid4(), uuid4()]
    server.states = {run_id: "RUNNING" for run_id in runs}
    server.fail_next = True
    reads = RunReads(server.read_many, interval=INTERVAL)
    failed = await asyncio.gather(*(reads.next(run_id) for run_id in runs), return_exceptions=True)
    assert all(isinstance(result, OSError) for result in failed)
    assert (await reads.next(runs[0])).state_type == "RUNNING"  # type: ignore[union-attr]
    assert len(server.calls) == 2


@pytest.mark.anyio
async def test_a_watch_that_stops_waiting_is_left_out_and_no_reads_without_watches() -> None:
    server = Server()
    gone, kept = uuid4(), uuid4()
    server.states = {gone: "RUNNING", kept: "RUNNING"}
    reads = RunReads(server.read_many, interval=INTERVAL)
    stopped = asyncio.ensure_future(reads.next(gone))
    await asyncio.sleep(0)
    stopped.cancel()  # the job ended: its watch task was cancelled mid-wait
    assert (await reads.next(kept)).state_type == "RUNNING"  # type: ignore[union-attr]
    assert server.calls == [[kept]]
    await asyncio.sleep(INTERVAL * 4)
    assert len(server.calls) == 1  # nobody waits: no more reads
