"""Many nodes on one server (PostgreSQL): every job runs exactly once, none is lost, the load spreads.

`LERULI_SCALE_NODES` node processes (each with its own data dir, one core and one slot, all on the local
Docker engine) serve one group; `LERULI_SCALE_JOBS` short jobs are submitted through the batch path
(`leruli task-submit --batch`). The Docker engine's own events say which container ran for which job on which
node: each job exactly one container start, each node at least one job. The defaults are sized for `make
test` on 2 shared cores (see docs/running-at-scale.md for the figures and for larger runs).
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import httpx
import pytest

from leruli_prefect.worker.container_runner import FLOW_RUN_LABEL, NODE_LABEL
from leruli_prefect.worker.leftovers import node_label_value
from tests import stack
from tests.stack import TEST_IMAGE

NODES = int(os.environ.get("LERULI_SCALE_NODES", "20"))
JOBS = int(os.environ.get("LERULI_SCALE_JOBS", "200"))
CODE, VERSION = TEST_IMAGE.split(":")
# How long all jobs may take: at least 0.4 jobs/s (0.45-2.02 jobs/s measured on 2 cores, loaded to idle).
COMPLETION_BOUND_S = max(1500, JOBS * 2.5)


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Server]:
    with stack.PostgresDatabase.create(f"leruli_scale_{secrets.token_hex(4)}") as database:
        server = stack.start_server(tmp_path_factory.mktemp("scale") / "server", database_url=database.url)
        yield server
        server.process.stop()


def _start_nodes(
    server: stack.Server, group: dict[str, str], s3_env: dict[str, str], directory: Path
) -> list[stack.Process]:
    configs = []
    for index in range(NODES):
        config = stack.write_node_config(
            directory / f"node-{index:02d}.toml", server=server, group=group, s3=s3_env, slots=1
        )
        # A small share of the machine each: one core, one job at a time. Polling every 3 s: twenty nodes
        # still ask about every 0.15 s between them, and the server is not kept busy by polls alone.
        config.write_text(
            config.read_text()
            + 'cores = 1\nmemory_mb = 256\npoll_seconds = 3\ncontainer_user = "65534:65534"\n'
        )
        configs.append(config)
    # Started a few at a time: twenty Python processes importing Prefect at once crowd two cores for minutes.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda config: stack.start_node(config, timeout=240), configs))


def _count(server: stack.Server, group: dict[str, str], state: str | None = None) -> int:
    body: dict[str, object] = {"work_pools": {"name": {"any_": [group["work_pool"]]}}}
    if state:
        body["flow_runs"] = {"state": {"type": {"any_": [state]}}}
    headers = {"Authorization": f"Bearer {server.operator_secret}"}
    response = httpx.post(f"{server.url}/prefect/api/flow_runs/count", headers=headers, json=body, timeout=60)
    return response.json()


class ContainerStarts:
    """Every job container start the engine reports while open (its live event stream: the engine keeps only
    its last 256 events for later queries, and other test sessions share it), with the container's labels."""

    def __init__(self, engine: docker.DockerClient) -> None:
        filters = {"type": "container", "event": "start", "label": FLOW_RUN_LABEL}
        self._stream = engine.api.events(decode=True, filters=filters)
        self.labels: list[dict[str, str]] = []
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream:
                self.labels.append(event["Actor"]["Attributes"])
        except Exception:  # noqa: BLE001 - the stream ends with an error when closed under it
            return

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=10)


@pytest.mark.scale
@pytest.mark.timeout(COMPLETION_BOUND_S + 600)
def test_many_nodes_run_every_job_exactly_once_and_share_the_load(
    scale_server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    group = scale_server.init_group("many")
    nodes = _start_nodes(scale_server, group, s3_env, tmp_path)
    container_starts = ContainerStarts(docker.from_env())
    try:
        directories = []
        for index in range(JOBS):
            directory = tmp_path / "jobs" / f"job-{index:05d}"
            directory.mkdir(parents=True)
            (directory / "in.txt").write_text(f"{index}\n")
            directories.append(directory)
        env = stack.user_environment(scale_server, group, s3_env)
        began = time.time()
        submitted = stack.cli(
            "task-submit", "--batch", "jobs/job-*/", "--memory", "64", CODE, VERSION, "cat in.txt > out.txt",
            cwd=tmp_path, env=env, timeout=900,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        submitted_at = time.time()

        deadline = time.monotonic() + COMPLETION_BOUND_S
        while _count(scale_server, group, "COMPLETED") < JOBS and time.monotonic() < deadline:
            assert _count(scale_server, group, "FAILED") == 0
            time.sleep(2)
        finished = time.time()
        assert _count(scale_server, group, "COMPLETED") == JOBS
        assert _count(scale_server, group) == JOBS

        time.sleep(2)  # the last start events are on their way
        container_starts.close()
        ours = {node_label_value(tmp_path / f"node-{index:02d}-data") for index in range(NODES)}
        starts = [labels for labels in container_starts.labels if labels.get(NODE_LABEL) in ours]
        per_node = collections.Counter(Path(start[NODE_LABEL]).name for start in starts)
        print(
            f"\n{JOBS} jobs on {NODES} nodes: submitted in {submitted_at - began:.0f} s, all completed"
            f" {finished - submitted_at:.0f} s later ({JOBS / (finished - submitted_at):.2f} jobs/s);"
            f" jobs per node: {sorted(per_node.values())}"
        )
        job_ids = {(d / "leruli.job").read_text().strip() for d in directories}
        runs_per_job = collections.Counter(start[FLOW_RUN_LABEL] for start in starts)
        assert set(runs_per_job) == job_ids
        assert set(runs_per_job.values()) == {1}, [job for job, runs in runs_per_job.items() if runs != 1]
        assert len(per_node) == NODES, per_node

        s3 = stack.s3_client(s3_env)
        for index, directory in enumerate(directories):
            bucket = (directory / "leruli.bucket").read_text().strip()
            assert s3.get_object(Bucket=bucket, Key="out.txt")["Body"].read().decode() == f"{index}\n"
    finally:
        container_starts.close()
        with ThreadPoolExecutor(max_workers=NODES) as pool:
            list(pool.map(lambda node: node.stop(), nodes))
