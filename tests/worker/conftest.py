"""A node of its own group (`gamma`) for the node tests: 2 cores, 1000 MB, 3 slots, jobs as nobody."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests import stack
from tests.worker.node_stack import NodeUnderTest, start_node_for_new_group

NODE_CORES = 2
NODE_MEMORY_MB = 1000
NODE_SLOTS = 3
CONTAINER_USER = "65534:65534"


@pytest.fixture(scope="session")
def engine(docker_ready: None) -> docker.DockerClient:
    return docker.DockerClient(base_url="unix:///var/run/docker.sock")


@pytest.fixture(scope="session")
def gamma_node(
    server: stack.Server,
    s3_env: dict[str, str],
    docker_ready: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NodeUnderTest]:
    node = start_node_for_new_group(
        server,
        s3_env,
        tmp_path_factory.mktemp("gamma"),
        "gamma",
        slots=NODE_SLOTS,
        cores=NODE_CORES,
        memory_mb=NODE_MEMORY_MB,
        container_user=CONTAINER_USER,
    )
    yield node
    node.process.stop()
