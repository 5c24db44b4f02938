"""A node's poll of an empty queue, answered by the gateway: never hiding a due job, sparing Prefect."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from leruli_prefect.gateway.idle_polls import REAL_POLL_SECONDS, IdlePolls, _scheduled_before
from tests import stack


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_prefect_gets_a_poll_of_each_pool_every_few_seconds() -> None:
    clock = _Clock()
    polls = IdlePolls(clock)
    assert not polls.prefect_polled_lately("pool-a")  # the first poll goes to Prefect
    polls.passed("pool-a")
    clock.now += REAL_POLL_SECONDS - 0.1
    assert polls.prefect_polled_lately("pool-a")
    assert not polls.prefect_polled_lately("pool-b")
    clock.now += 0.2
    assert not polls.prefect_polled_lately("pool-a")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{}", None),
        (b"", None),
        (b'{"scheduled_before": "2026-11-27T15:00:00Z"}', datetime(2026, 11, 27, 15, tzinfo=UTC)),
        (b'{"scheduled_before": "2026-11-27 15:00:00+01:00"}', datetime(2026, 11, 27, 14, tzinfo=UTC)),
        (b'{"scheduled_before": "2026-11-27T15:00:00"}', datetime(2026, 11, 27, 15, tzinfo=UTC)),
    ],
)
def test_scheduled_before_is_read_as_prefect_reads_it(body: bytes, expected: datetime | None) -> None:
    assert _scheduled_before(body) == expected


@pytest.mark.parametrize("body", [b"[]", b'{"scheduled_before": 5}', b'{"scheduled_before": "soon"}', b"{"])
def test_a_malformed_poll_is_left_to_prefect(body: bytes) -> None:
    with pytest.raises(ValueError):
        _scheduled_before(body)


def _poll(server: stack.Server, group: dict[str, str], scheduled_before: datetime) -> httpx.Response:
    return httpx.post(
        f"{server.url}/prefect/api/work_pools/{group['work_pool']}/get_scheduled_flow_runs",
        headers=stack.node_headers(group),
        json={"scheduled_before": scheduled_before.isoformat(), "limit": 5},
        timeout=30,
    )


@stack.on_both_databases
def test_a_due_job_is_never_hidden_from_a_poll(server: stack.Server) -> None:
    group = server.init_group(f"polls-{uuid.uuid4().hex[:8]}")
    now = datetime.now(UTC)
    assert _poll(server, group, now).json() == []  # to Prefect: the pool was not polled yet
    submitted = stack.submit_unstaged_job(server, group)
    # Within seconds of Prefect's last poll (the gateway answers polls of an empty queue itself), a poll
    # still gets the job the moment it is due, and not before.
    assert _poll(server, group, now - timedelta(hours=1)).json() == []
    offered = _poll(server, group, datetime.now(UTC) + timedelta(seconds=10)).json()
    assert [run["flow_run"]["id"] for run in offered] == [submitted]


def test_an_idle_poll_is_answered_without_prefect(server: stack.Server) -> None:
    group = server.init_group(f"polls-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    assert _poll(server, group, datetime.now(UTC)).json() == []
    first = stack.wait_until_polled(server, group["work_pool"])
    for _ in range(5):
        response = _poll(server, group, datetime.now(UTC))
        assert response.status_code == 200
        assert response.json() == []
    time.sleep(1)
    assert time.monotonic() - started < REAL_POLL_SECONDS, "too slow to tell: the next poll goes to Prefect"
    assert stack.queue_last_polled(server, group["work_pool"]) == first
