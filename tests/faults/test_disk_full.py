"""A node's data disk fills up (its data dir is a 24 MB tmpfs mounted by the test): while unpacking a job's
inputs, or because the job itself writes too much. The job fails with `no space left on node`, what it wrote
is uploaded, and the node goes on serving other jobs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from leruli_prefect.storage.archive import run_script
from tests import stack
from tests.faults.conftest import report
from tests.worker.node_stack import NodeUnderTest, make_archive, start_node_for_new_group

DISK_MB = 24


@pytest.fixture(scope="module")
def node(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeUnderTest]:
    directory = tmp_path_factory.mktemp("diskfault")
    data_dir = directory / "diskfault-node-data"  # where start_node_for_new_group puts the node's data
    data_dir.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(data_dir)], check=True)
    try:
        started = start_node_for_new_group(server, s3_env, directory, "diskfault")
        yield started
        started.process.stop()
    finally:
        subprocess.run(["umount", str(data_dir)], check=True)


def test_inputs_larger_than_the_free_disk_fail_with_no_space(node: NodeUnderTest) -> None:
    command = "ls -l"
    archive = make_archive({"run.sh": run_script(command), "big.dat": bytes(2 * DISK_MB * 1024**2)})
    job_id, _ = node.submit(command, archive=archive)
    job = node.wait_final(job_id, timeout=120)
    assert (job["state"], job["reason"]) == ("Failed", "no space left on node")


def test_a_job_filling_the_disk_fails_with_no_space_and_the_node_goes_on(node: NodeUnderTest) -> None:
    job_id, bucket = node.submit(f"echo start > start.txt; dd if=/dev/zero of=big bs=1M count={2 * DISK_MB}")
    job = node.wait_final(job_id, timeout=120)
    failed = time.monotonic()
    assert (job["state"], job["reason"]) == ("Failed", "no space left on node")
    assert node.read(bucket, "start.txt") == "start\n"  # what it wrote is not lost

    next_id, next_bucket = node.submit("echo ok > ok.txt")
    assert node.wait_final(next_id, timeout=120)["state"] == "Completed"
    report("node disk full", next_job_completed=time.monotonic() - failed)
    assert node.read(next_bucket, "ok.txt") == "ok\n"


def test_output_cut_short_by_a_full_disk_fails_the_job_though_it_exits_0(node: NodeUnderTest) -> None:
    """The job's shell writes joblog.txt itself: a full disk cuts it short, and the job's exit code (0
    here) cannot tell. The node's disk tells."""
    job_id, bucket = node.submit(f"echo start > start.txt; head -c {2 * DISK_MB * 1024**2} /dev/zero; exit 0")
    job = node.wait_final(job_id, timeout=120)
    assert (job["state"], job["reason"]) == ("Failed", "no space left on node")
    assert node.read(bucket, "start.txt") == "start\n"
