"""A node's poll that finds jobs, answered by the gateway with Prefect's own query, as Prefect answers it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leruli_prefect.gateway import due_polls
from leruli_prefect.gateway.due_polls import NotPlain, read_poll
from leruli_prefect.gateway.idle_polls import REAL_POLL_SECONDS
from tests import stack

# Computed by Prefect from the clock at the moment of each answer: they differ between any two answers.
_MOMENTARY = ("estimated_start_time_delta", "estimated_run_time")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{}", ([], None, None, 200)),
        (b"", ([], None, None, 200)),
        (
            b'{"work_queue_names": ["default"], "scheduled_before": "2026-11-27T15:00:00", "limit": 64}',
            (["default"], datetime(2026, 11, 27, 15, tzinfo=UTC), None, 64),
        ),
        (
            b'{"scheduled_after": "2026-11-27T15:00:00+01:00", "limit": null, "work_queue_names": null}',
            ([], None, datetime(2026, 11, 27, 14, tzinfo=UTC), 200),
        ),
    ],
)
def test_a_plain_poll_is_read_as_prefect_reads_it(body: bytes, expected: tuple[Any, ...]) -> None:
    assert read_poll(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"limit": 201}',  # Prefect refuses it (422)
        b'{"limit": -1}',
        b'{"limit": true}',
        b'{"limit": "5"}',
        b'{"work_queue_names": "default"}',
        b'{"scheduled_before": 5}',
        b'{"scheduled_before": "soon"}',
        b'{"respect_queue_priorities": false}',  # not a field of Prefect's poll
        b"[]",
        b"{",
    ],
)
def test_any_other_poll_is_left_to_prefect(body: bytes) -> None:
    with pytest.raises(ValueError):  # NotPlain, or the JSON error
        read_poll(body)
    assert issubclass(NotPlain, ValueError)


def _poll(server: stack.Server, group: dict[str, str], body: dict[str, Any], *, node: bool) -> httpx.Response:
    if node:
        headers = {
            "X-Leruli-Group-Token": group["group_token"],
            "X-Leruli-Compute-Secret": group["compute_secret"],
        }
    else:  # the operator's poll always goes to Prefect
        headers = {"Authorization": f"Bearer {server.operator_secret}"}
    url = f"{server.url}/prefect/api/work_pools/{group['work_pool']}/get_scheduled_flow_runs"
    return httpx.post(url, headers=headers, json=body, timeout=30)


def _steady(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for offered in answer:
        for key in _MOMENTARY:
            offered["flow_run"].pop(key, None)
    return answer


@stack.on_both_databases
def test_a_poll_that_finds_jobs_gets_prefects_own_answer_without_prefect(server: stack.Server) -> None:
    group = server.init_group(f"due-{uuid.uuid4().hex[:8]}")
    started = time.monotonic()
    assert _poll(server, group, {}, node=True).json() == []  # to Prefect: the pool was not polled yet
    jobs = [stack.submit_unstaged_job(server, group) for _ in range(3)]
    first = stack.wait_until_polled(server, group["work_pool"])
    soon = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    bodies = [
        {"scheduled_before": soon, "limit": 2},
        {"scheduled_before": soon, "work_queue_names": ["default"]},
        {"scheduled_before": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    ]
    answers = [_poll(server, group, body, node=True) for body in bodies]
    assert all(answer.status_code == 200 for answer in answers), [answer.text for answer in answers]
    time.sleep(1)
    assert time.monotonic() - started < REAL_POLL_SECONDS, "too slow to tell: the next poll goes to Prefect"
    assert stack.queue_last_polled(server, group["work_pool"]) == first  # none of these reached Prefect

    offered = [[run["flow_run"]["id"] for run in answer.json()] for answer in answers]
    assert offered == [jobs[:2], jobs, []]  # oldest first, up to the limit, only what is due
    for body, answer in zip(bodies, answers, strict=True):
        prefects = _poll(server, group, body, node=False)
        assert prefects.status_code == 200, prefects.text
        assert _steady(answer.json()) == _steady(prefects.json())


def test_a_poll_of_a_queue_the_pool_lacks_gets_prefects_404(server: stack.Server) -> None:
    group = server.init_group(f"due-{uuid.uuid4().hex[:8]}")
    assert _poll(server, group, {}, node=True).json() == []
    stack.submit_unstaged_job(server, group)
    missing = _poll(server, group, {"work_queue_names": ["no-such-queue"]}, node=True)
    assert missing.status_code == 404, missing.text


@pytest.mark.anyio
async def test_a_database_error_leaves_the_poll_to_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    def busy() -> None:
        raise sa.exc.OperationalError("BEGIN", {}, Exception("database is locked"))

    monkeypatch.setattr(due_polls, "provide_database_interface", busy)
    assert await due_polls.answer_poll("pool", b'{"limit": 5}') is None
