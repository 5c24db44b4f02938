"""The original Leruli client (PyPI `leruli==22.1.6`, unchanged) in its own venv, run against our server."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import stack

SCRIPT = stack.REPO / "scripts" / "legacy-client-venv.sh"


def legacy_venv() -> Path:
    """The venv holding the original client; built by the project script on first use (about 40 s)."""
    result = subprocess.run([SCRIPT], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def environment(server: stack.Server, group: dict[str, str], s3: dict[str, str]) -> dict[str, str]:
    """What a researcher moving from the original service sets: LERULI_BASEURL, the secret, the S3 keys."""
    return {
        **stack.clean_environment(),
        **s3,
        "LERULI_BASEURL": server.url,
        "LERULI_API_SECRET": group["api_secret"],
    }


def run(
    venv: Path, *args: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The original `leruli` command."""
    return subprocess.run(
        [str(venv / "bin" / "leruli"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python(venv: Path, code: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Python code calling the original client's functions (`import leruli`)."""
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
