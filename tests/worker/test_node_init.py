"""`leruli node init`: writes a node.toml that `leruli node start` reads, mode 0600, never overwriting."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from leruli_prefect.cli.main import app
from leruli_prefect.worker.node_config import load_node_config, machine_cores, machine_memory_mb

OPTIONS = [
    "--gateway-url", "http://127.0.0.1:4300",
    "--s3-server", "http://127.0.0.1:7480",
    "--s3-access", "AKEY",
    "--data-dir", "/var/lib/leruli-node",
]  # fmt: skip
SECRETS = ["--group-token", "lq_group_t", "--compute-secret", "lq_compute_c", "--s3-secret", 'se"cr\\et']


def test_init_writes_a_private_config_that_start_reads(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    extra = ["--cores", "1", "--memory", "512", "--slots", "3", "--container-user", "1000:1000"]
    result = CliRunner().invoke(
        app, ["node", "init", *OPTIONS, *SECRETS, *extra, "--docker-host", "unix:///run/user/1000/docker.sock",
              "--config", str(path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_node_config(path)
    assert config.gateway_url == "http://127.0.0.1:4300" and config.s3_access == "AKEY"
    assert config.group_token.get_secret_value() == "lq_group_t"
    assert config.compute_secret.get_secret_value() == "lq_compute_c"
    assert config.s3_secret.get_secret_value() == 'se"cr\\et'
    assert config.data_dir == Path("/var/lib/leruli-node")
    assert config.docker_host == "unix:///run/user/1000/docker.sock"
    assert (config.cores, config.memory_mb, config.slots) == (1, 512, 3)
    assert config.container_user == "1000:1000"
    assert "lq_compute_c" not in result.output


def test_init_asks_for_missing_secrets_and_offers_the_machine_by_default(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    result = CliRunner().invoke(
        app, ["node", "init", *OPTIONS, "--config", str(path)], input="lq_group_t\nlq_compute_c\ns3s\n"
    )
    assert result.exit_code == 0, result.output
    config = load_node_config(path)
    assert config.s3_secret.get_secret_value() == "s3s"
    assert (config.cores, config.memory_mb) == (machine_cores(), machine_memory_mb())
    assert config.container_user == "65534:65534"


def test_init_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("mine\n")
    result = CliRunner().invoke(app, ["node", "init", *OPTIONS, *SECRETS, "--config", str(path)])
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert path.read_text() == "mine\n"


def test_init_refuses_a_root_container_user_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    result = CliRunner().invoke(
        app, ["node", "init", *OPTIONS, *SECRETS, "--container-user", "0:0", "--config", str(path)]
    )
    assert result.exit_code == 1
    assert "must not run as root" in result.output
    assert not path.exists()
