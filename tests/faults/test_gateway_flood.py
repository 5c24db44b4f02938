"""The gateway is flooded: many concurrent clients on 127.0.0.1 submit jobs and read them for a while.

The server is one of its own, started with a low in-flight bound (`--max-in-flight 8`), so that the flood
certainly passes it. No 5xx except explicit 503s with `Retry-After` (and some of those must happen); the
server's memory stays bounded; afterwards every accepted job exists exactly once and no refused submission
(a client that gave up at its 503) made a job. Each submission carries an idempotency key; most are retried
under it until answered. Size: `LERULI_FAULT_FLOOD_CLIENTS` clients (default 200) for
`LERULI_FAULT_FLOOD_SECONDS` (default 20). Run with -s for the figures.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from leruli_prefect.storage.buckets import new_bucket_name
from tests import stack
from tests.faults.conftest import report
from tests.worker.node_stack import prefect_api

CLIENTS = int(os.environ.get("LERULI_FAULT_FLOOD_CLIENTS", "200"))
SECONDS = float(os.environ.get("LERULI_FAULT_FLOOD_SECONDS", "20"))
MAX_IN_FLIGHT = 8  # far below the flood's 200 clients: shedding must happen
SUBMIT_SHARE = 0.3
GIVE_UP_SHARE = 0.2  # submissions whose client takes a 503 as final (their key must never make a job)
RSS_GROWTH_LIMIT_MB = 400  # what a bounded server may add under this flood; a leak per request grows past it


@pytest.fixture(scope="module")
def flooded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Server]:
    """A server of its own with a low in-flight bound, and a group for the flood (its jobs wait: no node
    serves it)."""
    data_dir = tmp_path_factory.mktemp("flooded") / "data"
    server = stack.start_server(data_dir, "--max-in-flight", str(MAX_IN_FLIGHT))
    try:
        server.init_group("flood")
        yield server
    finally:
        server.process.stop()


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _job_body(key: str) -> dict[str, str]:
    return {"image": stack.TEST_IMAGE, "command": "true", "bucket": new_bucket_name(), "idempotency_key": key}


class Flood:
    """What the clients saw: statuses, the jobs accepted per idempotency key, keys still unanswered."""

    def __init__(self, server: stack.Server, group: dict[str, str]) -> None:
        self.url = server.url
        self.headers = {"Authorization": f"Bearer {group['api_secret']}"}
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.accepted: dict[str, str] = {}
        self.refused: set[str] = set()  # keys whose one submission was answered 503 and never sent again
        self.unanswered: set[str] = set()
        self.no_answer = 0  # requests that timed out or lost their connection
        self.latencies: dict[int, list[float]] = {}  # by status

    def _check(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        self.latencies.setdefault(response.status_code, []).append(response.elapsed.total_seconds())
        if response.status_code == 503 and "retry-after" in response.headers:
            return
        if response.status_code >= 500:
            self.bad.append(f"{response.request.method} {response.request.url.path}: {response.status_code}")

    async def submit(self, client: httpx.AsyncClient, key: str, deadline: float) -> None:
        body = _job_body(key)
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

    async def submit_once(self, client: httpx.AsyncClient, key: str, deadline: float) -> None:
        """A client that takes a 503 as final; after a lost answer it retries like the others."""
        body = _job_body(key)
        try:
            response = await client.post(f"{self.url}/v1/jobs", json=body, headers=self.headers)
        except httpx.TransportError:
            self.no_answer += 1
            return await self.submit(client, key, deadline)
        self._check(response)
        if response.status_code == 503:
            self.refused.add(key)
            return
        assert response.status_code == 201, response.text
        self.accepted[key] = response.json()["id"]

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

    async def client_loop(self, client: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            if random.random() < SUBMIT_SHARE * GIVE_UP_SHARE:
                await self.submit_once(client, str(uuid.uuid4()), until + 60)
            elif random.random() < SUBMIT_SHARE:
                key = str(uuid.uuid4())
                await self.submit(client, key, until + 60)
                if random.random() < 0.2:
                    await self.submit(client, key, until + 60)  # a client's retry after a lost answer
            else:
                await self.read(client)

    async def run(self, clients: int, seconds: float) -> None:
        # One connection each, from one pool: 200 `AsyncClient`s would each build an SSL context (tens of ms
        # of this process's CPU apiece), stalling the flood's own event loop and inflating every latency.
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            until = time.monotonic() + seconds
            await asyncio.gather(*(self.client_loop(client, until) for _ in range(clients)))


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
    statuses = flood.statuses
    answered = sum(statuses.values())
    shed = flood.latencies.get(503, [])
    print(
        f"[fault] flood: {answered} requests answered ({answered / took:.0f}/s), 2xx"
        f" {sum(n for code, n in statuses.items() if 200 <= code < 300)}, 503 {statuses[503]}, statuses"
        f" {dict(statuses)}, no answer {flood.no_answer}; accepted jobs {len(flood.accepted)}, refused"
        f" submissions {len(flood.refused)}; latency {_percentiles(sum(flood.latencies.values(), []))},"
        f" of the 503s {_percentiles(shed)}; RSS before {before:.0f} MB, peak {max(peak):.0f} MB,"
        f" after {after:.0f} MB"
    )

    assert statuses[503] > 0, "the flood never reached the in-flight bound"
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
    made = _idempotency_keys(flooded, "leruli-flood")
    assert made == set(flood.accepted)  # each accepted key made its job, and no other key made one
    assert flood.refused and not (flood.refused & made)
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


def _idempotency_keys(server: stack.Server, pool: str) -> set[str]:
    """The submitters' keys of every run in the pool (the gateway stores them as `<deployment id>:<key>`)."""
    keys: set[str] = set()
    offset = 0
    while True:
        page = prefect_api(
            server,
            "POST",
            "/flow_runs/filter",
            json={
                "work_pools": {"name": {"any_": [pool]}},
                "limit": 200,
                "offset": offset,
                "sort": "ID_DESC",
            },
        )
        assert page.status_code == 200, page.text
        runs = page.json()
        keys.update(run["idempotency_key"].split(":", 1)[1] for run in runs)
        if len(runs) < 200:
            return keys
        offset += 200


def _percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies) or [0.0]
    return f"p50 {ordered[len(ordered) // 2]:.3f} s, p95 {ordered[int(len(ordered) * 0.95)]:.3f} s"
