"""S3 goes away during a job's stage-in or stage-out (the node's S3 is a proxy the test takes away).

Back within the node's `storage_retry_seconds`: the job completes with every output. Away for longer: the job
ends Failed with `storage unavailable`, never Completed without its outputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from tests import stack
from tests.faults.conftest import report
from tests.faults.flaky_proxy import FlakyProxy
from tests.worker.node_stack import NodeUnderTest, start_node_for_new_group, state_history, wait_for_container

RETRY_SECONDS = 6


@pytest.fixture(scope="module")
def proxy(s3_env: dict[str, str]) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(s3_env["LERULI_S3_SERVER"])
    yield flaky
    flaky.close()


@pytest.fixture(scope="module")
def node(
    server: stack.Server,
    s3_env: dict[str, str],
    proxy: FlakyProxy,
    docker_ready: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeUnderTest]:
    through_proxy = {**s3_env, "LERULI_S3_SERVER": proxy.url}
    started = start_node_for_new_group(
        server,
        through_proxy,
        tmp_path_factory.mktemp("s3fault"),
        "s3fault",
        storage_retry_seconds=RETRY_SECONDS,
    )
    started.s3_env = s3_env  # the test itself submits and checks through the real S3
    yield started
    started.process.stop()


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///var/run/docker.sock")


@pytest.fixture(autouse=True)
def s3_back(proxy: FlakyProxy) -> Iterator[None]:
    yield
    proxy.come_back()


def _wait_until_the_node_notices(node: NodeUnderTest, line: str, timeout: float = 60) -> float:
    """Wait for the node's first retry of this transfer: the outage has hit it; returns how long it took."""
    started = time.monotonic()
    while line not in node.process.log_text():
        assert time.monotonic() - started < timeout, f"no {line!r} in the node's log within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_s3_back_during_stage_in_the_job_completes(node: NodeUnderTest, proxy: FlakyProxy) -> None:
    proxy.go_away()
    away = time.monotonic()
    job_id, bucket = node.submit("cat input.txt > output.txt", files={"input.txt": b"every byte\n"})
    _wait_until_the_node_notices(node, f"S3 unreachable while fetching {bucket}/run.tgz")
    time.sleep(1)  # a retry or two more
    proxy.come_back()
    back = time.monotonic()
    job = node.wait_final(job_id, timeout=60)
    report("S3 away during stage-in, back in time", outage=back - away, recover=time.monotonic() - back)
    assert job["state"] == "Completed", job
    assert node.read(bucket, "output.txt") == "every byte\n"


def test_s3_away_past_the_limit_during_stage_in_fails_the_job(node: NodeUnderTest, proxy: FlakyProxy) -> None:
    proxy.go_away()
    job_id, bucket = node.submit("echo ran > output.txt")
    job = node.wait_final(job_id, timeout=90)
    assert (job["state"], job["reason"]) == ("Failed", "storage unavailable")
    assert "output.txt" not in node.keys(bucket)  # never ran
    log = node.process.log_text()
    assert log.count(f"S3 unreachable while fetching {bucket}/run.tgz") >= 2  # retried with backoff first


def test_s3_back_during_stage_out_the_job_completes_with_its_outputs(
    node: NodeUnderTest, proxy: FlakyProxy, engine: docker.DockerClient
) -> None:
    job_id, bucket = node.submit("sleep 3; echo result > result.txt; head -c 300000 /dev/urandom > blob")
    wait_for_container(engine, job_id)  # inputs are in: the next transfer is the stage-out
    proxy.go_away()
    away = time.monotonic()
    _wait_until_the_node_notices(node, f"S3 unreachable while uploading outputs to {bucket}")
    assert node.job(job_id)["state"] == "Running"
    time.sleep(1)
    proxy.come_back()
    back = time.monotonic()
    job = node.wait_final(job_id, timeout=60)
    report("S3 away during stage-out, back in time", outage=back - away, recover=time.monotonic() - back)
    assert job["state"] == "Completed", job
    assert node.read(bucket, "result.txt") == "result\n"
    blob = node.s3.get_object(Bucket=bucket, Key="blob")["Body"].read()
    assert len(blob) == 300000


def test_s3_away_past_the_limit_during_stage_out_never_completes(
    node: NodeUnderTest, proxy: FlakyProxy, engine: docker.DockerClient
) -> None:
    job_id, bucket = node.submit("sleep 2; echo result > result.txt")
    wait_for_container(engine, job_id)
    proxy.go_away()
    away = time.monotonic()
    job = node.wait_final(job_id, timeout=90)
    report(
        "S3 away during stage-out, past the limit", limit=RETRY_SECONDS, failed_after=time.monotonic() - away
    )
    assert (job["state"], job["reason"]) == ("Failed", "storage unavailable")
    assert "COMPLETED" not in state_history(node.server, job_id)
    assert node.process.log_text().count(f"S3 unreachable while uploading outputs to {bucket}") >= 2
    assert "result.txt" not in node.keys(bucket)
