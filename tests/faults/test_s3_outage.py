"""S3 goes away during a job's stage-in or stage-out (the node's S3 is a proxy the test takes away).

Back within the node's `storage_retry_seconds`: the job completes with every output. Away for longer: the job
ends Failed with `storage unavailable`, never Completed without its outputs; outputs that could not go out are
kept on the node (the reason says where) and uploaded once S3 is back.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import docker
import pytest

from tests import stack
from tests.faults.conftest import report
from tests.faults.flaky_proxy import FlakyProxy
from tests.worker.node_stack import NodeUnderTest, start_node_for_new_group, state_history, wait_for_container

RETRY_SECONDS = 6
KEPT_UPLOAD_SECONDS = 2  # how often the node offers outputs kept during an outage to S3 again


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
        kept_upload_seconds=KEPT_UPLOAD_SECONDS,
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


def test_s3_away_past_the_limit_during_stage_out_keeps_the_outputs_and_uploads_them_later(
    node: NodeUnderTest, proxy: FlakyProxy, engine: docker.DockerClient
) -> None:
    # The job's own checksum of what it wrote: the kept bytes and the uploaded ones are checked against it.
    job_id, bucket = node.submit(
        "sleep 2; echo result > result.txt; head -c 300000 /dev/urandom > blob;"
        " md5sum blob | cut -c1-32 > blob.md5"
    )
    wait_for_container(engine, job_id)
    proxy.go_away()
    away = time.monotonic()
    job = node.wait_final(job_id, timeout=90)
    failed_after = time.monotonic() - away
    kept = node.data_dir / "kept" / job_id
    assert job["state"] == "Failed", job
    assert str(job["reason"]).startswith("storage unavailable; outputs kept on node "), job
    assert str(job["reason"]).endswith(f" at {kept}"), job
    assert "COMPLETED" not in state_history(node.server, job_id)
    log = node.process.log_text()
    assert log.count(f"S3 unreachable while uploading outputs to {bucket}") >= 2
    assert "outputs kept on node" in log and str(kept) in log
    assert "result.txt" not in node.keys(bucket)
    # Every byte the job wrote is still on the node.
    assert (kept / "result.txt").read_text() == "result\n"
    blob = (kept / "blob").read_bytes()
    assert len(blob) == 300000 and hashlib.md5(blob).hexdigest() == (kept / "blob.md5").read_text().strip()

    proxy.come_back()
    back = time.monotonic()
    uploaded = _wait_until_the_node_notices(node, f"uploaded the kept outputs of job {job_id} to {bucket}")
    report(
        "S3 away during stage-out, past the limit",
        limit=RETRY_SECONDS,
        failed_after=failed_after,
        kept_outputs_uploaded_after_back=time.monotonic() - back,
    )
    assert uploaded <= 60
    assert node.read(bucket, "result.txt") == "result\n"
    uploaded_blob = node.s3.get_object(Bucket=bucket, Key="blob")["Body"].read()
    assert hashlib.md5(uploaded_blob).hexdigest() == node.read(bucket, "blob.md5").strip()
    assert kept.is_dir() and (kept / "blob").read_bytes() == blob  # never deleted by the node
    assert json.loads((kept.parent / f"{job_id}.json").read_text())["uploaded_at"] is not None
