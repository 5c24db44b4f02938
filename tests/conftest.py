"""Session-wide real parts: S3, Docker, one server with two groups, one node for group `alpha`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack


@pytest.fixture(scope="session")
def s3_env() -> dict[str, str]:
    return stack.s3_environment()


@pytest.fixture(scope="session")
def docker_ready() -> None:
    stack.ensure_docker_and_test_image()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Server]:
    running = stack.start_server(tmp_path_factory.mktemp("server") / "data")
    running.init_group("alpha")
    running.init_group("beta")
    yield running
    running.process.stop()


@pytest.fixture(scope="session")
def alpha(server: stack.Server) -> dict[str, str]:
    return server.groups["alpha"]


@pytest.fixture(scope="session")
def beta(server: stack.Server) -> dict[str, str]:
    return server.groups["beta"]


@pytest.fixture(scope="session")
def alpha_node(
    server: stack.Server,
    alpha: dict[str, str],
    s3_env: dict[str, str],
    docker_ready: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[stack.Process]:
    config = stack.write_node_config(
        tmp_path_factory.mktemp("node") / "alpha-node.toml", server=server, group=alpha, s3=s3_env
    )
    node = stack.start_node(config)
    yield node
    node.stop()


@pytest.fixture
def alpha_user_env(server: stack.Server, alpha: dict[str, str], s3_env: dict[str, str]) -> dict[str, str]:
    return stack.user_environment(server, alpha, s3_env)


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "job"
    directory.mkdir()
    return directory
