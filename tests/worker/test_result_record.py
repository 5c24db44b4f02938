"""A job's result record through the real parts: submitted with the CLI, run by a node in Docker, its files
and record in the real S3, read back by `leruli status`, the Python API and Prefect's own `state.result()`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

import leruli_prefect
from leruli_prefect.attempts import HOLDER_LABEL
from leruli_prefect.client import GatewayClient
from tests import stack
from tests.stack import TEST_IMAGE, cli
from tests.worker.node_stack import flow_run, start_node_for_new_group

CODE, VERSION = TEST_IMAGE.split(":")
pytestmark = pytest.mark.usefixtures("alpha_node")

# What Prefect's client does with a stored result: resolve the block the state names, read with AWS_* keys.
_PREFECT_RESULT = """
import asyncio, json, sys
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        flow_run = await client.read_flow_run(sys.argv[1])
        print(json.dumps(await flow_run.state.aresult(raise_on_failure=False)))

asyncio.run(main())
"""


def _submit(job_dir: Path, env: dict[str, str], command: str) -> str:
    submitted = cli("submit", CODE, VERSION, command, cwd=job_dir, env=env)
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip()


def _status_json(job_dir: Path, env: dict[str, str]) -> dict:
    result = cli("status", "--json", cwd=job_dir, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _object_sha256(s3_env: dict[str, str], bucket: str, key: str) -> str:
    body = stack.s3_client(s3_env).get_object(Bucket=bucket, Key=key)["Body"].read()
    return hashlib.sha256(body).hexdigest()


def test_completed_job_has_its_record(
    server: stack.Server,
    alpha: dict[str, str],
    alpha_user_env: dict[str, str],
    s3_env: dict[str, str],
    engine: docker.DockerClient,
    job_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _submit(
        job_dir, alpha_user_env, "printf hello > out.txt; head -c 3000000 /dev/urandom > rand.bin; sleep 1"
    )
    assert stack.wait_for_final_state(server, alpha, job_id)["state"] == "Completed"

    job = _status_json(job_dir, alpha_user_env)
    record = job["record"]
    print("record:", json.dumps({k: v for k, v in record.items() if k != "files"}))
    assert job["result"]["key"] == f"jobs/{job_id}/attempt-1.json"
    assert record["job_id"] == job_id and record["attempt"] == 1
    assert record["exit_code"] == 0 and not record["oom_killed"] and not record["timed_out"]
    assert record["runtime_s"] >= 1.0  # it slept 1 s
    assert record["peak_memory_bytes"] > 0
    assert record["image"] == TEST_IMAGE
    assert record["image_digest"] == engine.images.get(TEST_IMAGE).id  # `docker image inspect`'s Id
    run = flow_run(server, job_id)
    assert record["node"] == run["labels"][HOLDER_LABEL]
    assert run["infrastructure_pid"] is None  # the node sent no update for it (worker/pid_update.py)
    files = {file["name"]: file for file in record["files"]}
    assert set(files) == {"run.sh", "out.txt", "rand.bin", "joblog.txt", "joberr.txt"}
    assert files["out.txt"] == {"name": "out.txt", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}
    assert files["rand.bin"]["size"] == 3_000_000
    assert files["rand.bin"]["sha256"] == _object_sha256(s3_env, job["bucket"], "rand.bin")

    human = cli("status", cwd=job_dir, env=alpha_user_env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0] == "Completed"
    assert human.stdout.splitlines()[1].startswith("Result: exit code 0, ran ")
    assert "5 files" in human.stdout

    # The Python API reads the same record (credentials from the LERULI_* environment).
    for name in ("LERULI_BASEURL", "LERULI_API_SECRET", "LERULI_GROUP_TOKEN", *s3_env):
        monkeypatch.setenv(name, alpha_user_env[name])
    assert leruli_prefect.record(job_id).model_dump(mode="json") == record

    # And it is the flow run's Prefect result: Prefect's client reads it with the reader's own S3 keys.
    prefect_env = {
        **stack.clean_environment(),
        "PREFECT_API_URL": f"{server.url}/prefect/api",
        "PREFECT_API_AUTH_STRING": server.operator_secret,
        "AWS_ACCESS_KEY_ID": s3_env["LERULI_S3_ACCESS"],
        "AWS_SECRET_ACCESS_KEY": s3_env["LERULI_S3_SECRET"],
        "AWS_ENDPOINT_URL": s3_env["LERULI_S3_SERVER"],
    }
    read = subprocess.run(
        [sys.executable, "-c", _PREFECT_RESULT, job_id],
        env=prefect_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == record


def test_failed_job_has_its_record(
    server: stack.Server, alpha: dict[str, str], alpha_user_env: dict[str, str], job_dir: Path
) -> None:
    job_id = _submit(job_dir, alpha_user_env, "echo oops >&2; exit 3")
    assert stack.wait_for_final_state(server, alpha, job_id)["state"] == "Failed"

    job = _status_json(job_dir, alpha_user_env)
    assert job["reason"] == "exit code 3"
    record = job["record"]
    assert record["exit_code"] == 3 and record["attempt"] == 1 and 0 <= record["runtime_s"] < 60
    files = {file["name"]: file for file in record["files"]}
    assert files["joberr.txt"]["sha256"] == hashlib.sha256(b"oops\n").hexdigest()
    human = cli("status", cwd=job_dir, env=alpha_user_env).stdout
    assert "Failed: exit code 3" in human and "Result: exit code 3" in human


def test_a_started_node_knows_where_records_go_before_its_first_job(
    server: stack.Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    """The node's warm-up: the group's results bucket is made at start, not by (and during) the first job."""
    node = start_node_for_new_group(server, s3_env, tmp_path, "warmup")
    try:
        with GatewayClient(server.url) as client:
            bucket = client.node_result_storage(
                group_token=node.group["group_token"], compute_secret=node.group["compute_secret"]
            )["bucket"]
        s3 = stack.s3_client(s3_env)
        deadline = time.monotonic() + 30
        while bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            assert time.monotonic() < deadline, f"{bucket} not made within 30 s of the node's start"
            time.sleep(0.2)
        assert "warm-up skipped" not in node.process.log_text()
    finally:
        node.process.stop()
