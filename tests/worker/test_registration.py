"""Prefect finds our worker type through the `prefect.collections` entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_prefect_knows_the_leruli_docker_worker_type(tmp_path: Path) -> None:
    prefect = Path(sys.executable).parent / "prefect"
    result = subprocess.run(
        [prefect, "work-pool", "get-default-base-job-template", "--type", "leruli-docker"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    template = json.loads(result.stdout)
    assert set(template) == {"job_configuration", "variables"}
