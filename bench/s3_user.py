"""The benchmark's own S3 user on the local Ceph (scripts/s3.sh), with room for its thousands of buckets.

RGW caps a user at 1000 buckets by default, and the shared test user fills up with what concurrently running
test suites leave behind; row 3 alone needs 1000 buckets at once. A user of its own (made once with
`radosgw-admin`, like the test user) keeps the benchmark out of the others' way and theirs out of its.
Where the S3 server is not the local Ceph, the shared user's keys are used as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.stack import REPO

BENCH_UID = "leruli-bench"
BENCH_ACCESS = "leruli-bench-access"
BENCH_SECRET = "leruli-bench-secret-0123456789abcdef"  # a local test credential, like the test user's
MAX_BUCKETS = 5000
CEPH_CONF = REPO / ".stack" / "ceph" / "ceph.conf"


def bench_s3_environment(shared: dict[str, str]) -> dict[str, str]:
    """`LERULI_S3_*` for the benchmark's own user, creating it if needed; `shared` when that is impossible."""
    admin = shutil.which("radosgw-admin")
    if admin is None or not CEPH_CONF.exists():
        return shared
    environment = {**os.environ, "CEPH_CONF": str(CEPH_CONF)}

    def radosgw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([admin, *args], env=environment, capture_output=True, text=True, timeout=60)

    if radosgw("user", "info", "--uid", BENCH_UID).returncode != 0:
        created = radosgw(
            "user", "create", "--uid", BENCH_UID, "--display-name", "leruli benchmarks",
            "--access-key", BENCH_ACCESS, "--secret-key", BENCH_SECRET, "--max-buckets", str(MAX_BUCKETS),
        )  # fmt: skip
        if created.returncode != 0:
            return shared
    return {**shared, "LERULI_S3_ACCESS": BENCH_ACCESS, "LERULI_S3_SECRET": BENCH_SECRET}
