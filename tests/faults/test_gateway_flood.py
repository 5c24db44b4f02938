"""The gateway is flooded: many concurrent clients on 127.0.0.1 submit jobs and read them for a while.

No 5xx except explicit 503s with `Retry-After`; the server's memory stays bounded; afterwards every accepted
job exists exactly once (each submission carries an idempotency key and is retried under it until answered).
Size: `LERULI_FAULT_FLOOD_CLIENTS` clients (default 100) for `LERULI_FAULT_FLOOD_SECONDS` (default 15).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections import Counter

import httpx
import pytest

from leruli_prefect.storage.buckets import new_bucket_name
from tests import stack
from tests.faults.conftest import report
from tests.worker.node_stack import prefect_api

CLIENTS = int(os.environ.get("LERULI_FAULT_FLOOD_CLIENTS", "100"))
SECONDS = float(os.environ.get("LERULI_FAULT_FLOOD_SECONDS", "15"))
SUBMIT_SHARE = 0.3
RSS_GROWTH_LIMIT_MB = 400  # what a bounded server may add under this flood; a leak per request grows past it


@pytest.fixture(scope="module")
def flooded(server: stack.Server) -> stack.Server:
    """The session's server, with a group of its own for the flood (its jobs wait: no node serves it)."""
    server.init_group("flood")
    return server


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Flood:
    """What the clients saw: statuses, the jobs accepted per idempotency key, keys still unanswered."""

    def __init__(self, server: stack.Server, group: dict[str, str]) -> None:
        self.url = server.url
        self.headers = {"Authorization": f"Bearer {group['api_secret']}"}
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.accepted: dict[str, str] = {}
        self.unanswered: set[str] = set()
        self.no_answer = 0  # requests that timed out or lost their connection
        self.latencies: list[float] = []

    def _check(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        self.latencies.append(response.elapsed.total_seconds())
        if response.status_code == 503 and "retry-after" in response.headers:
            return
        if response.status_code >= 500:
            self.bad.append(f"{response.request.method} {response.request.url.path}: {response.status_code}")

    async def submit(self, client: httpx.AsyncClient, key: str, deadline: float) -> None:
        body = {
            "image": stack.TEST_IMAGE,
            "command": "true",
            "bucket": new_bucket_name(),
            "idempotency_key": key,
        }
        self.unanswered.add(key)
        while time.monotonic() < deadline:
            try:
                response = await client.post(f"{self.url}/v1/jobs", json=body, headers=self.headers)
            except httpx.TransportError:
                self.no_answer += 1
                await asyncio.sleep(0.5)
                continue  # same key: a second job cannot appear
            self._check(response)
            if response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            assert response.status_code == 201, response.text
            job_id = response.json()["id"]
            assert self.accepted.setdefault(key, job_id) == job_id, "one key answered with two jobs"
            self.unanswered.discard(key)
            return

    async def read(self, client: httpx.AsyncClient) -> None:
        known = list(self.accepted.values())
        path = random.choice(
            ["/v1/jobs?limit=20", "/v1/health"] + ([f"/v1/jobs/{random.choice(known)}"] * 2 if known else [])
        )
        try:
            response = await client.get(f"{self.url}{path}", headers=self.headers)
        except httpx.TransportError:
            self.no_answer += 1
            return
        self._check(response)
        assert response.status_code in (200, 503), f"{path}: {response.status_code} {response.text[:200]}"

    async def client_loop(self, until: float) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            while time.monotonic() < until:
                if random.random() < SUBMIT_SHARE:
                    key = str(uuid.uuid4())
                    await self.submit(client, key, until + 60)
                    if random.random() < 0.2:
                        await self.submit(client, key, until + 60)  # a client's retry after a lost answer
                else:
                    await self.read(client)

    async def run(self, clients: int, seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.client_loop(until) for _ in range(clients)))


def test_a_flooded_gateway_sheds_load_cleanly_and_loses_no_job(flooded: stack.Server) -> None:
    pid = flooded.process.popen.pid
    before = _rss_mb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak.append(_rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    flood = Flood(flooded, flooded.groups["flood"])
    started = time.monotonic()
    try:
        asyncio.run(flood.run(CLIENTS, SECONDS))
    finally:
        done.set()
        sampler.join()
    took = time.monotonic() - started
    # Keys whose answers never came (transport errors to the end): asked once more, calmly.
    asyncio.run(_settle(flood))
    after = _rss_mb(pid)
    report(
        f"gateway flood ({CLIENTS} clients, {SECONDS:.0f} s)",
        flood_took=took,
        rss_before_mb=before,
        rss_peak_mb=max(peak),
        rss_after_mb=after,
    )
    latencies = sorted(flood.latencies) or [0.0]
    print(
        f"[fault] statuses {dict(flood.statuses)}, no answer {flood.no_answer}, accepted jobs"
        f" {len(flood.accepted)}, latency p50 {latencies[len(latencies) // 2]:.2f} s,"
        f" p95 {latencies[int(len(latencies) * 0.95)]:.2f} s"
    )

    assert flood.bad == []
    assert flood.unanswered == set()
    assert len(flood.accepted) > 0
    assert max(peak) - before < RSS_GROWTH_LIMIT_MB
    ids = sorted(set(flood.accepted.values()))
    assert len(ids) == len(flood.accepted)  # every key its own job
    count = prefect_api(
        flooded, "POST", "/flow_runs/count", json={"work_pools": {"name": {"any_": ["leruli-flood"]}}}
    )
    assert count.json() == len(ids)  # exactly once: no job beyond the accepted ones
    headers = {"Authorization": f"Bearer {flooded.groups['flood']['api_secret']}"}
    for start in range(0, len(ids), 200):
        found = httpx.post(
            f"{flooded.url}/v1/jobs/lookup",
            json={"ids": ids[start : start + 200]},
            headers=headers,
            timeout=60,
        )
        assert found.status_code == 200, found.text
        assert {job["id"] for job in found.json()["jobs"]} == set(ids[start : start + 200])


async def _settle(flood: Flood) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        for key in sorted(flood.unanswered):
            await flood.submit(client, key, time.monotonic() + 120)
