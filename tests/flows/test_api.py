"""The Python API through the real server, node, Docker and S3: plain calls, blocks, and a Prefect fan-out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prefect import flow
from pydantic import SecretStr

import leruli_prefect as leruli
from leruli_prefect.errors import ConfigurationError, JobFailedError
from tests.stack import TEST_IMAGE

CODE, VERSION = TEST_IMAGE.split(":")
pytestmark = pytest.mark.usefixtures("alpha_node", "researcher")


def test_submit_wait_get_from_plain_python(tmp_path: Path) -> None:
    job = leruli.submit({"input.txt": "hello api\n"}, CODE, VERSION, "tr a-z A-Z < input.txt > out.txt")

    final = job.wait(timeout_s=120)

    assert (final.id, final.state, final.image, final.bucket) == (job.id, "Completed", TEST_IMAGE, job.bucket)
    assert leruli.status(str(job.id)).state == "Completed"
    files = job.get(tmp_path / "fetched")
    assert (tmp_path / "fetched" / "out.txt").read_text() == "HELLO API\n"
    assert {path.name for path in files} >= {"out.txt", "input.txt", "joblog.txt", "joberr.txt"}
    assert not (tmp_path / "fetched" / "run.tgz").exists()


def test_inputs_from_a_directory_and_from_files_and_a_quoted_command(tmp_path: Path) -> None:
    directory = tmp_path / "case"
    directory.mkdir()
    (directory / "a.txt").write_text("from a directory\n")
    loose = tmp_path / "b.txt"
    loose.write_text("a loose file\n")

    from_directory = leruli.run(
        directory, CODE, VERSION, ["cp", "a.txt", "copy of a.txt"], tmp_path / "out-a"
    )
    from_files = leruli.run([loose], CODE, VERSION, "cat b.txt", tmp_path / "out-b")

    assert from_directory.read_text("copy of a.txt") == "from a directory\n"
    assert from_files.read_text("joblog.txt") == "a loose file\n"
    assert not (directory / "leruli.job").exists()  # the API keeps the Job handle instead


def test_a_failing_job_raises_with_its_reason_after_its_files_are_fetched(tmp_path: Path) -> None:
    with pytest.raises(JobFailedError, match="ended Failed: exit code 3") as raised:
        leruli.run({}, CODE, VERSION, "echo partial > partial.txt; exit 3", tmp_path)

    assert raised.value.job.state == "Failed"  # type: ignore[attr-defined]
    assert (tmp_path / "partial.txt").read_text() == "partial\n"
    unchecked = leruli.run({}, CODE, VERSION, "exit 4", tmp_path / "unchecked", check=False)
    assert (unchecked.completed, unchecked.job.reason) == (False, "exit code 4")


def test_cancel_stops_a_running_job() -> None:
    job = leruli.submit({}, CODE, VERSION, "sleep 300")
    deadline = time.monotonic() + 60
    while job.status().state != "Running" and time.monotonic() < deadline:
        time.sleep(0.2)

    job.cancel()

    assert job.wait(timeout_s=60).state == "Cancelled"


def test_blocks_instead_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, alpha_user_env: dict[str, str], tmp_path: Path
) -> None:
    credentials = leruli.LeruliCredentials(
        gateway_url=alpha_user_env["LERULI_BASEURL"],
        api_secret=SecretStr(alpha_user_env["LERULI_API_SECRET"]),
        group_token=SecretStr(alpha_user_env["LERULI_GROUP_TOKEN"]),
    )
    storage = leruli.LeruliS3Storage(
        endpoint_url=alpha_user_env["LERULI_S3_SERVER"],
        access_key=alpha_user_env["LERULI_S3_ACCESS"],
        secret_key=SecretStr(alpha_user_env["LERULI_S3_SECRET"]),
    )
    for name in alpha_user_env:
        if name.startswith("LERULI_"):
            monkeypatch.delenv(name)

    job = leruli.submit({}, CODE, VERSION, "echo blocks", credentials=credentials, storage=storage)

    assert job.wait(timeout_s=120).state == "Completed"
    job.get(tmp_path)
    assert (tmp_path / "joblog.txt").read_text() == "blocks\n"
    with pytest.raises(ConfigurationError, match="set LERULI_S3_SERVER"):
        leruli.submit({}, CODE, VERSION, "true")  # no block and no environment: told what to set


def test_a_researchers_flow_fans_out_jobs_and_gathers_results(tmp_path: Path) -> None:
    @flow
    def squares(numbers: list[int]) -> list[int]:
        futures = [
            leruli.run_job.submit({}, CODE, VERSION, f"echo $(({n} * {n}))", tmp_path / str(n), memory_mb=64)
            for n in numbers
        ]
        return [int(future.result().read_text("joblog.txt")) for future in futures]

    assert squares([1, 2, 3, 4, 5, 6]) == [1, 4, 9, 16, 25, 36]
