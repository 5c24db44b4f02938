"""The Docker engine of a node restarts while a job runs (its own private engine, never the shared one).

The job ends Failed with a clear reason, never left Running, with what it wrote before the restart uploaded;
the node then runs the next job on the restarted engine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests import stack
from tests.faults.conftest import report
from tests.faults.private_docker import PrivateDocker
from tests.worker.node_stack import (
    NodeUnderTest,
    job_containers,
    start_node_for_new_group,
    wait_for_container,
    wait_for_output,
)


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> Iterator[PrivateDocker]:
    private = PrivateDocker()
    private.start()
    private.load_test_image()
    yield private
    private.remove()


@pytest.fixture(scope="module")
def node(
    server: stack.Server,
    s3_env: dict[str, str],
    engine: PrivateDocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeUnderTest]:
    started = start_node_for_new_group(
        server, s3_env, tmp_path_factory.mktemp("dockerfault"), "dockerfault", docker_host=engine.url
    )
    yield started
    started.process.stop()


def test_a_docker_restart_fails_the_running_job_clearly_and_the_node_goes_on(
    node: NodeUnderTest, engine: PrivateDocker
) -> None:
    job_id, bucket = node.submit("echo before > before.txt; sleep 300; echo after > after.txt")
    node.wait_state(job_id, "Running")
    wait_for_container(engine.client(), job_id)
    wait_for_output(node.run_dir(job_id) / "before.txt")

    stopping = time.monotonic()
    engine.stop()
    engine.start()
    back = time.monotonic()
    job = node.wait_final(job_id, timeout=120)
    report("docker engine restart", engine_away=back - stopping, job_final_after_back=time.monotonic() - back)

    assert job["state"] == "Failed"
    assert str(job["reason"]).startswith("docker engine restarted during the job (exit code "), job
    assert node.read(bucket, "before.txt") == "before\n"  # written before the restart: not lost
    assert "after.txt" not in node.keys(bucket)
    assert job_containers(engine.client(), job_id, running_only=False) == []  # removed once its end was read

    next_id, next_bucket = node.submit("echo still here > out.txt")
    assert node.wait_final(next_id, timeout=120)["state"] == "Completed"
    assert node.read(next_bucket, "out.txt") == "still here\n"
