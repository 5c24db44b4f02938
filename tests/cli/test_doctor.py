"""`leruli doctor` against the real server, S3 and Docker: what is right, and what is wrong in plain words."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import docker

from tests import stack
from tests.stack import cli


def test_doctor_checks_a_users_settings(
    server: stack.Server, alpha: dict[str, str], alpha_user_env: dict[str, str]
) -> None:
    result = cli("doctor", env=alpha_user_env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"ok       gateway {server.url}: reachable" in lines
    assert "ok       API secret: valid: user admin (admin) of group alpha" in lines
    assert "ok       group token: valid: group of group alpha" in lines
    assert "ok       S3: reachable, keys accepted" in lines
    # The test S3 user may list every bucket: the doctor must say that this is unsafe.
    assert any(line.startswith("warning  S3: these keys can list every bucket") for line in lines)
    assert alpha["api_secret"] not in result.stdout


def test_doctor_names_each_problem(alpha_user_env: dict[str, str]) -> None:
    env = {
        **alpha_user_env,
        "LERULI_API_SECRET": "lq_group_notauserbutagrouptokenthatdoesnotexist1",
        "LERULI_S3_SECRET": "wrong",
    }
    result = cli("doctor", env=env)
    assert result.returncode == 1
    assert "problem  API secret: this is a group secret; API secrets start with lq_user_" in result.stdout
    assert "problem  S3: the keys are not accepted" in result.stdout
    assert "2 problem(s) found" in result.stderr
    unknown = cli("doctor", env={**alpha_user_env, "LERULI_API_SECRET": "lq_user_" + "x" * 43})
    assert "problem  API secret: API secret not accepted (check LERULI_API_SECRET)" in unknown.stdout


def test_doctor_checks_a_node(
    server: stack.Server, alpha: dict[str, str], s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    config = stack.write_node_config(tmp_path / "node.toml", server=server, group=alpha, s3=s3_env)
    result = cli("doctor", "--node", str(config))
    assert result.returncode == 0, result.stdout
    assert "ok       compute secret and group token: valid: compute of group alpha" in result.stdout
    assert "ok       Docker unix:///var/run/docker.sock: reachable (engine 20.10" in result.stdout
    config.chmod(0o644)
    assert (
        f"warning  {config} holds secrets but others may read it: chmod 600 it"
        in cli("doctor", "--node", str(config)).stdout.splitlines()
    )


def test_doctor_says_whether_run_dirs_share_dockers_filesystem(
    server: stack.Server, alpha: dict[str, str], s3_env: dict[str, str], docker_ready: None, tmp_path: Path
) -> None:
    """Checked against the engine's real data root, for a data dir on the test's disk and one on tmpfs."""
    root = docker.DockerClient(base_url="unix:///var/run/docker.sock").info()["DockerRootDir"]
    shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        for where in (tmp_path, shm):
            config = stack.write_node_config(where / "node.toml", server=server, group=alpha, s3=s3_env)
            data_dir = where / "node-data"  # write_node_config's choice
            shared = os.stat(where).st_dev == os.stat(root).st_dev
            lines = cli("doctor", "--node", str(config)).stdout.splitlines()
            if shared:
                assert (
                    f"warning  data dir {data_dir} is on the filesystem of Docker's data root {root}: "
                    in "\n".join(lines)
                )
            else:
                assert f"ok       data dir {data_dir}: not on the filesystem of Docker's data root" in lines
        # Two filesystems: they cannot both be Docker's, so not every data dir above was judged alike.
        assert os.stat(tmp_path).st_dev != os.stat(shm).st_dev
    finally:
        for path in shm.iterdir():
            path.unlink()
        shm.rmdir()
