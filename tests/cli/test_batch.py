"""Batch submission through the real server, node, Docker and S3: interrupted, resumed, exactly once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from leruli_prefect.batch_submission import PENDING_FILE, find_directories, submit_batch
from leruli_prefect.client import GatewayClient
from leruli_prefect.storage.s3_client import make_s3_client
from tests import stack
from tests.stack import LERULI, TEST_IMAGE, cli, on_both_databases

CODE, VERSION = TEST_IMAGE.split(":")
COUNT = 200


def _directories(root: Path, count: int) -> list[Path]:
    directories = []
    for index in range(count):
        directory = root / f"case-{index % 4}" / f"run-{index:03d}"
        directory.mkdir(parents=True)
        (directory / "in.txt").write_text(f"input {index}\n")
        directories.append(directory)
    return directories


def _count(server: stack.Server, group: dict[str, str], state: str | None = None) -> int:
    body: dict[str, object] = {"work_pools": {"name": {"any_": [group["work_pool"]]}}}
    if state:
        body["flow_runs"] = {"state": {"type": {"any_": [state]}}}
    headers = {"Authorization": f"Bearer {server.operator_secret}"}
    # A poll: under a loaded machine an answer can take more than httpx's default 5 s.
    return httpx.post(
        f"{server.url}/prefect/api/flow_runs/count", headers=headers, json=body, timeout=60
    ).json()


@pytest.fixture(scope="module")
def batch_group(server: stack.Server) -> dict[str, str]:
    return server.init_group("batches")


@pytest.fixture(scope="module")
def batch_node(
    server: stack.Server,
    batch_group: dict[str, str],
    s3_env: dict[str, str],
    docker_ready: None,
    tmp_path_factory,
) -> stack.Process:
    config = stack.write_node_config(
        tmp_path_factory.mktemp("batch-node") / "node.toml",
        server=server,
        group=batch_group,
        s3=s3_env,
        slots=6,
    )
    # Trivial jobs: offer more cores than the machine has so that six run at once.
    config.write_text(config.read_text() + "cores = 12\nmemory_mb = 6000\n")
    node = stack.start_node(config)
    yield node
    node.stop()


@on_both_databases
@pytest.mark.timeout(900)
def test_interrupted_batch_resumes_to_exactly_one_job_per_directory(
    server: stack.Server,
    batch_group: dict[str, str],
    batch_node: stack.Process,
    s3_env: dict[str, str],
    tmp_path: Path,
) -> None:
    directories = _directories(tmp_path, COUNT)
    env = stack.user_environment(server, batch_group, s3_env)
    # Small jobs (100 MB each) so that the node runs six at once.
    options = ("--memory", "100")
    args = [
        LERULI,
        "task-submit",
        "--batch",
        "case-?/run-*/",
        *options,
        CODE,
        VERSION,
        "cat in.txt > out.txt",
    ]

    # Ctrl-C half way through the uploads.
    first = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum((d / PENDING_FILE).exists() for d in directories) < COUNT // 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    first.wait(timeout=60)
    assert first.returncode != 0
    assert sum((d / "leruli.job").exists() for d in directories) < COUNT

    resumed = cli(
        "task-submit",
        "--batch",
        "case-?/run-*/",
        *options,
        CODE,
        VERSION,
        "cat in.txt > out.txt",
        cwd=tmp_path,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Submitted" in resumed.stdout
    assert all((d / "leruli.job").exists() and not (d / PENDING_FILE).exists() for d in directories)
    job_ids = {(d / "leruli.job").read_text().strip() for d in directories}
    assert len(job_ids) == COUNT
    assert _count(server, batch_group) == COUNT

    again = cli(
        "submit", "--batch", "case-?/run-*/", CODE, VERSION, "cat in.txt > out.txt", cwd=tmp_path, env=env
    )
    assert again.returncode == 0 and f"Skipped {COUNT} already submitted" in again.stdout
    assert _count(server, batch_group) == COUNT

    deadline = time.monotonic() + 600
    while _count(server, batch_group, "COMPLETED") < COUNT and time.monotonic() < deadline:
        time.sleep(1)
    assert _count(server, batch_group, "COMPLETED") == COUNT

    summary = cli("status", "--batch", "case-?/run-*/", cwd=tmp_path, env=env)
    assert f"{COUNT} job(s):" in summary.stdout and f"Completed    {COUNT}" in summary.stdout
    s3 = stack.s3_client(s3_env)
    for index, directory in enumerate(directories):
        bucket = (directory / "leruli.bucket").read_text().strip()
        output = s3.get_object(Bucket=bucket, Key="out.txt")["Body"].read().decode()
        assert output == f"input {index}\n"
    fetched = cli("get", cwd=directories[7], env=env)
    assert fetched.returncode == 0 and (directories[7] / "out.txt").read_text() == "input 7\n"


class _CrashAfterCreating(GatewayClient):
    """A client whose process 'dies' right after the gateway created the jobs, before any marker."""

    def submit_jobs(self, jobs):  # noqa: ANN001, ANN201
        super().submit_jobs(jobs)
        raise KeyboardInterrupt


def test_crash_after_the_server_created_the_jobs_creates_no_second_job(
    server: stack.Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    group = server.init_group("batch-crash")
    directories = _directories(tmp_path, 12)
    s3 = make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])
    options = {
        "code": CODE,
        "version": VERSION,
        "command": "true",
        "cores": 1,
        "memory_mb": 100,
        "time_limit_s": 60,
    }
    with (
        _CrashAfterCreating(server.url, api_secret=group["api_secret"]) as crashing,
        pytest.raises(KeyboardInterrupt),
    ):
        submit_batch(crashing, s3, find_directories(str(tmp_path / "case-?/run-*")), **options)
    assert not any((d / "leruli.job").exists() for d in directories)
    assert _count(server, group) == 12

    with GatewayClient(server.url, api_secret=group["api_secret"]) as client:
        outcome = submit_batch(client, s3, find_directories(str(tmp_path / "case-?/run-*")), **options)
    assert len(outcome.submitted) == 12 and not outcome.failed
    assert _count(server, group) == 12


def test_a_list_file_and_bad_directories(
    server: stack.Server, s3_env: dict[str, str], tmp_path: Path
) -> None:
    group = server.init_group("batch-list")
    good = _directories(tmp_path, 3)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.sh").write_text("mine")
    listing = tmp_path / "dirs.txt"
    listing.write_text("\n".join([*(str(d.relative_to(tmp_path)) for d in good), "bad", "# a comment", ""]))
    env = stack.user_environment(server, group, s3_env)
    result = cli("task-submit", "--batch", str(listing), CODE, VERSION, "true", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "Submitted 3 in" in result.stdout
    assert "Not submitted: " in result.stderr and "bad: " in result.stderr and "run.sh" in result.stderr
    nothing = cli("task-submit", "--batch", "nope-*/", CODE, VERSION, "true", cwd=tmp_path, env=env)
    assert nothing.returncode == 1 and "names no directory" in nothing.stderr
