"""`--json` on the read commands, for scripts: the job (or user, identity) as JSON on stdout; errors stay one
line on stderr with exit code 1."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests import stack
from tests.stack import TEST_IMAGE, cli

CODE, VERSION = TEST_IMAGE.split(":")
pytestmark = pytest.mark.usefixtures("alpha_node")


def test_status_json_gives_the_job_with_its_reason_and_stderr_tail(
    server: stack.Server, alpha: dict[str, str], alpha_user_env: dict[str, str], job_dir: Path
) -> None:
    submitted = cli("submit", CODE, VERSION, "echo went wrong >&2; exit 3", cwd=job_dir, env=alpha_user_env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    stack.wait_for_final_state(server, alpha, job_id)

    result = cli("status", "--json", cwd=job_dir, env=alpha_user_env)

    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["id"], job["state"], job["reason"], job["image"]) == (
        job_id,
        "Failed",
        "exit code 3",
        TEST_IMAGE,
    )
    assert job["stderr_tail"] == "went wrong"
    by_id = json.loads(cli("task-status", job_id, "--json", env=alpha_user_env).stdout)
    assert by_id["id"] == job_id


def test_other_read_commands_have_json(alpha_user_env: dict[str, str]) -> None:
    whoami = cli("whoami", "--json", env=alpha_user_env)
    assert json.loads(whoami.stdout)["group"] == "alpha"
    users = cli("user", "list", "--json", env=alpha_user_env)
    assert "admin" in {user["name"] for user in json.loads(users.stdout)}


@pytest.mark.parametrize(
    "arguments", [("status", "--json", str(uuid.uuid4())), ("status", "--json", "not-a-uuid")]
)
def test_status_json_errors_are_one_line_on_stderr(
    arguments: tuple[str, ...], alpha_user_env: dict[str, str]
) -> None:
    result = cli(*arguments, env=alpha_user_env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
