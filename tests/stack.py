"""Real parts for the tests: S3, Docker, PostgreSQL, Redis (started by the project's scripts), servers, nodes.

Each part runs as its own process, started the way a user starts it (`leruli server start`, `leruli node
start`), and stopped by PID when the session ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
LERULI = str(Path(sys.executable).parent / "leruli")
TEST_IMAGE = "leruli-busybox:1.0"

DATABASES = ("sqlite", "postgres")
# For the tests that must hold on both databases (tests/conftest.py's `server` is SQLite otherwise): the
# server and whatever hangs off it (groups, nodes, module fixtures) then exist once per database.
on_both_databases = pytest.mark.parametrize("server", DATABASES, indirect=True)


# A new server takes 11-13 s on a quiet machine and over 80 s on 2 cores shared by several test suites: a
# slow start is not a failure.
STARTUP_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_dir() -> Path:
    """Where the project's scripts keep local services' state and their `*.env` files."""
    return Path(os.environ.get("LERULI_STACK_DIR") or REPO / ".stack")


def started_service(script: str) -> dict[str, str]:
    """Start (or find) a local service with `scripts/<script>.sh start`; returns the settings it wrote."""
    subprocess.run([REPO / "scripts" / f"{script}.sh", "start"], check=True, capture_output=True)
    env = {}
    for line in (stack_dir() / f"{script}.env").read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.strip("'\"")
    return env


def s3_environment() -> dict[str, str]:
    """Start (or find) the real S3 server and return its `LERULI_S3_*` settings."""
    return started_service("s3")


@dataclass
class PostgresDatabase:
    """A database of its own on the test PostgreSQL cluster (scripts/postgres.sh), dropped by `drop`."""

    name: str
    admin: dict[str, str]  # PG* settings of the cluster's superuser, for psql

    @classmethod
    def create(cls, name: str) -> PostgresDatabase:
        database = cls(name, started_service("postgres"))
        database.psql(f'CREATE DATABASE "{name}"')
        return database

    @property
    def url(self) -> str:
        return self.admin["LERULI_POSTGRES_URL"].rsplit("/", 1)[0] + f"/{self.name}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
            env={**os.environ, **self.admin},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def drop(self) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drop()  # also when the server on it failed to start


def s3_client(s3: dict[str, str]):  # noqa: ANN201 - a boto3 S3 client
    """A plain boto3 client on the test S3, to look at buckets behind the product's back."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3["LERULI_S3_SERVER"],
        aws_access_key_id=s3["LERULI_S3_ACCESS"],
        aws_secret_access_key=s3["LERULI_S3_SECRET"],
        region_name="us-east-1",
    )


def ensure_docker_and_test_image() -> None:
    subprocess.run([REPO / "scripts" / "docker.sh", "start"], check=True, capture_output=True)
    subprocess.run([REPO / "scripts" / "build-test-image.sh"], check=True, capture_output=True)


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `leruli` console script."""
    return subprocess.run([LERULI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def clean_environment() -> dict[str, str]:
    """This process's environment without any LERULI_* or PREFECT_* setting that would leak into a part."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LERULI_", "PREFECT_"))}


@dataclass
class Process:
    """A part running in the background, its output in a log file."""

    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, line: str, count: int = 1, timeout: float = 60) -> float:
        """Wait until `line` is in the log `count` times; the seconds it took."""
        started = time.monotonic()
        while self.log_text().count(line) < count:
            assert time.monotonic() - started < timeout, f"no {line!r} in {self.log.name} within {timeout} s"
            time.sleep(0.2)
        return time.monotonic() - started


def start_process(args: list[str], log: Path, env: dict[str, str]) -> Process:
    handle = open(log, "wb")
    popen = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Process(popen, log)


@dataclass
class Server:
    url: str
    data_dir: Path
    process: Process
    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def operator_secret(self) -> str:
        return (self.data_dir / "operator-secret").read_text().strip()

    def init_group(self, name: str, admin_name: str = "admin") -> dict[str, str]:
        args = ("init-group", name, "--admin-name", admin_name, "--data-dir", str(self.data_dir), "--json")
        result = cli("server", *args, env=clean_environment())
        assert result.returncode == 0, result.stderr
        self.groups[name] = json.loads(result.stdout)
        return self.groups[name]


def start_server(
    data_dir: Path,
    *options: str,
    timeout: float = STARTUP_TIMEOUT_S,
    database_url: str | None = None,
    redis_url: str | None = None,
    port: int | None = None,
) -> Server:
    """`leruli server start` on a free port, with extra `options` (e.g. `--max-attempts`, `1`): SQLite in
    `data_dir`, or the PostgreSQL (and Redis) given. A restart on the same data dir passes its `port`."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [LERULI, "server", "start", "--port", str(port), "--data-dir", str(data_dir), *options]
    if database_url:
        args += ["--database-url", database_url]
    if redis_url:
        args += ["--redis-url", redis_url]
    process = start_process(args, data_dir.parent / f"{data_dir.name}.log", clean_environment())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"server exited early:\n{process.log_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return Server(url, data_dir, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.stop()
    raise RuntimeError(f"server did not answer within {timeout} s:\n{process.log_text()[-3000:]}")


def write_node_config(
    path: Path,
    *,
    server: Server,
    group: dict[str, str],
    s3: dict[str, str],
    slots: int = 2,
    data_dir: Path | None = None,
) -> Path:
    """A node.toml at `path`; the node's data dir is `data_dir`, else `<path's stem>-data` beside it."""
    data_dir = data_dir or path.parent / f"{path.stem}-data"
    path.write_text(
        "\n".join(
            [
                f'gateway_url = "{server.url}"',
                f'group_token = "{group["group_token"]}"',
                f'compute_secret = "{group["compute_secret"]}"',
                f's3_server = "{s3["LERULI_S3_SERVER"]}"',
                f's3_access = "{s3["LERULI_S3_ACCESS"]}"',
                f's3_secret = "{s3["LERULI_S3_SECRET"]}"',
                f'data_dir = "{data_dir}"',
                f"slots = {slots}",
                "",
            ]
        )
    )
    path.chmod(0o600)
    return path


def start_node(config: Path, timeout: float = STARTUP_TIMEOUT_S) -> Process:
    process = start_process(
        [LERULI, "node", "start", "--config", str(config)], config.with_suffix(".log"), clean_environment()
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"node exited early:\n{process.log_text()[-3000:]}")
        if "started!" in process.log_text():
            return process
        time.sleep(0.2)
    process.stop()
    raise RuntimeError(f"node did not start within {timeout} s:\n{process.log_text()[-3000:]}")


def user_environment(server: Server, group: dict[str, str], s3: dict[str, str]) -> dict[str, str]:
    """What a researcher of `group` has in their shell."""
    return {
        **clean_environment(),
        **s3,
        "LERULI_BASEURL": server.url,
        "LERULI_API_SECRET": group["api_secret"],
        "LERULI_GROUP_TOKEN": group["group_token"],
    }


def submit_unstaged_job(server: Server, group: dict[str, str]) -> str:
    """Submit a job whose bucket holds nothing (for tests where no node runs it); returns its id."""
    response = httpx.post(
        f"{server.url}/v1/jobs",
        headers={"Authorization": f"Bearer {group['api_secret']}"},
        json={"image": TEST_IMAGE, "command": "true", "bucket": "leruli-" + "c" * 32},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def node_headers(group: dict[str, str]) -> dict[str, str]:
    """What a compute node of `group` sends with every request."""
    return {"X-Leruli-Group-Token": group["group_token"], "X-Leruli-Compute-Secret": group["compute_secret"]}


def queue_last_polled(server: Server, pool: str) -> str | None:
    """When Prefect last noted a poll of the pool's (first) queue, as Prefect reports it."""
    response = httpx.post(
        f"{server.url}/prefect/api/work_pools/{pool}/queues/filter",
        headers={"Authorization": f"Bearer {server.operator_secret}"},
        json={},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()[0]["last_polled"]


def wait_until_polled(server: Server, pool: str, timeout: float = 20) -> str:
    """When Prefect noted its first poll of the pool (it notes a poll a moment after answering it)."""
    deadline = time.monotonic() + timeout
    while (polled := queue_last_polled(server, pool)) is None:
        assert time.monotonic() < deadline, f"Prefect never noted a poll of {pool}"
        time.sleep(0.2)
    return polled


def wait_for_final_state(
    server: Server, group: dict[str, str], job_id: str, timeout: float = 120
) -> dict[str, object]:
    final = {"Completed", "Failed", "Crashed", "Cancelled"}
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {group['group_token']}"}
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["state"] in final:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not finished within {timeout} s (last: {job})")
