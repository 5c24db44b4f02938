"""The server stays away longer than the node's `api_retry_seconds` while a job ends: the job's final state
is never given up (the node keeps trying with capped backoff), and a node stopped meanwhile sends it from its
data dir when it starts again. The job never stays Running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from tests import stack
from tests.faults.conftest import report, restart_server, stop_server
from tests.worker.node_stack import (
    NodeUnderTest,
    start_node_for_new_group,
    state_history,
    wait_for_container,
    wait_until_gone,
)

API_RETRY_SECONDS = 2  # what once ended the retries of a job's final state
AWAY_SECONDS = 12  # well past it


@pytest.fixture(scope="module")
def node(
    s3_env: dict[str, str], docker_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeUnderTest]:
    directory = tmp_path_factory.mktemp("finalstate")
    server = stack.start_server(directory / "server")
    # The longest heartbeat: the restarted server writes a node off only after 90 s of its silence, more than
    # a node restart takes on a loaded machine.
    started = start_node_for_new_group(
        server, s3_env, directory, "finalstate", api_retry_seconds=API_RETRY_SECONDS, heartbeat_seconds=30
    )
    yield started
    started.process.stop()
    started.server.process.stop()


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///var/run/docker.sock")


def _note(node: NodeUnderTest, job_id: str):  # noqa: ANN202 - a Path
    return node.data_dir / "pending-states" / f"{job_id}.json"


def _run_until_held(node: NodeUnderTest, engine: docker.DockerClient) -> tuple[str, str]:
    """A job that ends while the server is away: returns it once the node holds its final state."""
    # It ends when the test says so (a file in its run dir, which is the node's own dir mounted).
    job_id, bucket = node.submit("while [ ! -e go ]; do sleep 0.1; done; echo done > out.txt")
    wait_for_container(engine, job_id, timeout=120)
    stop_server(node.server)
    (node.run_dir(job_id) / "go").write_text("")
    deadline = time.monotonic() + 60
    while not _note(node, job_id).exists():
        assert time.monotonic() < deadline, "the node never held the job's final state"
        time.sleep(0.2)
    return job_id, bucket


def _assert_completed_once(node: NodeUnderTest, job_id: str, bucket: str) -> None:
    job = node.wait_final(job_id, timeout=60)
    assert job["state"] == "Completed", job
    history = state_history(node.server, job_id)
    assert history.count("RUNNING") == 1 and "CRASHED" not in history, history
    assert node.read(bucket, "out.txt") == "done\n"
    wait_until_gone(_note(node, job_id), "the node's note of a final state the server accepted")


def test_a_final_state_is_never_given_up_while_the_gateway_is_away(
    node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    job_id, bucket = _run_until_held(node, engine)
    held = time.monotonic()
    time.sleep(AWAY_SECONDS)
    assert node.process.popen.poll() is None
    log = node.process.log_text()
    assert f"reporting job {job_id} Completed again in" in log

    restart_server(node.server)
    back = time.monotonic()
    node.wait_final(job_id, timeout=120)
    report(
        "server away past api_retry_seconds while a job ended",
        limit=API_RETRY_SECONDS,
        held_for=back - held,
        final_state_after_back=time.monotonic() - back,
    )
    _assert_completed_once(node, job_id, bucket)


def test_a_restarted_node_sends_the_final_state_it_held(
    node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    job_id, bucket = _run_until_held(node, engine)
    node.process.stop()  # SIGTERM while its report still waits for the gateway
    assert _note(node, job_id).exists()

    restart_server(node.server)
    back = time.monotonic()
    node.process = stack.start_node(node.data_dir.parent / "finalstate-node.toml")
    node.wait_final(job_id, timeout=120)
    report("node restarted holding a final state", final_state_after_server_back=time.monotonic() - back)
    assert f"job {job_id}: sending its final state Completed, held since before this start" in (
        node.process.log_text()
    )
    _assert_completed_once(node, job_id, bucket)
