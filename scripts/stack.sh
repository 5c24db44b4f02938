#!/usr/bin/env bash
# The demo stack: a server on 127.0.0.1:4300, a group `demo` and one node, all state under .stack/.
#
# Usage: scripts/stack.sh {up|stop}
#   up    start whatever is not running (Docker, S3, server, group, node) and build the images the demo
#         runs (psi4, xtb); idempotent
#   stop  stop, by PID, every part that `up` (or s3.sh/docker.sh) started
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
LERULI="$REPO_DIR/.venv/bin/leruli"
PORT="${LERULI_DEMO_PORT:-4300}"
URL="http://127.0.0.1:$PORT"
SERVER_DIR="$STACK_DIR/demo-server"
GROUP_FILE="$STACK_DIR/demo-group.json"
NODE_CONFIG="$STACK_DIR/demo-node.toml"

log() { echo "stack.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_background() {  # name, log file, command...
    local name="$1" logfile="$2"; shift 2
    setsid "$@" >"$logfile" 2>&1 < /dev/null &
    echo $! > "$STACK_DIR/$name.pid"
}

server_up() {
    if alive "$STACK_DIR/server.pid"; then return; fi
    start_background server "$STACK_DIR/server.log" "$LERULI" server start --port "$PORT" --data-dir "$SERVER_DIR"
    for _ in $(seq 1 180); do
        curl -sf "$URL/v1/health" >/dev/null && { log "server answers on $URL"; return; }
        alive "$STACK_DIR/server.pid" || { tail -20 "$STACK_DIR/server.log" >&2; die "the server exited"; }
        sleep 0.5
    done
    die "the server did not answer within 90 s (see $STACK_DIR/server.log)"
}

group_up() {
    [ -s "$GROUP_FILE" ] && return
    ( umask 077; "$LERULI" server init-group demo --data-dir "$SERVER_DIR" --json > "$GROUP_FILE.new" )
    mv "$GROUP_FILE.new" "$GROUP_FILE"
    log "created group demo (secrets in $GROUP_FILE)"
}

node_up() {
    if alive "$STACK_DIR/node.pid"; then return; fi
    # shellcheck disable=SC1091
    . "$STACK_DIR/s3.env"
    ( umask 077; cat > "$NODE_CONFIG" <<TOML
gateway_url = "$URL"
group_token = "$(json_field group_token)"
compute_secret = "$(json_field compute_secret)"
s3_server = "$LERULI_S3_SERVER"
s3_access = "$LERULI_S3_ACCESS"
s3_secret = "$LERULI_S3_SECRET"
data_dir = "$STACK_DIR/demo-node"
slots = 2
TOML
    )
    start_background node "$STACK_DIR/node.log" "$LERULI" node start --config "$NODE_CONFIG"
    for _ in $(seq 1 120); do
        grep -q "started!" "$STACK_DIR/node.log" 2>/dev/null && { log "node started"; return; }
        alive "$STACK_DIR/node.pid" || { tail -20 "$STACK_DIR/node.log" >&2; die "the node exited"; }
        sleep 0.5
    done
    die "the node did not start within 60 s (see $STACK_DIR/node.log)"
}

json_field() { "$REPO_DIR/.venv/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$GROUP_FILE" "$1"; }

stop_pid() {  # name
    local file="$STACK_DIR/$1.pid" pid
    [ -f "$file" ] || return 0
    pid="$(cat "$file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
        log "stopped $1 ($pid)"
    fi
    rm -f "$file"
}

case "${1:-}" in
    up)
        mkdir -p "$STACK_DIR"
        "$REPO_DIR/scripts/install-deps.sh"
        "$REPO_DIR/scripts/docker.sh" start
        "$REPO_DIR/scripts/s3.sh" start
        "$REPO_DIR/scripts/build-test-image.sh"
        "$REPO_DIR/scripts/build-chem-images.sh"
        server_up
        group_up
        node_up
        ;;
    stop)
        stop_pid node
        stop_pid server
        "$REPO_DIR/scripts/s3.sh" stop
        "$REPO_DIR/scripts/docker.sh" stop
        ;;
    *) echo "usage: $0 {up|stop}" >&2; exit 2 ;;
esac
