"""A node killed mid-job (SIGKILL) and started again clears its own leftovers: its container (found by label,
never another node's), its run dir, and the job, which ends Crashed with `node lost`."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from tests import stack
from tests.worker.node_stack import (
    NodeUnderTest,
    job_containers,
    start_node_for_new_group,
    wait_for_container,
)


def test_restarted_node_clears_its_leftovers_only(
    server: stack.Server,
    s3_env: dict[str, str],
    gamma_node: NodeUnderTest,
    engine: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The longest heartbeat: the server writes delta off only after 90 s of silence, longer than its restart
    # takes on a loaded machine (the node itself must be the one to clear its job).
    delta = start_node_for_new_group(
        server, s3_env, tmp_path_factory.mktemp("delta"), "delta", slots=1, heartbeat_seconds=30
    )
    neighbour_id = None
    try:
        job_id, _ = delta.submit("sleep 120")
        wait_for_container(engine, job_id)
        neighbour_id, _ = gamma_node.submit("sleep 120")  # another node's job on the same Docker engine
        wait_for_container(engine, neighbour_id)

        delta.process.popen.kill()  # SIGKILL: no clean-up of its own
        delta.process.popen.wait()
        assert job_containers(engine, job_id) and delta.run_dir(job_id).exists()
        assert delta.job(job_id)["state"] == "Running"

        delta.process = stack.start_node(Path(str(delta.process.log).removesuffix(".log") + ".toml"))
        job = delta.wait_final(job_id, timeout=60)
        assert (job["state"], job["reason"]) == ("Crashed", "node lost")
        assert not job_containers(engine, job_id, running_only=False)
        assert not delta.run_dir(job_id).exists()
        assert job_containers(engine, neighbour_id)  # not delta's: untouched
    finally:
        delta.process.stop()
        if neighbour_id is not None:
            gamma_node.cancel(neighbour_id)
            assert gamma_node.wait_final(neighbour_id, timeout=30)["state"] == "Cancelled"
