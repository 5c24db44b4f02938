"""Every job container the real node starts is hardened (inspected while it runs), and the node refuses
hostile or reserved-name archives with a clear reason, writing nothing outside the run dir."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from leruli_prefect.storage.archive import run_script
from leruli_prefect.worker import container_runner
from tests.worker.conftest import CONTAINER_USER
from tests.worker.node_stack import (
    NodeUnderTest,
    make_archive,
    wait_for_container,
    wait_for_output,
    wait_until_gone,
)


def test_node_runs_jobs_hardened_as_its_container_user(
    gamma_node: NodeUnderTest, engine: docker.DockerClient
) -> None:
    command = "id -u > uid.txt; id -g > gid.txt; env > env.txt; sleep 60"
    job_id, bucket = gamma_node.submit(command, cores=1, memory_mb=300)
    container = wait_for_container(engine, job_id)
    config = engine.api.inspect_container(container.id)
    wait_for_output(gamma_node.run_dir(job_id) / "env.txt")
    gamma_node.cancel(job_id)  # enough seen; end it now
    host = config["HostConfig"]

    assert config["Config"]["User"] == CONTAINER_USER
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == container_runner.PIDS_LIMIT
    assert not host["Privileged"]
    assert host["Memory"] == host["MemorySwap"] == 300 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000 and host["CpusetCpus"] in {"0", "1"}
    assert config["Config"]["Labels"][container_runner.FLOW_RUN_LABEL] == job_id
    assert config["Config"]["Labels"][container_runner.NODE_LABEL] == str(gamma_node.data_dir.resolve())
    env = dict(item.split("=", 1) for item in config["Config"]["Env"])
    assert not [name for name in env if name.startswith(("PREFECT_", "LERULI_", "AWS_"))]

    assert gamma_node.wait_final(job_id, timeout=30)["state"] == "Cancelled"
    uid, gid = CONTAINER_USER.split(":")
    assert (
        gamma_node.read(bucket, "uid.txt") == f"{uid}\n" and gamma_node.read(bucket, "gid.txt") == f"{gid}\n"
    )
    container_env = gamma_node.read(bucket, "env.txt")
    for secret in (gamma_node.group["compute_secret"], gamma_node.group["group_token"]):
        assert secret not in container_env
    assert gamma_node.s3_env["LERULI_S3_SECRET"] not in container_env


def test_reserved_name_in_a_hand_made_archive_fails_clearly(gamma_node: NodeUnderTest) -> None:
    archive = make_archive({"run.sh": run_script("echo mine > joblog.txt"), "joblog.txt": "forged"})
    job_id, bucket = gamma_node.submit("true", archive=archive)
    job = gamma_node.wait_final(job_id)
    assert (job["state"], job["reason"]) == ("Failed", "inputs use the reserved name(s) joblog.txt")
    assert gamma_node.keys(bucket) == {"run.tgz"}


def _hostile(add: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        script = run_script("cat * > seen.txt").encode()
        info = tarfile.TarInfo("run.sh")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
        add(tar)
    return buffer.getvalue()


def _file(name: str) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size = 7
        tar.addfile(info, io.BytesIO(b"escaped"))

    return add


def _link(name: str, target: str, kind: bytes) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        tar.addfile(info)

    return add


def _device(tar: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("disk")
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    tar.addfile(info)


@pytest.mark.parametrize(
    ("add", "reason"),
    [
        (_file("../escaped.txt"), "run.tgz is unsafe"),
        (_file("/tmp/leruli-escaped.txt"), "has an absolute path"),
        (_link("passwd", "../../../../etc/passwd", tarfile.SYMTYPE), "run.tgz is unsafe"),
        (_link("hard", "/etc/passwd", tarfile.LNKTYPE), "run.tgz is unsafe"),
        (_device, "is a device or special file"),
    ],
    ids=["dotdot", "absolute", "symlink-out", "hardlink-out", "device"],
)
def test_hostile_archive_fails_and_writes_nothing_outside(
    gamma_node: NodeUnderTest, add: Callable[[tarfile.TarFile], None], reason: str
) -> None:
    job_id, bucket = gamma_node.submit("true", archive=_hostile(add))
    job = gamma_node.wait_final(job_id)
    assert job["state"] == "Failed" and reason in str(job["reason"]), job
    assert gamma_node.keys(bucket) == {"run.tgz"}  # the job never ran
    # Deleted while the final state goes out: the walk below must not meet it half gone.
    wait_until_gone(gamma_node.data_dir / "runs" / job_id, "the failed job's run dir")
    assert not list(gamma_node.data_dir.parent.rglob("*escaped*"))
    assert not Path("/tmp/leruli-escaped.txt").exists()
