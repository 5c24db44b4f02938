"""Each way a job ends has its exact reason, set by the real node and printed by `leruli status` with the
last lines of joberr.txt (read from the job's bucket with the user's S3 keys)."""

from __future__ import annotations

import pytest

from tests import stack
from tests.worker.node_stack import NodeUnderTest, wait_for_output

# The shell holds 200 MB of 'a's in a variable: far past a 32 MB limit.
HUNGRY = "echo allocating >&2; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"


@pytest.mark.parametrize(
    ("command", "limits", "reason", "stderr_tail"),
    [
        ("for i in $(seq 1 15); do echo line $i >&2; done; exit 3", {}, "exit code 3", "line 15"),
        (HUNGRY, {"memory_mb": 32}, "out of memory (limit 32 MB)", "allocating"),
        ("echo started >&2; sleep 60", {"time_limit_s": 1}, "time limit exceeded (1 s)", "started"),
    ],
    ids=["exit-code", "out-of-memory", "time-limit"],
)
def test_status_prints_the_reason_and_the_end_of_joberr(
    gamma_node: NodeUnderTest, command: str, limits: dict[str, int], reason: str, stderr_tail: str
) -> None:
    job_id, _ = gamma_node.submit(command, **limits)
    job = gamma_node.wait_final(job_id)
    assert (job["state"], job["reason"]) == ("Failed", reason)

    env = stack.user_environment(gamma_node.server, gamma_node.group, gamma_node.s3_env)
    status = stack.cli("status", job_id, env=env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"Failed: {reason}"
    assert lines[1].startswith("Result: exit code ")  # the result record's summary
    assert lines[2] == "Last lines of joberr.txt:"
    # The end of joberr.txt; for a job the kernel killed, the shell may add its own "Killed" line after it.
    shown = lines[3:-1] if lines[-1] == "Killed" else lines[3:]
    assert shown and shown[-1] == stderr_tail and len(lines) <= 13
    assert status.stderr == ""


def test_status_of_a_cancelled_job_says_cancelled(gamma_node: NodeUnderTest) -> None:
    job_id, _ = gamma_node.submit("echo started; sleep 60")
    # Running is set before the container exists; a job cancelled before it started has no result record.
    wait_for_output(gamma_node.run_dir(job_id) / "joblog.txt")
    gamma_node.cancel(job_id)
    assert gamma_node.wait_final(job_id, timeout=30)["state"] == "Cancelled"
    env = stack.user_environment(gamma_node.server, gamma_node.group, gamma_node.s3_env)
    status = stack.cli("status", job_id, env=env)
    assert (status.returncode, status.stderr) == (0, "")
    state, summary = status.stdout.splitlines()
    assert state == "Cancelled" and summary.startswith("Result: exit code 137, ")  # killed, outputs kept
