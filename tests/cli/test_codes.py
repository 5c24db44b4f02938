"""Codes through the real parts: publish a machine-local image; a node that lacks it loads it and runs it."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from leruli_prefect.client import GatewayClient
from leruli_prefect.errors import StorageError
from leruli_prefect.storage.buckets import delete_bucket
from leruli_prefect.storage.s3_client import make_s3_client
from tests import stack
from tests.stack import TEST_IMAGE, cli

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="module")
def engine(docker_ready: None) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    yield client
    client.close()


@pytest.fixture(scope="module")
def s3(s3_env: dict[str, str]) -> S3Client:
    return make_s3_client(s3_env["LERULI_S3_SERVER"], s3_env["LERULI_S3_ACCESS"], s3_env["LERULI_S3_SECRET"])


@pytest.fixture(scope="module")
def codes_group(server: stack.Server, s3: S3Client) -> Iterator[dict[str, str]]:
    # A group of its own: once a group has published a code, jobs naming any other image are refused.
    group = server.init_group(f"codes-{secrets.token_hex(3)}")
    yield group
    # The S3 server caps the buckets of its one user: give back the ones this group made.
    with GatewayClient(server.url, api_secret=group["api_secret"]) as client:
        buckets = {client.code_bucket()} | {job.bucket for job in client.jobs() if job.bucket}
    for bucket in buckets:
        try:
            delete_bucket(s3, bucket)
        except StorageError:
            pass  # never created (the job's upload failed)


@pytest.fixture(scope="module")
def codes_node(
    server: stack.Server,
    codes_group: dict[str, str],
    s3_env: dict[str, str],
    docker_ready: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[stack.Process]:
    config = stack.write_node_config(
        tmp_path_factory.mktemp("codes-node") / "codes-node.toml", server=server, group=codes_group, s3=s3_env
    )
    node = stack.start_node(config)
    yield node
    node.stop()


@pytest.fixture
def user_env(server: stack.Server, codes_group: dict[str, str], s3_env: dict[str, str]) -> dict[str, str]:
    return stack.user_environment(server, codes_group, s3_env)


@pytest.fixture
def local_code(engine: docker.DockerClient) -> Iterator[tuple[str, str]]:
    """A machine-local image of its own (a copy of the test image with a marker), removed afterwards."""
    name, marker = f"mycode-{secrets.token_hex(3)}", secrets.token_hex(8)
    container = engine.containers.create(TEST_IMAGE, command="true")
    image = container.commit(repository=name, tag="1.0", changes=[f"ENV LERULI_CODE_MARKER={marker}"])
    container.remove()
    yield name, marker
    try:
        engine.images.remove(image.id, force=True)
    except docker.errors.NotFound:
        pass


def _publish(name: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    result = cli("publish-code", name, "1.0", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Published {name}:1.0 (sha256:")
    return time.monotonic() - started


def _submit(job_dir: Path, env: dict[str, str], name: str, command: str) -> str:
    result = cli("task-submit", name, "1.0", command, cwd=job_dir, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_published_code_runs_on_a_node_that_lacks_it(
    server: stack.Server,
    codes_group: dict[str, str],
    codes_node: stack.Process,
    user_env: dict[str, str],
    engine: docker.DockerClient,
    local_code: tuple[str, str],
    job_dir: Path,
    tmp_path: Path,
) -> None:
    name, marker = local_code
    image_id = engine.images.get(f"{name}:1.0").id
    publish_seconds = _publish(name, user_env)

    listed = cli("list-codes", env=user_env)
    assert listed.returncode == 0 and f"{name}:1.0" in listed.stdout.splitlines(), listed
    [record] = json.loads(cli("list-codes", "--json", env=user_env).stdout)
    assert (record["image"], record["image_id"], record["published_by"]) == (f"{name}:1.0", image_id, "admin")
    again = cli("publish-code", name, "1.0", env=user_env)
    assert again.returncode == 0 and "already published" in again.stdout

    engine.images.remove(f"{name}:1.0")  # the node (same engine) now lacks it
    started = time.monotonic()
    job_id = _submit(job_dir, user_env, name, "echo $LERULI_CODE_MARKER > marker.txt")
    job = stack.wait_for_final_state(server, codes_group, job_id)
    run_seconds = time.monotonic() - started
    assert job["state"] == "Completed", job
    assert engine.images.get(f"{name}:1.0").id == image_id  # loaded, and it is the published image
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    assert cli("get", job["bucket"], cwd=fetched, env=user_env).returncode == 0
    assert (fetched / "marker.txt").read_text().strip() == marker
    print(f"\npublish-code {publish_seconds:.2f} s; job with load {run_seconds:.2f} s")


def test_unpublished_code_is_refused_with_similar_names(
    codes_group: dict[str, str], user_env: dict[str, str], local_code: tuple[str, str], job_dir: Path
) -> None:
    name, _ = local_code
    _publish(name, user_env)
    result = cli("task-submit", name, "1.1", "true", cwd=job_dir, env=user_env)
    assert result.returncode == 1
    assert f"has no code {name}:1.1" in result.stderr and f"similar: {name}:1.0" in result.stderr
    assert not (job_dir / "leruli.job").exists()
    # Once the group has codes, the node-local test image is no code of it either.
    refused = cli("task-submit", *TEST_IMAGE.split(":"), "true", cwd=job_dir, env=user_env)
    assert refused.returncode == 1 and "list-codes" in refused.stderr


def test_a_published_version_never_changes(
    user_env: dict[str, str], engine: docker.DockerClient, local_code: tuple[str, str]
) -> None:
    name, _ = local_code
    _publish(name, user_env)
    container = engine.containers.create(f"{name}:1.0", command="true")
    changed = container.commit(repository=name, tag="1.0", changes=["ENV CHANGED=1"])
    container.remove()
    try:
        result = cli("publish-code", name, "1.0", env=user_env)
    finally:
        engine.images.remove(changed.id, force=True)
    assert result.returncode == 1 and "use a new version" in result.stderr, result
    assert not result.stderr.startswith("Traceback")


def test_tampered_archive_fails_the_job_and_is_not_loaded(
    server: stack.Server,
    codes_group: dict[str, str],
    codes_node: stack.Process,
    user_env: dict[str, str],
    s3: S3Client,
    engine: docker.DockerClient,
    local_code: tuple[str, str],
    job_dir: Path,
) -> None:
    name, _ = local_code
    _publish(name, user_env)
    [record] = [c for c in json.loads(cli("list-codes", "--json", env=user_env).stdout) if c["name"] == name]
    original = s3.get_object(Bucket=record["bucket"], Key=record["object_key"])["Body"].read()
    s3.put_object(Bucket=record["bucket"], Key=record["object_key"], Body=original[:-64] + b"\0" * 64)
    engine.images.remove(f"{name}:1.0")

    job = stack.wait_for_final_state(server, codes_group, _submit(job_dir, user_env, name, "true"))
    assert job["state"] == "Failed", job
    assert f"digest mismatch for {name}:1.0" in job["reason"], job
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(f"{name}:1.0")
