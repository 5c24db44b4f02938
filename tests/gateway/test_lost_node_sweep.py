"""The sweeper's rule for a lost worker: silent for 3 of its own heartbeat intervals (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from prefect.client.schemas.objects import Worker

from leruli_prefect.gateway.lost_nodes import LOST_AFTER_HEARTBEATS, is_lost

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
