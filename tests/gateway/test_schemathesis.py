"""schemathesis against the gateway's OpenAPI: no 5xx and no response outside the schema (bounded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import stack


def test_gateway_holds_its_openapi_contract(server: stack.Server, tmp_path: Path) -> None:
    # An admin name no generator guesses, so the fuzzer cannot disable or demote its own credential.
    group = server.init_group("fuzzed", admin_name="fuzz-admin-q7x")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {group['api_secret']}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "20",
            "--seed",
            "20261126",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
