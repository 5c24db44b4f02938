#!/usr/bin/env bash
# Run a command with the real parts it needs: install what is missing, start Docker, S3, PostgreSQL and Redis
# unless they run already, build the offline images, run the command, then stop by PID only the parts started
# here.
# Used by `make test` (scripts/test.sh) and `make bench` (bench/bench.sh).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

scripts/install-deps.sh

started=()
stop_started() {
    local part
    for part in "${started[@]}"; do
        scripts/"$part".sh stop || echo "with-services.sh: could not stop $part" >&2
    done
}
trap stop_started EXIT

for part in docker s3 postgres redis; do
    if ! scripts/"$part".sh status >/dev/null 2>&1; then
        scripts/"$part".sh start
        started+=("$part")
    fi
done
scripts/build-test-image.sh
scripts/build-chem-images.sh  # psi4:1.3.2 and xtb:6.5.1 (about 75 s the first time, then skipped)
scripts/chromium.sh  # Debian's chromium and playwright-core for the UI's browser test (tests/ui/)

"$@"
