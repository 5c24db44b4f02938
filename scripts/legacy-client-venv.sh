#!/usr/bin/env bash
# A virtual environment holding the original Leruli client from PyPI, `leruli==22.1.6`, unchanged, for the
# tests of our server's compatibility routes (tests/gateway/test_legacy_client.py calls this lazily).
# Its own venv: the client needs aiobotocore, whose botocore pin differs from our boto3's.
#
# Usage: scripts/legacy-client-venv.sh      prints the venv's directory; its bin/leruli is the old CLI
# Idempotent: built once (about 30 s), rebuilt only when this script changes.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LERULI_LEGACY_CLIENT_VENV:-${LERULI_STACK_DIR:-$REPO_DIR/.stack}/legacy-client-venv}"
STAMP="$VENV/.installed-$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

# The client's dependencies as resolved when this was written (November 2026), pinned so the test does not
# change under us; leruli itself declares them unpinned.
PACKAGES=(
    leruli==22.1.6
    aiobotocore==3.10.0 botocore==1.43.117 aiohttp==3.14.5 minio==7.2.20 docker==7.2.0 click==8.5.1
    requests==2.34.2 tabulate==0.10.0 tqdm==4.70.1 urllib3==2.8.0
)

log() { echo "legacy-client-venv.sh: $*" >&2; }

if [ ! -f "$STAMP" ]; then
    start=$(date +%s)
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check "${PACKAGES[@]}" >"$VENV.log" 2>&1; then
        grep -v "^WARNING: Location" "$VENV.log" | tail -20 >&2
        log "error: pip install failed (full log: $VENV.log)"; exit 1
    fi
    "$VENV/bin/python" -c 'import leruli; assert leruli.__version__ == "22.1.6"'
    touch "$STAMP"
    log "installed leruli 22.1.6 in $VENV in $(( $(date +%s) - start )) s"
fi
echo "$VENV"
