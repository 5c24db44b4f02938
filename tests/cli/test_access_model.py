"""The access model through the `leruli` CLI and a real server: users, roles, cancel, prune, login, audit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from tests import stack
from tests.stack import REPO, TEST_IMAGE, cli

CODE, VERSION = TEST_IMAGE.split(":")


@pytest.fixture(scope="module")
def nodeless(server: stack.Server) -> dict[str, str]:
    """A group with no node: its jobs stay queued."""
    return server.init_group("nodeless")


def _env(
    server: stack.Server, group: dict[str, str], s3: dict[str, str], secret: str | None = None
) -> dict[str, str]:
    env = stack.user_environment(server, group, s3)
    env["LERULI_API_SECRET"] = secret or group["api_secret"]
    return env


def _ok(result: object) -> str:
    assert result.returncode == 0, result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined]


def test_admin_adds_and_disables_users_at_once(
    server: stack.Server, nodeless: dict[str, str], s3_env: dict[str, str]
) -> None:
    admin = _env(server, nodeless, s3_env)
    added = _ok(cli("user", "add", "carol", env=admin))
    carol_secret = added.split()[-1]
    assert carol_secret.startswith("lq_user_")
    carol = _env(server, nodeless, s3_env, carol_secret)
    assert "carol (user) of group nodeless" in _ok(cli("whoami", env=carol))
    assert '"name": "carol"' in _ok(cli("user", "list", "--json", env=admin))

    refused = cli("user", "add", "mallory", env=carol)
    assert refused.returncode == 1 and "needs an admin" in refused.stderr

    _ok(cli("user", "disable", "carol", env=admin))
    after = cli("whoami", env=carol)
    assert after.returncode == 1
    assert after.stderr.strip() == "Error: user 'carol' is disabled"
    assert "carol" in _ok(cli("user", "list", env=admin)) and "disabled" in _ok(
        cli("user", "list", env=admin)
    )


def test_last_admin_is_never_disabled_or_demoted(server: stack.Server, s3_env: dict[str, str]) -> None:
    group = server.init_group("solo")
    admin = _env(server, group, s3_env)
    for args in (("user", "disable", "admin"), ("user", "role", "admin", "regular")):
        result = cli(*args, env=admin)
        assert result.returncode == 1
        assert "last admin" in result.stderr
    second = _ok(cli("user", "add", "deputy", "--admin", env=admin)).split()[-1]
    _ok(cli("user", "role", "admin", "regular", env=_env(server, group, s3_env, second)))
    assert "admin (user)" in _ok(cli("whoami", env=admin))


def test_cancelled_queued_job_never_starts(
    server: stack.Server, nodeless: dict[str, str], s3_env: dict[str, str], job_dir: Path, tmp_path: Path
) -> None:
    admin = _env(server, nodeless, s3_env)
    job_id = _ok(cli("submit", CODE, VERSION, "echo ran > ran.txt", cwd=job_dir, env=admin)).strip()
    assert _ok(cli("cancel", cwd=job_dir, env=admin)).strip() == f"{job_id}: Cancelled"
    # A node of the group comes up afterwards: the job must not run.
    config = stack.write_node_config(
        tmp_path / "nodeless-node.toml", server=server, group=nodeless, s3=s3_env
    )
    node = stack.start_node(config)
    try:
        time.sleep(3)
    finally:
        node.stop()
    assert _ok(cli("status", cwd=job_dir, env=admin)).strip() == "Cancelled: cancelled by admin"
    _ok(cli("get", cwd=job_dir, env=admin))
    assert not (job_dir / "ran.txt").exists()
    again = cli("cancel", job_id, env=admin)
    assert again.returncode == 1 and "already ended" in again.stderr


def test_prune_deletes_an_ended_jobs_bucket_for_its_owner_or_an_admin(
    server: stack.Server, nodeless: dict[str, str], s3_env: dict[str, str], job_dir: Path
) -> None:
    admin = _env(server, nodeless, s3_env)
    dave = _env(server, nodeless, s3_env, _ok(cli("user", "add", "dave", env=admin)).split()[-1])
    erin = _env(server, nodeless, s3_env, _ok(cli("user", "add", "erin", env=admin)).split()[-1])
    job_id = _ok(cli("submit", CODE, VERSION, "true", cwd=job_dir, env=dave)).strip()
    bucket = (job_dir / "leruli.bucket").read_text().strip()

    queued = cli("prune", cwd=job_dir, env=dave)
    assert queued.returncode == 1 and "cancel it or let it end" in queued.stderr
    _ok(cli("cancel", cwd=job_dir, env=dave))
    other = cli("purge", job_id, bucket, env=erin)
    assert other.returncode == 1 and "only the job's owner or an admin" in other.stderr

    assert f"bucket {bucket}" in _ok(cli("task-prune", cwd=job_dir, env=dave))
    s3 = stack.s3_client(s3_env)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)


def test_login_keeps_the_secret_in_the_keyring_and_the_environment_wins(
    server: stack.Server, nodeless: dict[str, str], s3_env: dict[str, str], tmp_path: Path
) -> None:
    base = stack.user_environment(server, nodeless, s3_env)
    del base["LERULI_API_SECRET"]
    keyring_env = {
        **base,
        "PYTHON_KEYRING_BACKEND": "tests.cli.file_keyring.FileKeyring",
        "PYTHONPATH": str(REPO),
        "LERULI_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    assert "as admin of group nodeless" in _ok(
        cli("login", "--api-secret", nodeless["api_secret"], env=keyring_env)
    )
    assert nodeless["api_secret"] not in _ok(cli("whoami", env=keyring_env))
    assert "admin (admin) of group nodeless" in _ok(cli("whoami", env=keyring_env))
    frank = _ok(cli("user", "add", "frank", env=keyring_env)).split()[-1]
    assert "frank (user)" in _ok(cli("whoami", env={**keyring_env, "LERULI_API_SECRET": frank}))

    wrong = cli("login", "--api-secret", "lq_user_wrongwrongwrongwrongwrongwrongwrongwrong1", env=keyring_env)
    assert wrong.returncode == 1 and "API secret not accepted" in wrong.stderr
    no_keyring = {**base, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    failed = cli("login", "--api-secret", nodeless["api_secret"], env=no_keyring)
    assert failed.returncode == 1
    assert "no usable keyring" in failed.stderr and "LERULI_API_SECRET" in failed.stderr


def test_rotate_secret_keeps_the_new_one_where_the_old_one_was(
    server: stack.Server, nodeless: dict[str, str], s3_env: dict[str, str], tmp_path: Path
) -> None:
    base = stack.user_environment(server, nodeless, s3_env)
    del base["LERULI_API_SECRET"]
    old = _ok(cli("user", "add", "hana", env=_env(server, nodeless, s3_env))).split()[-1]
    keyring_env = {
        **base,
        "PYTHON_KEYRING_BACKEND": "tests.cli.file_keyring.FileKeyring",
        "PYTHONPATH": str(REPO),
        "LERULI_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
    }
    _ok(cli("login", "--api-secret", old, env=keyring_env))

    # Kept in the keyring: the next command uses the new secret; the old one is refused at once.
    rotated = _ok(cli("rotate-secret", env=keyring_env))
    new = rotated.split()[-1]
    assert new.startswith("lq_user_") and new != old and "kept in the keyring (FileKeyring)" in rotated
    assert json.loads((tmp_path / "keyring.json").read_text()) == {f"leruli|{server.url}": new}
    assert "hana (user) of group nodeless" in _ok(cli("whoami", env=keyring_env))
    refused = cli("whoami", env={**keyring_env, "LERULI_API_SECRET": old})
    assert refused.returncode == 1 and "API secret not accepted" in refused.stderr

    # Set in the environment (which wins): printed, to be put there; the keyring is left alone.
    from_environment = cli("rotate-secret", env={**keyring_env, "LERULI_API_SECRET": new})
    newer = _ok(from_environment).split()[-1]
    assert newer.startswith("lq_user_") and newer != new
    assert "LERULI_API_SECRET is set: replace its value" in from_environment.stderr
    assert "hana (user)" in _ok(cli("whoami", env={**keyring_env, "LERULI_API_SECRET": newer}))
    assert cli("whoami", env=keyring_env).returncode == 1  # the keyring's is now the old one

    # No keyring and no LERULI_API_SECRET: refused before anything is rotated.
    no_keyring = {**base, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    failed = cli("rotate-secret", env=no_keyring)
    assert failed.returncode == 1 and "no usable keyring" in failed.stderr
    assert "hana (user)" in _ok(cli("whoami", env={**keyring_env, "LERULI_API_SECRET": newer}))


def test_audit_log_keeps_admin_actions_and_refusals_without_secrets(
    server: stack.Server, s3_env: dict[str, str]
) -> None:
    group = server.init_group("audited")
    admin = _env(server, group, s3_env)
    grace = _ok(cli("user", "add", "grace", env=admin)).split()[-1]
    cli("user", "add", "intruder", env=_env(server, group, s3_env, grace))
    _ok(cli("compute-secret", "rotate", env=admin))

    entries = httpx.get(
        f"{server.url}/v1/audit", headers={"Authorization": f"Bearer {group['group_token']}"}
    ).json()
    by_action = {(e["actor"], e["action"], e["outcome"]) for e in entries["entries"]}
    assert ("user:admin", "add user grace", "ok") in by_action
    assert ("user:grace", "POST /v1/users", "refused 403") in by_action
    assert ("user:admin", "rotate compute secret", "ok") in by_action
    text = str(entries)
    for secret in (grace, group["api_secret"], group["group_token"], group["compute_secret"]):
        assert secret not in text
    assert all(e["source"] == "127.0.0.1" for e in entries["entries"])


def test_rotation_cuts_off_a_running_node_at_once(
    server: stack.Server, s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    group = server.init_group("rotating")
    admin = _env(server, group, s3_env)
    node = stack.start_node(
        stack.write_node_config(tmp_path / "old-node.toml", server=server, group=group, s3=s3_env)
    )
    try:
        first = tmp_path / "first"
        first.mkdir()
        job = _ok(cli("submit", CODE, VERSION, "true", cwd=first, env=admin)).strip()
        assert stack.wait_for_final_state(server, group, job)["state"] == "Completed"

        new_secret = _ok(cli("compute-secret", "rotate", env=admin)).split()[-1]
        second = tmp_path / "second"
        second.mkdir()
        job = _ok(cli("submit", CODE, VERSION, "true", cwd=second, env=admin)).strip()
        time.sleep(3)  # three poll intervals of the old node
        assert _ok(cli("status", cwd=second, env=admin)).strip() == "Scheduled"
    finally:
        node.stop()
    assert "401" in node.log_text() or "Unauthorized" in node.log_text()

    renewed = {**group, "compute_secret": new_secret}
    config = stack.write_node_config(tmp_path / "new-node.toml", server=server, group=renewed, s3=s3_env)
    node = stack.start_node(config)
    try:
        assert stack.wait_for_final_state(server, group, job)["state"] == "Completed"
    finally:
        node.stop()
