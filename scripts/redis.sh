#!/usr/bin/env bash
# A private Redis for tests and benchmarks (Debian's redis-server): the messaging that several Prefect server
# processes share (prefect-redis). Never the system's Redis service.
#
#   scripts/redis.sh install   install Debian's redis-server if it is missing
#   scripts/redis.sh start     install if needed, start it (no-op when it answers)
#   scripts/redis.sh stop      stop the Redis started from this state dir
#   scripts/redis.sh status    exit 0 when it answers on its port, else 1
#
# It listens on 127.0.0.1 only, with its data, log and pid file under $LERULI_REDIS_DIR. After `start`,
# `source $LERULI_STACK_DIR/redis.env` gives LERULI_REDIS_URL (redis://127.0.0.1:PORT/0).
#
# Environment (all optional):
#   LERULI_STACK_DIR   where local services keep their state   (default: <repo>/.stack)
#   LERULI_REDIS_DIR   Redis's state directory                  (default: $LERULI_STACK_DIR/redis)
#   LERULI_REDIS_PORT  port on 127.0.0.1                        (default: 56379)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
STATE_DIR="${LERULI_REDIS_DIR:-$STACK_DIR/redis}"
PORT="${LERULI_REDIS_PORT:-56379}"
PID_FILE="$STATE_DIR/redis.pid"
ENV_FILE="$STACK_DIR/redis.env"

log() { echo "redis.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

cmd_install() {
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
    log "installing Debian's redis-server"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    command -v redis-server >/dev/null || die "redis-server still missing after installing it"
}

answers() {
    [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" == PONG ]]
}

running_here() {
    local pid
    [[ -s "$PID_FILE" ]] || return 1
    pid="$(<"$PID_FILE")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == redis-server* ]]
}

write_env_file() {
    mkdir -p "$STACK_DIR"
    echo "export LERULI_REDIS_URL=redis://127.0.0.1:$PORT/0" >"$ENV_FILE"
}

cmd_start() {
    if answers; then
        running_here || die "127.0.0.1:$PORT is served by a Redis not started from $STATE_DIR; set LERULI_REDIS_PORT"
        write_env_file
        echo "redis.sh: Redis already answers on 127.0.0.1:$PORT, nothing to do"
        return 0
    fi
    cmd_install
    mkdir -p "$STATE_DIR"
    # Settings on the command line, no config file: loopback only, snapshots in the state dir.
    redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes --dir "$STATE_DIR" \
        --daemonize yes --pidfile "$PID_FILE" --logfile "$STATE_DIR/redis.log" \
        --save 60 1000 --appendonly no 9>&-
    local deadline=$((SECONDS + 20))
    until answers; do
        ((SECONDS < deadline)) || { tail -n 20 "$STATE_DIR/redis.log" >&2; die "Redis did not answer"; }
        sleep 0.1
    done
    write_env_file
    echo "redis.sh: Redis on 127.0.0.1:$PORT (state $STATE_DIR)"
}

cmd_stop() {
    running_here || { log "no Redis running from $STATE_DIR; nothing to stop"; return 0; }
    local pid
    pid="$(<"$PID_FILE")"
    kill -TERM "$pid"
    while [[ -e "/proc/$pid" && "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; do
        sleep 0.1
    done
    rm -f "$PID_FILE"
    log "Redis stopped"
}

cmd_status() {
    answers && running_here
}

take_lock() {
    mkdir -p "$STACK_DIR"
    exec 9>>"$STACK_DIR/redis.lock"
    flock -w 60 9 || die "another scripts/redis.sh still holds $STACK_DIR/redis.lock"
}

case "${1:-}" in
    install) cmd_install ;;
    start) take_lock && cmd_start ;;
    stop) take_lock && cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|stop|status}" >&2
        exit 2
        ;;
esac
