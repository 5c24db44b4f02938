"""Helpers for node tests through the real parts: nodes with their own group, jobs submitted over REST
with a hand-made `run.tgz` (so a test may hand the node a hostile one), the operator's cancel, containers.
"""

from __future__ import annotations

import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import docker
import httpx

from leruli_prefect.storage.archive import run_script
from leruli_prefect.storage.buckets import new_bucket_name
from leruli_prefect.worker.container_runner import FLOW_RUN_LABEL
from tests import stack
from tests.stack import TEST_IMAGE


@dataclass
class NodeUnderTest:
    """A running node of its own group, and what a test needs to give it jobs and watch them."""

    server: stack.Server
    group: dict[str, str]
    s3_env: dict[str, str]
    process: stack.Process
    data_dir: Path

    @property
    def s3(self):  # noqa: ANN201 - a boto3 client
        return boto3.client(
            "s3",
            endpoint_url=self.s3_env["LERULI_S3_SERVER"],
            aws_access_key_id=self.s3_env["LERULI_S3_ACCESS"],
            aws_secret_access_key=self.s3_env["LERULI_S3_SECRET"],
            region_name="us-east-1",
        )

    def submit(
        self,
        command: str,
        *,
        files: dict[str, bytes] | None = None,
        archive: bytes | None = None,
        **limits: int,
    ) -> tuple[str, str]:
        """Submit a job (as the group's admin); returns (job id, bucket)."""
        bucket = new_bucket_name()
        self.s3.create_bucket(Bucket=bucket)
        body = (
            archive if archive is not None else make_archive({**(files or {}), "run.sh": run_script(command)})
        )
        self.s3.put_object(Bucket=bucket, Key="run.tgz", Body=body)
        spec = {"image": TEST_IMAGE, "command": command, "bucket": bucket, "memory_mb": 256, **limits}
        response = httpx.post(
            f"{self.server.url}/v1/jobs",
            json=spec,
            headers={"Authorization": f"Bearer {self.group['api_secret']}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"], bucket

    def job(self, job_id: str) -> dict[str, object]:
        headers = {"Authorization": f"Bearer {self.group['group_token']}"}
        return httpx.get(f"{self.server.url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()

    def wait_final(self, job_id: str, timeout: float = 120) -> dict[str, object]:
        return stack.wait_for_final_state(self.server, self.group, job_id, timeout=timeout)

    def wait_state(self, job_id: str, state: str, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] == state:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not {state} within {timeout} s (last: {job})")

    def cancel(self, job_id: str, state_type: str = "CANCELLING") -> httpx.Response:
        """What the operator (and `POST /v1/jobs/{id}/cancel`) does: force the run into Cancelling."""
        return prefect_api(
            self.server,
            "POST",
            f"/flow_runs/{job_id}/set_state",
            json={"state": {"type": state_type, "name": state_type.title()}, "force": True},
        )

    def run_dir(self, job_id: str) -> Path:
        return self.data_dir / "runs" / job_id

    def keys(self, bucket: str) -> set[str]:
        return {obj["Key"] for obj in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])}

    def read(self, bucket: str, key: str) -> str:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def container_span(self, bucket: str) -> tuple[float, float]:
        """When a job's container ran (its command wrapped by `timed`), by the host's clock."""
        began, ended = (float(self.read(bucket, name).split()[0]) for name in ("began.txt", "ended.txt"))
        return began, ended


def timed(command: str) -> str:
    """The command, noting when it began and ended by /proc/uptime (the host's, also inside a container).

    Prefect's Running span of a job is longer than its container's: it covers the stage-out too, while the
    job's slot may already run the next job."""
    return f"cat /proc/uptime > began.txt; {command}; cat /proc/uptime > ended.txt"


def prefect_api(server: stack.Server, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.operator_secret}"}
    return httpx.request(method, f"{server.url}/prefect/api{path}", headers=headers, timeout=30, **kwargs)


def flow_run(server: stack.Server, job_id: str) -> dict[str, object]:
    response = prefect_api(server, "GET", f"/flow_runs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def state_history(server: stack.Server, job_id: str) -> list[str]:
    response = prefect_api(server, "GET", "/flow_run_states/", params={"flow_run_id": job_id})
    assert response.status_code == 200, response.text
    return [state["type"] for state in sorted(response.json(), key=lambda s: s["timestamp"])]


def make_archive(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def start_node_for_new_group(
    server: stack.Server, s3_env: dict[str, str], directory: Path, group_name: str, **settings: object
) -> NodeUnderTest:
    """A new group on the server and a node for it, with extra node.toml settings (cores, memory_mb, ...)."""
    group = server.init_group(group_name)
    config = stack.write_node_config(
        directory / f"{group_name}-node.toml",
        server=server,
        group=group,
        s3=s3_env,
        slots=int(settings.pop("slots", 2)),  # type: ignore[call-overload]
    )
    extra = "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items())
    config.write_text(config.read_text() + extra)
    process = stack.start_node(config)
    return NodeUnderTest(server, group, s3_env, process, directory / f"{group_name}-node-data")


def _toml(value: object) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )


def job_containers(engine: docker.DockerClient, job_id: str, *, running_only: bool = True) -> list:  # noqa: ANN401
    return engine.containers.list(all=not running_only, filters={"label": f"{FLOW_RUN_LABEL}={job_id}"})


def wait_for_container(engine: docker.DockerClient, job_id: str, timeout: float = 60):  # noqa: ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = job_containers(engine, job_id)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no running container for job {job_id} within {timeout} s")


def wait_until_gone(path: Path, what: str, timeout: float = 30) -> None:
    """Wait for what the node deletes as a job's final state goes out (the state may show a moment before)."""
    deadline = time.monotonic() + timeout
    while path.exists():
        assert time.monotonic() < deadline, f"{what} still there after {timeout} s: {path}"
        time.sleep(0.05)


def wait_for_output(path: Path, timeout: float = 60) -> None:
    """Wait until a running job has written `path` in its run dir (before a test cuts the job short)."""
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.stat().st_size > 0):
        assert time.monotonic() < deadline, f"the job did not write {path.name} within {timeout} s"
        time.sleep(0.05)
