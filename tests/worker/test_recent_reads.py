"""The node's short memory of reads it repeats for every claim."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from prefect.workers.base import BaseWorker

from leruli_prefect.worker.recent_reads import RecentReads
from tests.worker.private_hooks import assert_hook_still_used


class CountingApi:
    def __init__(self) -> None:
        self.asked: list[UUID] = []
        self.fail = False

    async def read(self, object_id: UUID) -> str:
        self.asked.append(object_id)
        if self.fail:
            raise RuntimeError("api down")
        return f"deployment {object_id}"


@pytest.mark.anyio
async def test_a_read_is_remembered_per_id_until_it_expires() -> None:
    api = CountingApi()
    first, second = uuid4(), uuid4()
    remembered = RecentReads(api.read, ttl=60)

    assert await remembered(first) == f"deployment {first}"
    assert await remembered(first) == f"deployment {first}"
    assert await remembered(second) == f"deployment {second}"
    assert api.asked == [first, second]

    expired = RecentReads(api.read, ttl=0)
    await expired(first)
    await expired(first)
    assert api.asked == [first, second, first, first]


@pytest.mark.anyio
async def test_a_failed_read_is_not_remembered() -> None:
    api = CountingApi()
    remembered = RecentReads(api.read, ttl=60)
    object_id = uuid4()
    api.fail = True
    with pytest.raises(RuntimeError):
        await remembered(object_id)
    api.fail = False
    assert await remembered(object_id) == f"deployment {object_id}"
    assert api.asked == [object_id, object_id]


def test_the_submitting_hook_we_silence_still_exists() -> None:
    # LeruliWorker skips Prefect's Submitting state by overriding this private hook; if Prefect renames it,
    # the extra state comes back silently: this test fails first.
    assert_hook_still_used(
        "_propose_submitting_state", ["self", "flow_run"], BaseWorker._submit_run_and_capture_errors
    )


def test_the_labels_hook_we_silence_still_exists() -> None:
    # LeruliWorker leaves a claimed run's labels to the gateway (claim_labels.py) by overriding this private
    # hook; if Prefect renames it, the labels request comes back silently: this test fails first.
    assert_hook_still_used(
        "_give_worker_labels_to_flow_run", ["self", "flow_run_id"], BaseWorker._submit_run_and_capture_errors
    )
