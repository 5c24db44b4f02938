"""Two server processes on one PostgreSQL database with Redis messaging act as one server.

A job submitted through one is seen, cancelled and completed through the other, whichever of the two the
node talks to. Both processes share the operator secret (copied into the second data dir, as an operator
would) and the database; Prefect's events, leases and background tasks go through Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
import redis
import websockets

from leruli_prefect.gateway.server_config import OPERATOR_SECRET_FILE
from tests import stack
from tests.worker.node_stack import NodeUnderTest, state_history, wait_for_container, wait_for_output


@dataclass
class TwoServers:
    first: stack.Server
    second: stack.Server
    database: stack.PostgresDatabase
    redis_url: str


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoServers]:
    with contextlib.ExitStack() as cleanup:
        database = cleanup.enter_context(stack.PostgresDatabase.create(f"leruli_two_{secrets.token_hex(4)}"))
        yield cleanup.enter_context(_two_servers_on(database, tmp_path_factory.mktemp("two-servers")))


@contextlib.contextmanager
def _two_servers_on(database: stack.PostgresDatabase, directory: Path) -> Iterator[TwoServers]:
    # A Redis database of its own, emptied first: other deployments' streams must not reach this one.
    redis_url = (
        stack.started_service("redis")["LERULI_REDIS_URL"].rsplit("/", 1)[0] + f"/{random.randint(1, 15)}"
    )
    redis.Redis.from_url(redis_url).flushdb()
    first = stack.start_server(directory / "first", database_url=database.url, redis_url=redis_url)
    try:
        # Started after the first has migrated the database; it shares the first one's operator secret.
        (directory / "second").mkdir()
        shutil.copy2(directory / "first" / OPERATOR_SECRET_FILE, directory / "second" / OPERATOR_SECRET_FILE)
        second = stack.start_server(directory / "second", database_url=database.url, redis_url=redis_url)
        try:
            yield TwoServers(first, second, database, redis_url)
        finally:
            second.process.stop()
    finally:
        first.process.stop()


def _node(
    server: stack.Server, group: dict[str, str], s3_env: dict[str, str], directory: Path
) -> NodeUnderTest:
    config = stack.write_node_config(directory / "node.toml", server=server, group=group, s3=s3_env, slots=2)
    config.write_text(config.read_text() + 'container_user = "65534:65534"\n')
    return NodeUnderTest(server, group, s3_env, stack.start_node(config), directory / "node-data")


def _through(node: NodeUnderTest, server: stack.Server) -> NodeUnderTest:
    """The same group and node, with requests sent to `server` instead."""
    return NodeUnderTest(server, node.group, node.s3_env, node.process, node.data_dir)


@pytest.mark.timeout(900)  # two server starts, two node starts, three jobs: minutes on a busy machine
def test_a_job_submitted_through_one_server_is_seen_cancelled_and_completed_through_the_other(
    two_servers: TwoServers,
    s3_env: dict[str, str],
    docker_ready: None,
    tmp_path: Path,
) -> None:
    first, second = two_servers.first, two_servers.second
    group = first.init_group("twin")
    engine = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    # The second server knows the group at once: the same tables, and its credentials work there too.
    headers = {"Authorization": f"Bearer {group['group_token']}"}
    assert httpx.get(f"{second.url}/v1/whoami", headers=headers, timeout=10).status_code == 200

    (tmp_path / "a").mkdir()
    node = _node(first, group, s3_env, tmp_path / "a")
    try:
        via_first, via_second = node, _through(node, second)
        # Submitted through the first, seen running and cancelled through the second.
        long_id, long_bucket = via_first.submit("echo started; sleep 120")
        wait_for_container(engine, long_id)
        wait_for_output(node.run_dir(long_id) / "joblog.txt")
        assert via_second.wait_state(long_id, "Running")["id"] == long_id
        response = httpx.post(
            f"{second.url}/v1/jobs/{long_id}/cancel",
            headers={"Authorization": f"Bearer {group['api_secret']}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert via_first.wait_final(long_id, timeout=60)["state"] == "Cancelled"
        assert state_history(first, long_id)[-2:] == ["CANCELLING", "CANCELLED"]
        assert via_first.read(long_bucket, "joblog.txt") == "started\n"

        # Submitted through the second, run by the node on the first, completed as seen from both.
        done_id, done_bucket = via_second.submit("echo from-the-second > out.txt")
        assert via_second.wait_final(done_id)["state"] == "Completed"
        assert via_first.job(done_id)["state"] == "Completed"
        assert via_first.read(done_bucket, "out.txt") == "from-the-second\n"
    finally:
        node.process.stop()

    # A node on the second server takes a job submitted through the first.
    (tmp_path / "b").mkdir()
    node = _node(second, group, s3_env, tmp_path / "b")
    try:
        started = time.monotonic()
        job_id, bucket = _through(node, first).submit("echo from-the-first > out.txt")
        assert node.wait_final(job_id)["state"] == "Completed"
        print(f"through the first, completed by the second's node in {time.monotonic() - started:.1f} s")
        assert node.read(bucket, "out.txt") == "from-the-first\n"
        history = state_history(second, job_id)
        assert (history[0], history.count("RUNNING"), history[-1]) == ("SCHEDULED", 1, "COMPLETED"), history
    finally:
        node.process.stop()
    # Prefect's events and background tasks went through Redis (emptied before the servers started).
    shared = redis.Redis.from_url(two_servers.redis_url)
    assert shared.exists("events") and any(shared.scan_iter("prefect-server:*"))


async def _node_socket_closed_after_rotation(
    holder: stack.Server, rotator: stack.Server, group: dict[str, str]
) -> tuple[int | None, float]:
    """Hold a node websocket open on `holder`, rotate the compute secret through `rotator`, and time how
    long until `holder` closes the socket."""
    url = (
        holder.url.replace("http://", "ws://")
        + f"/prefect/api/work_pools/{group['work_pool']}/workers/connect"
    )
    node_headers = {
        "X-Leruli-Group-Token": group["group_token"],
        "X-Leruli-Compute-Secret": group["compute_secret"],
    }
    async with websockets.connect(url, additional_headers=node_headers, subprotocols=["prefect"]) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "x"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=30))["type"] == "auth_success"
        async with httpx.AsyncClient(timeout=30) as client:
            rotated = await client.post(
                f"{rotator.url}/v1/compute-secret", headers={"Authorization": f"Bearer {group['api_secret']}"}
            )
        assert rotated.status_code == 200, rotated.text
        started = time.monotonic()
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), timeout=15)
        return ws.close_code, time.monotonic() - started


@pytest.mark.timeout(600)
def test_rotating_through_one_server_cuts_off_the_nodes_of_the_other(
    two_servers: TwoServers, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    first, second = two_servers.first, two_servers.second
    group = first.init_group("rotating")
    node = _node(second, group, s3_env, tmp_path)
    try:
        # The node on the second server gets work while its secret is the group's.
        job_id, _ = node.submit("true")
        assert node.wait_final(job_id)["state"] == "Completed"

        code, seconds = asyncio.run(_node_socket_closed_after_rotation(second, first, group))
        print(f"node websocket on the second server closed {seconds:.2f} s after a rotation on the first")
        assert code == 1008
        assert seconds < 5  # the watch looks every second; slack for a loaded machine

        # The node still holds the old secret: the second server refuses it, so it gets no more work.
        waiting_id, _ = _through(node, first).submit("true")
        time.sleep(20)  # the node asks every 0.25 s
        assert node.job(waiting_id)["state"] == "Scheduled"
        assert "401" in node.process.log_text() or "not accepted" in node.process.log_text()
    finally:
        node.process.stop()
    assert state_history(second, waiting_id) == ["SCHEDULED"]
