"""A node takes the next run its last poll offered while that poll is fresh, without asking the server again;
stale offers, none left and a refused claim make it ask (narrow tests with a fake poll; the real node's polls
are counted in test_polling.py)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import anyio
import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import WorkerFlowRunResponse

from leruli_prefect.job_spec import JobSpec
from leruli_prefect.worker.kept_offers import KeptOffers
from leruli_prefect.worker.leruli_worker import LeruliWorker
from tests.worker.offline_config import offline_node_config


def _offer(cores: int = 1) -> WorkerFlowRunResponse:
    spec = JobSpec(image="bash:5", command="true", cores=cores, memory_mb=64, bucket="leruli-" + "a" * 32)
    flow_run = FlowRun(id=uuid4(), flow_id=uuid4(), parameters=spec.model_dump())
    return WorkerFlowRunResponse(work_pool_id=uuid4(), work_queue_id=uuid4(), flow_run=flow_run)


def _ids(offers: list[WorkerFlowRunResponse]) -> list[object]:
    return [offer.flow_run.id for offer in offers]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_kept_offers_are_the_untaken_ones_in_order_until_stale_or_forgotten() -> None:
    clock = Clock()
    kept = KeptOffers(kept_seconds=5.0, clock=clock)
    offers = [_offer() for _ in range(4)]
    kept.keep(offers, taken=[offers[0]])
    assert _ids(kept.fresh()) == _ids(offers[1:])
    kept.drop([offers[2]])
    clock.now += 5.0
    assert _ids(kept.fresh()) == _ids([offers[1], offers[3]])
    clock.now += 0.1
    assert kept.fresh() == []
    kept.keep(offers, taken=[])
    kept.forget()
    assert kept.fresh() == []


class FakePolls:
    """`LeruliWorker._scheduled_runs` answering from a list, counting the questions."""

    def __init__(self, offers: list[WorkerFlowRunResponse]) -> None:
        self.offers = offers
        self.asked = 0

    async def __call__(self, limit: int | None) -> list[WorkerFlowRunResponse]:
        self.asked += 1
        return list(self.offers)


@pytest.fixture
def one_slot_worker(tmp_path: Path) -> LeruliWorker:
    config = offline_node_config(tmp_path, slots=1, cores=1, memory_mb=1024)
    return LeruliWorker(work_pool_name="leruli-kept", node_config=config)


@pytest.mark.anyio
async def test_a_poll_takes_the_next_kept_offer_and_asks_only_when_none_is_left(
    one_slot_worker: LeruliWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = one_slot_worker
    offers = [_offer() for _ in range(3)]
    polls = FakePolls(offers)
    monkeypatch.setattr(worker, "_scheduled_runs", polls)

    first = await worker._get_scheduled_flow_runs()
    assert len(first) == 1 and polls.asked == 1  # one slot: one run taken, two kept
    order = _ids(first) + _ids(worker._kept.fresh())
    assert sorted(map(str, order)) == sorted(str(offer.flow_run.id) for offer in offers)

    for expected in order[1:]:
        worker.capacity.release(worker.capacity.jobs[0])  # the slot's job has ended
        taken = await worker._get_scheduled_flow_runs()
        assert _ids(taken) == [expected] and polls.asked == 1

    worker.capacity.release(worker.capacity.jobs[0])
    polls.offers = []
    assert await worker._get_scheduled_flow_runs() == [] and polls.asked == 2  # none kept: asks


@pytest.mark.anyio
async def test_stale_offers_are_not_taken(
    one_slot_worker: LeruliWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = one_slot_worker
    clock = Clock()
    worker._kept = KeptOffers(kept_seconds=5.0, clock=clock)
    polls = FakePolls([_offer() for _ in range(3)])
    monkeypatch.setattr(worker, "_scheduled_runs", polls)

    await worker._get_scheduled_flow_runs()
    worker.capacity.release(worker.capacity.jobs[0])
    clock.now += 5.1
    assert len(await worker._get_scheduled_flow_runs()) == 1 and polls.asked == 2


@pytest.mark.anyio
async def test_a_refused_claim_forgets_the_kept_offers(
    one_slot_worker: LeruliWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = one_slot_worker
    monkeypatch.setattr(worker, "_scheduled_runs", FakePolls([_offer() for _ in range(3)]))
    await worker._get_scheduled_flow_runs()
    assert len(worker._kept.fresh()) == 2
    # Prefect's worker claimed the run taken and was refused: it holds no limiter token for it any more.
    worker._limiter = anyio.CapacityLimiter(2)
    await worker.get_and_submit_flow_runs()
    assert worker.capacity.jobs == []
    assert worker._kept.fresh() == []
