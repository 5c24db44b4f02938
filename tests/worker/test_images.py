"""The node's code-list requests (the real node and gateway are in tests/cli/test_codes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leruli_prefect.worker import images
from tests.worker.offline_config import offline_node_config


class CountingGateway:
    """Stands in for GatewayClient: counts how many are made and answers with one code."""

    made = 0

    def __init__(self, baseurl: str) -> None:
        CountingGateway.made += 1
        self.baseurl = baseurl

    def node_codes(self, *, group_token: str, compute_secret: str) -> list[dict[str, Any]]:
        return [{"image": "psi4:1.3.2", "asked": self.baseurl, "token": group_token}]


def test_every_refresh_of_the_code_list_reuses_one_client_per_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "GatewayClient", CountingGateway)
    monkeypatch.setattr(images, "_gateways", {})
    monkeypatch.setattr(images, "_codes_cache", {})
    configs = [offline_node_config(tmp_path, gateway_url=f"http://127.0.0.1:{port}") for port in (4300, 4301)]
    for _ in range(3):
        for config in configs:
            # max_age 0: asked afresh every time, as for an image the node lacks
            found = images._published(config, "psi4:1.3.2", max_age=0.0)
            assert found == {"image": "psi4:1.3.2", "asked": config.gateway_url, "token": "lq_group_x"}
    assert CountingGateway.made == 2
    assert images._published(configs[0], "xtb:6.5.1", max_age=0.0) is None
