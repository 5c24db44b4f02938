"""The node's Docker client skips `requests`' environment lookups on a Unix socket, and only there."""

from __future__ import annotations

import pytest

from leruli_prefect.worker import docker_engine


def test_a_unix_socket_client_does_not_read_proxy_settings_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    engine = docker_engine.connect("unix:///var/run/docker.sock", version="1.41")  # no call to the engine
    url = "http+docker://localhost/v1.41/version"
    settings = engine.api.merge_environment_settings(url, {}, None, None, None)
    assert engine.api.trust_env is False
    assert settings["proxies"] == {}


def test_a_tcp_client_keeps_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    engine = docker_engine.connect("tcp://127.0.0.1:2375", version="1.41")
    settings = engine.api.merge_environment_settings("http://127.0.0.1:2375/version", {}, None, None, None)
    assert engine.api.trust_env is True
    assert settings["proxies"].get("http") == "http://127.0.0.1:9"
