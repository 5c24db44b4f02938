"""The server stops (SIGTERM, or SIGKILL of its whole process group) while jobs run on a node, and is
restarted on the same data dir and port.

The running jobs end while the server is away: their states and outputs arrive once it is back, each job ran
exactly once (one Running, no `node lost`), the queued jobs start afterwards, and the node reconnects by
itself with backoff and says so in its log.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator

import pytest

from tests import stack
from tests.faults.conftest import report, restart_server, stop_server
from tests.worker.node_stack import NodeUnderTest, start_node_for_new_group, state_history

RUN_SECONDS = 4  # the running jobs end while the server is away
AWAY_SECONDS = 12  # longer than the Prefect client's own quick retries: the node's backoff takes over
# Each job leaves a text file and 200 kB of random bytes with their checksum, computed inside the job.
JOB = (
    "sleep {sleep}; echo {tag} > out.txt; head -c 200000 /dev/urandom > blob;"
    " md5sum blob | cut -c1-32 > blob.md5"
)


@pytest.fixture(scope="module")
def node(
    s3_env: dict[str, str], docker_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NodeUnderTest]:
    directory = tmp_path_factory.mktemp("restart")
    server = stack.start_server(directory / "server")
    started = start_node_for_new_group(server, s3_env, directory, "restart", slots=2)
    yield started
    started.process.stop()
    started.server.process.stop()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_jobs_survive_a_server_restart(node: NodeUnderTest, how: signal.Signals) -> None:
    reconnects = node.process.log_text().count("reconnected to the gateway after")
    jobs = {f"running-{i}": node.submit(JOB.format(sleep=RUN_SECONDS, tag=f"running-{i}")) for i in range(2)}
    for job_id, _ in jobs.values():
        node.wait_state(job_id, "Running", timeout=120)
    # Both slots are taken: these wait in the queue until the running ones have ended.
    jobs.update({f"queued-{i}": node.submit(JOB.format(sleep=0, tag=f"queued-{i}")) for i in range(2)})

    stopping = time.monotonic()
    stop_server(node.server, how)
    down = time.monotonic()
    time.sleep(AWAY_SECONDS)
    restart_server(node.server)
    up = time.monotonic()

    reconnected = node.process.wait_for_log("reconnected to the gateway after", reconnects + 1, timeout=120)
    finals = {job_id: node.wait_final(job_id, timeout=180) for job_id, _ in jobs.values()}
    recovered = time.monotonic() - up
    report(
        f"server {how.name}",
        stop_took=down - stopping,
        away=up - down,
        node_reconnected=reconnected,
        all_jobs_final=recovered,
    )

    log = node.process.log_text()
    assert "lost the gateway while" in log and "reconnecting with backoff" in log
    for tag, (job_id, bucket) in jobs.items():
        assert finals[job_id]["state"] == "Completed", finals[job_id]
        history = state_history(node.server, job_id)
        assert history.count("RUNNING") == 1 and "CRASHED" not in history, history
        assert node.read(bucket, "out.txt") == f"{tag}\n"
        blob = node.s3.get_object(Bucket=bucket, Key="blob")["Body"].read()
        assert len(blob) == 200000
        assert hashlib.md5(blob).hexdigest() == node.read(bucket, "blob.md5").strip()
