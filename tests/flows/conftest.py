"""Researchers' flows run in this process against the session's server, as a researcher's laptop would."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests import stack
from tests.stack import REPO


@pytest.fixture(scope="module")
def chemistry_images(docker_ready: None) -> None:
    """Build psi4:1.3.2 and xtb:6.5.1 offline (a no-op when they exist; about 75 s from nothing)."""
    build = subprocess.run(
        [REPO / "scripts" / "build-chem-images.sh"], capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stderr


@pytest.fixture
def researcher(
    monkeypatch: pytest.MonkeyPatch, alpha_user_env: dict[str, str], server: stack.Server
) -> Iterator[None]:
    """The LERULI_* environment of a member of group alpha; Prefect records the flow on the server's API.

    A researcher's flow may report to any Prefect API; the session's own is the nearest real one here.
    """
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    for name, value in alpha_user_env.items():
        if name.startswith("LERULI_"):
            monkeypatch.setenv(name, value)
    with temporary_settings(
        updates={
            PREFECT_API_URL: f"{server.url}/prefect/api",
            PREFECT_API_AUTH_STRING: server.operator_secret,
        }
    ):
        yield
        # Send Prefect's queued events while the API still runs, not at exit when the server is gone.
        EventsWorker.drain_all(timeout=30)
