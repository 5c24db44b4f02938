"""The real parts a benchmark run needs: S3 and Docker (shared), and its own server, groups and node.

Built on the test suite's helpers (tests/stack.py): each part runs as its own process, started as a user
starts it, on free ports. Everything made here (processes, buckets, containers) is removed by `close`.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.s3_user import bench_s3_environment
from leruli_prefect.client import GatewayClient
from leruli_prefect.storage.buckets import delete_bucket
from leruli_prefect.storage.s3_client import make_s3_client
from leruli_prefect.worker.container_runner import NODE_LABEL
from leruli_prefect.worker.docker_filesystem import local_docker_root, shares_filesystem
from leruli_prefect.worker.leftovers import node_label_value
from tests import stack

if TYPE_CHECKING:
    import docker
    from mypy_boto3_s3 import S3Client

TEST_IMAGE = stack.TEST_IMAGE
# The group a node serves (rows that run jobs) and the groups whose jobs stay queued (submission rows).
RUN_GROUP = "bench-run"
# Threads for concurrent S3 and REST work: a few per core hides the round trips without thrashing 2 cores.
CONCURRENCY = 8
# Under concurrent submissions a request can queue behind others for a long time on 2 busy cores: a slow
# answer is a figure, not an error.
GATEWAY_TIMEOUT_S = 300.0
STARTUP_TIMEOUT_S = 300.0
DOCKER_HOST = "unix:///var/run/docker.sock"  # the node's default, and what `docker.from_env()` finds here
SHARED_MEMORY = Path("/dev/shm")


@dataclass
class BenchStack:
    """A server with its groups, one node for `RUN_GROUP`, and clients for S3 and Docker."""

    scratch: Path
    s3_env: dict[str, str]
    server: stack.Server
    node: stack.Process | None = None
    node_data_dir: Path | None = None
    buckets: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _local: threading.local = field(default_factory=threading.local)

    @classmethod
    def start(cls) -> BenchStack:
        s3_env = bench_s3_environment(stack.s3_environment())
        stack.ensure_docker_and_test_image()
        scratch = Path(tempfile.mkdtemp(prefix="leruli-bench-"))
        # A new database takes 11-13 s on a quiet machine, over 80 s on a loaded one: do not give up early.
        server = stack.start_server(scratch / "server", timeout=STARTUP_TIMEOUT_S)
        return cls(scratch=scratch, s3_env=s3_env, server=server)

    def group(self, name: str) -> dict[str, str]:
        """The group's secrets, creating it on first use."""
        with self._lock:  # threads submitting to a new group must not each try to create it
            if name not in self.server.groups:
                self.server.init_group(name)
            return self.server.groups[name]

    def start_node(self, slots: int = 2) -> stack.Process:
        self.node_data_dir = node_data_dir(self.scratch, self.docker())
        config = stack.write_node_config(
            self.scratch / "node.toml",
            server=self.server,
            group=self.group(RUN_GROUP),
            s3=self.s3_env,
            slots=slots,
            data_dir=self.node_data_dir,
        )
        self.node = stack.start_node(config, timeout=STARTUP_TIMEOUT_S)
        return self.node

    def node_pid(self) -> int:
        assert self.node is not None, "start_node first"
        return self.node.popen.pid

    def gateway(self, group: str) -> GatewayClient:
        """A client of `group` with its admin's API secret and its group token (one per thread)."""
        secrets = self.group(group)
        clients: dict[str, GatewayClient] = self._local.__dict__.setdefault("gateways", {})
        if group not in clients:
            clients[group] = GatewayClient(
                self.server.url,
                api_secret=secrets["api_secret"],
                group_token=secrets["group_token"],
                timeout=GATEWAY_TIMEOUT_S,
            )
        return clients[group]

    def s3(self) -> S3Client:
        """A boto3 client per thread (boto3 clients are thread-safe, but one pool caps the connections)."""
        if not hasattr(self._local, "s3"):
            self._local.s3 = make_s3_client(
                self.s3_env["LERULI_S3_SERVER"],
                self.s3_env["LERULI_S3_ACCESS"],
                self.s3_env["LERULI_S3_SECRET"],
            )
        return self._local.s3

    def docker(self) -> docker.DockerClient:
        if not hasattr(self._local, "docker"):
            import docker

            self._local.docker = docker.from_env()
        return self._local.docker

    def created_bucket(self, bucket: str) -> None:
        """Remember a bucket to delete at the end."""
        with self._lock:
            self.buckets.add(bucket)

    def delete_buckets(self) -> None:
        with self._lock:
            buckets, self.buckets = sorted(self.buckets), set()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda bucket: _delete_quietly(self.s3(), bucket), buckets))

    def close(self) -> None:
        """Stop the node and the server, delete the buckets and any container left by this run's node."""
        if self.node is not None:
            self.node.stop()
        self.server.process.stop()
        self.delete_buckets()
        if self.node_data_dir is not None:
            label = f"{NODE_LABEL}={node_label_value(self.node_data_dir)}"
            for container in self.docker().containers.list(all=True, filters={"label": label}):
                container.remove(force=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.node_data_dir is not None:
            shutil.rmtree(self.node_data_dir, ignore_errors=True)


def mount_of(path: Path) -> str:
    """The mount point and filesystem type holding `path` (/proc/self/mounts), e.g. `/dev/shm (tmpfs)`."""
    mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    point, kind = max(
        ((point, kind) for point, kind in mounts if path.resolve().is_relative_to(point)),
        key=lambda mount: len(mount[0]),
    )
    return f"{point} ({kind})"


def node_data_dir(scratch: Path, engine: docker.DockerClient) -> Path:
    """Where the node unpacks jobs: as docs/adding-a-node.md advises, on another filesystem than Docker's
    data root, which Docker flushes at every container's creation and end (worker/docker_filesystem.py).
    On a machine with one disk the other filesystem is tmpfs (/dev/shm); without one, beside the scratch."""
    root = local_docker_root(DOCKER_HOST, engine)
    if root and shares_filesystem(scratch, root) and shares_filesystem(SHARED_MEMORY, root) is False:
        return Path(tempfile.mkdtemp(prefix="leruli-bench-node-", dir=SHARED_MEMORY))
    return scratch / "node-data"


def _delete_quietly(s3: S3Client, bucket: str) -> None:
    try:
        delete_bucket(s3, bucket)
    except Exception:  # noqa: BLE001 - gone already (e.g. never created): nothing to clean
        pass
