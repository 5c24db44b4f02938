#!/usr/bin/env bash
# `make test`: install what is missing, start the real parts the tests need (Docker, S3), run the whole
# test suite, then stop by PID every part this script started (parts that were already running stay).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

scripts/install-deps.sh

started=()
stop_started() {
    local part
    for part in "${started[@]}"; do
        scripts/"$part".sh stop || echo "test.sh: could not stop $part" >&2
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
scripts/build-chem-images.sh  # psi4:1.3.2 and xtb:6.5.1 for tests/cli/test_chemistry.py (about 75 s the first time)

.venv/bin/python -m pytest "$@"
