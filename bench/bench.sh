#!/usr/bin/env bash
# `make bench`: install what is missing, start the real parts the benchmarks need (Docker, S3) if they are
# not running, run bench/run.py (its own server and node), then stop by PID only the parts started here.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

scripts/install-deps.sh

started=()
stop_started() {
    local part
    for part in "${started[@]}"; do
        scripts/"$part".sh stop || echo "bench.sh: could not stop $part" >&2
    done
}
trap stop_started EXIT

for part in docker s3; do
    if ! scripts/"$part".sh status >/dev/null 2>&1; then
        scripts/"$part".sh start
        started+=("$part")
    fi
done
scripts/build-test-image.sh

.venv/bin/python -m bench.run "$@"
