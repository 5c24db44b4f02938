#!/usr/bin/env bash
# Install what the browser test of the tenant-aware Prefect UI needs (tests/ui/): Debian's `chromium` and
# playwright-core from npm (pinned in tests/ui/package-lock.json, installed with `npm ci`). Idempotent: each
# step is skipped when its result is already there. Needs root for apt-get (re-runs itself with sudo).
#
# Usage: scripts/chromium.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
UI_TEST_DIR="$REPO_DIR/tests/ui"

log() { echo "chromium.sh: $*" >&2; }

# Only what is missing: a Node.js from elsewhere (NodeSource's) brings its own npm, and conflicts with
# Debian's `npm` package, so asking apt for npm beside it fails.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { log "error: run as root to install ${missing[*]}"; exit 1; }
        exec sudo -E "$SCRIPT_DIR/$(basename "$0")" "$@"
    fi
    log "installing Debian's ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core 1.65 (pinned in package-lock.json) needs Node 20 or newer; Debian 12's own nodejs is 18.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    log "error: Node $(node -v) is too old for playwright-core 1.65: install nodejs 20 or newer"; exit 1
fi

# npm ci only when the lock file changed since the last install (its hash is kept beside node_modules).
STAMP="$UI_TEST_DIR/node_modules/.installed-$(sha256sum "$UI_TEST_DIR/package-lock.json" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
    log "installing playwright-core into tests/ui/node_modules"
    (cd "$UI_TEST_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    touch "$STAMP"
fi
