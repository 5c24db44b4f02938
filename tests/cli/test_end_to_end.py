"""One real job from `leruli submit` to `leruli get`, through the real server, node, Docker and S3."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests import stack
from tests.stack import TEST_IMAGE, cli, on_both_databases

CODE, VERSION = TEST_IMAGE.split(":")
pytestmark = pytest.mark.usefixtures("alpha_node")


def _submit(job_dir: Path, env: dict[str, str], *command: str, options: tuple[str, ...] = ()) -> str:
    result = cli("task-submit", *options, CODE, VERSION, *command, cwd=job_dir, env=env)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert (job_dir / "leruli.job").read_text().strip() == job_id
    return job_id


@on_both_databases
def test_job_runs_in_docker_and_its_outputs_come_back(
    server: stack.Server, alpha: dict[str, str], alpha_user_env: dict[str, str], job_dir: Path, tmp_path: Path
) -> None:
    (job_dir / "input.txt").write_text("hello leruli\n")
    command = (
        "tr a-z A-Z < input.txt > out.txt && echo $OMP_NUM_THREADS $MKL_NUM_THREADS > threads.txt"
        " && ls /sys/class/net > networks.txt && env > env.txt && echo to-stdout && echo to-stderr >&2"
    )
    job_id = _submit(job_dir, alpha_user_env, command, options=("--cores", "2", "--memory", "256"))

    job = stack.wait_for_final_state(server, alpha, job_id)
    assert job["state"] == "Completed", job
    assert job["owner"] == "admin"
    assert job["image"] == TEST_IMAGE and job["cores"] == 2 and job["memory_mb"] == 256

    status = cli("task-status", cwd=job_dir, env=alpha_user_env)
    lines = status.stdout.splitlines()
    assert (status.returncode, lines[0]) == (0, "Completed")
    assert lines[1].startswith("Result: exit code 0, ran "), status.stdout

    fetched = tmp_path / "fetched"
    fetched.mkdir()
    bucket = (job_dir / "leruli.bucket").read_text().strip()
    result = cli("get", bucket, cwd=fetched, env=alpha_user_env)
    assert result.returncode == 0, result.stderr
    assert (fetched / "out.txt").read_text() == "HELLO LERULI\n"
    assert (fetched / "threads.txt").read_text() == "2 2\n"
    assert (fetched / "networks.txt").read_text().split() == ["lo"]
    assert (fetched / "joblog.txt").read_text() == "to-stdout\n"
    assert (fetched / "joberr.txt").read_text() == "to-stderr\n"
    assert (fetched / "input.txt").read_text() == "hello leruli\n"
    assert not (fetched / "run.tgz").exists()
    container_env = (fetched / "env.txt").read_text()
    for secret in (alpha["compute_secret"], alpha["group_token"], alpha_user_env["LERULI_S3_SECRET"]):
        assert secret not in container_env
    assert "PREFECT_" not in container_env


def test_secrets_never_reach_the_logs(
    server: stack.Server, alpha: dict[str, str], alpha_node: stack.Process, alpha_user_env: dict[str, str]
) -> None:
    logs = server.process.log_text() + alpha_node.log_text()
    assert "POST /v1/jobs" in logs or "get_scheduled_flow_runs" in logs  # the logs do record the traffic
    for secret in (
        alpha["api_secret"],
        alpha["group_token"],
        alpha["compute_secret"],
        server.operator_secret,
    ):
        assert secret not in logs
    assert alpha_user_env["LERULI_S3_SECRET"] not in logs


@on_both_databases
def test_failing_command_ends_failed_with_its_exit_code(
    server: stack.Server, alpha: dict[str, str], alpha_user_env: dict[str, str], job_dir: Path
) -> None:
    job_id = _submit(job_dir, alpha_user_env, "echo partial > partial.txt; exit 3")

    job = stack.wait_for_final_state(server, alpha, job_id)
    assert (job["state"], job["reason"]) == ("Failed", "exit code 3")
    status = cli("status", job_id, cwd=job_dir, env=alpha_user_env)
    lines = status.stdout.splitlines()
    assert lines[0] == "Failed: exit code 3"
    assert lines[1].startswith("Result: exit code 3, ran "), status.stdout
    fetched = cli("get", cwd=job_dir, env=alpha_user_env)
    assert fetched.returncode == 0, fetched.stderr
    assert (job_dir / "partial.txt").read_text() == "partial\n"


def test_wrong_api_secret_is_refused_clearly_and_leaves_nothing_behind(
    alpha_user_env: dict[str, str], s3_env: dict[str, str], job_dir: Path
) -> None:
    marker = f"wrong-secret-{uuid.uuid4()}"
    (job_dir / "input.txt").write_text(marker)
    s3 = stack.s3_client(s3_env)
    buckets_before = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    env = {**alpha_user_env, "LERULI_API_SECRET": "lq_user_thisisnotavalidsecretatallthisisnotvalid1"}

    result = cli("task-submit", CODE, VERSION, "true", cwd=job_dir, env=env)

    assert result.returncode == 1
    assert result.stderr.strip() == "Error: API secret not accepted (check LERULI_API_SECRET)"
    assert "Traceback" not in result.stderr + result.stdout
    assert not (job_dir / "leruli.job").exists()
    # Other tests may make buckets meanwhile; none of the new ones may hold this submission.
    for bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]} - buckets_before:
        try:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
            archive = (
                s3.get_object(Bucket=bucket, Key="run.tgz")["Body"].read() if "run.tgz" in keys else None
            )
        except ClientError:  # deleted meanwhile by whoever made it
            continue
        if archive is not None:
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                if "input.txt" in tar.getnames():  # another test's archive holds other files
                    assert marker not in tar.extractfile("input.txt").read().decode()  # type: ignore[union-attr]


def test_submitted_directory_is_not_submitted_twice(alpha_user_env: dict[str, str], job_dir: Path) -> None:
    job_id = _submit(job_dir, alpha_user_env, "true")
    again = cli("submit", CODE, VERSION, "true", cwd=job_dir, env=alpha_user_env)
    assert again.returncode == 1
    assert f"already submitted as job {job_id}" in again.stderr


def test_reserved_input_names_are_refused(alpha_user_env: dict[str, str], job_dir: Path) -> None:
    (job_dir / "joblog.txt").write_text("mine")
    result = cli("submit", CODE, VERSION, "true", cwd=job_dir, env=alpha_user_env)
    assert result.returncode == 1
    assert "joblog.txt" in result.stderr and "reserved" in result.stderr


@on_both_databases
def test_group_token_lists_and_reads_the_groups_jobs_only(
    server: stack.Server,
    alpha: dict[str, str],
    beta: dict[str, str],
    alpha_user_env: dict[str, str],
    job_dir: Path,
) -> None:
    job_id = _submit(job_dir, alpha_user_env, "true")
    as_alpha = {"Authorization": f"Bearer {alpha['group_token']}"}
    as_beta = {"Authorization": f"Bearer {beta['group_token']}"}

    listed = httpx.get(f"{server.url}/v1/jobs", headers=as_alpha).json()["jobs"]
    assert job_id in {job["id"] for job in listed}
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=as_alpha).status_code == 200

    assert job_id not in {
        job["id"] for job in httpx.get(f"{server.url}/v1/jobs", headers=as_beta).json()["jobs"]
    }
    foreign = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=as_beta)
    assert foreign.status_code == 404
    # A group token reads but never writes.
    spec = {"image": TEST_IMAGE, "command": "true", "bucket": "leruli-" + "0" * 32}
    assert httpx.post(f"{server.url}/v1/jobs", headers=as_alpha, json=spec).status_code == 403
