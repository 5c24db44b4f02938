"""Session-wide real parts: S3, Docker, one server with two groups, one node for group `alpha`.

The server runs on SQLite; a test marked `on_both_databases` runs once more against a server on PostgreSQL
(a database of its own on the cluster of scripts/postgres.sh). Every test that uses the server carries the
database in its id (`[sqlite]`, `[postgres]`); pytest groups the tests by it, so each server starts once.
"""

from __future__ import annotations

import contextlib
import secrets
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


@pytest.fixture(scope="session", params=stack.DATABASES[:1])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.Server]:
    with contextlib.ExitStack() as cleanup:
        database = None
        if request.param == "postgres":
            database = cleanup.enter_context(
                stack.PostgresDatabase.create(f"leruli_test_{secrets.token_hex(4)}")
            )
        running = stack.start_server(
            tmp_path_factory.mktemp(f"server-{request.param}") / "data",
            database_url=database.url if database else None,
        )
        cleanup.callback(running.process.stop)
        running.init_group("alpha")
        running.init_group("beta")
        yield running


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
