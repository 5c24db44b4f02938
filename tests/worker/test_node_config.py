"""node.toml: read, validated, and refused with a clear message when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from leruli_prefect.errors import ConfigurationError
from leruli_prefect.worker.node_config import load_node_config, machine_cores, machine_memory_mb

VALID = """
gateway_url = "http://127.0.0.1:4300"
group_token = "lq_group_x"
compute_secret = "lq_compute_y"
s3_server = "http://127.0.0.1:7480"
s3_access = "a"
s3_secret = "s"
data_dir = "/var/lib/leruli"
"""


def test_valid_config_has_defaults(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(VALID)
    config = load_node_config(path)
    assert config.slots == 2 and config.poll_seconds == 0.25
    assert config.docker_host == "unix:///var/run/docker.sock"
    assert "lq_compute_y" not in repr(config)  # secrets never show in logs or tracebacks


def test_missing_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(VALID.replace('s3_secret = "s"\n', ""))
    with pytest.raises(ConfigurationError, match="s3_secret: Field required"):
        load_node_config(path)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("slots = = 2")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_node_config(path)
    with pytest.raises(ConfigurationError, match="no node config"):
        load_node_config(tmp_path / "absent.toml")


def test_offer_defaults_to_the_machine_and_jobs_never_run_as_root(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(VALID)
    config = load_node_config(path)
    assert config.cores == machine_cores() and config.memory_mb == machine_memory_mb() > 0
    assert config.container_user == "65534:65534"
    path.write_text(VALID + 'container_user = "0:0"\n')
    with pytest.raises(ConfigurationError, match="must not run as root"):
        load_node_config(path)
    path.write_text(VALID + 'container_user = "nobody"\n')
    with pytest.raises(ConfigurationError, match="container_user"):
        load_node_config(path)
