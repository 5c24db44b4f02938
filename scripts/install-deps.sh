#!/usr/bin/env bash
# Install what leruli-prefect needs to run its tests and demo on a Debian machine (as root):
# a Python virtual environment in .venv with the package and its test tools. Idempotent: the venv is
# rebuilt only when pyproject.toml changes. S3 and Docker are installed by scripts/s3.sh and docker.sh.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LERULI_VENV:-$REPO_DIR/.venv}"
STAMP="$VENV/.installed-$(sha256sum "$REPO_DIR/pyproject.toml" | cut -c1-16)"

log() { echo "install-deps.sh: $*" >&2; }

if [ -f "$STAMP" ]; then
    exit 0
fi

if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    log "error: Python 3.11 or newer is needed as python3"; exit 1
fi
# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv >/dev/null
fi

start=$(date +%s)
# Upgrade in place when the venv exists: a running server or test keeps working meanwhile.
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1
pip_log="$VENV/pip-install.log"
if ! "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO_DIR[test]" >"$pip_log" 2>&1; then
    grep -v "^WARNING: Location" "$pip_log" | tail -30 >&2
    log "error: pip install failed (full log: $pip_log)"; exit 1
fi
"$VENV/bin/python" -c 'import leruli_prefect, prefect' || { log "error: installation failed"; exit 1; }
touch "$STAMP"
log "installed the Python environment in $VENV in $(( $(date +%s) - start )) s"
