#!/usr/bin/env bash
# Manage a local, network-less Docker engine for leruli-prefect.
#
# Usage: scripts/docker.sh {install|start|stop|status}
#
#   install  install Debian's docker.io if there is no dockerd binary
#   start    start dockerd (no bridge, no iptables, no masquerading) unless an
#            engine already answers on /var/run/docker.sock
#   stop     stop the dockerd that `start` launched (never an engine we did
#            not start)
#   status   exit 0 if the engine answers, 1 otherwise
#
# dockerd is always started with --bridge=none --iptables=false
# --ip-masq=false, so no docker0 bridge is ever created and containers have
# no network unless one is created explicitly.
#
# Without --containerd, dockerd 20.10 starts and supervises its own
# containerd (socket /var/run/docker/containerd/containerd.sock) and stops it
# again when it exits, so containerd need not be started separately.
#
# State (pid file, log) lives in $LERULI_STACK_DIR (default <repo>/.stack).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
PID_FILE="$STACK_DIR/dockerd.pid"
LOG_FILE="$STACK_DIR/dockerd.log"
DOCKER_SOCK="/var/run/docker.sock"
START_TIMEOUT="${LERULI_DOCKERD_START_TIMEOUT:-60}"
STOP_TIMEOUT="${LERULI_DOCKERD_STOP_TIMEOUT:-20}"

log() { echo "docker.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# dockerd runs as root; re-run this script as root if needed.
need_root() {
    [ "$(id -u)" -eq 0 ] && return 0
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E LERULI_STACK_DIR="$STACK_DIR" "$SCRIPT_DIR/$(basename "$0")" "$@"
    fi
    die "must run as root (no sudo available)"
}

# True if the daemon (server part) answers on the local socket.
engine_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    [ -S "$DOCKER_SOCK" ] || return 1
    timeout 10 docker -H "unix://$DOCKER_SOCK" version --format '{{.Server.Version}}' \
        >/dev/null 2>&1
}

# True if the pid is alive and is a dockerd process.
pid_is_dockerd() {
    local pid="$1"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "dockerd" ]
}

cmd_install() {
    if command -v dockerd >/dev/null 2>&1; then
        log "dockerd already installed ($(command -v dockerd))"
        return 0
    fi
    log "installing Debian's docker.io"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker.io
    command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
}

cmd_start() {
    if engine_answers; then
        local ours
        ours="$(cat "$PID_FILE" 2>/dev/null || true)"
        if pid_is_dockerd "$ours"; then
            log "docker engine already running (pid $ours, started by this script)"
        else
            log "docker engine already running on $DOCKER_SOCK (not started by this script; stop will leave it alone)"
        fi
        return 0
    fi
    cmd_install
    command -v docker >/dev/null 2>&1 || die "no docker client found"

    mkdir -p "$STACK_DIR"

    # A previous dockerd of ours that is alive but does not answer (yet).
    if [ -f "$PID_FILE" ]; then
        local old_pid
        old_pid="$(cat "$PID_FILE" 2>/dev/null || true)"
        if pid_is_dockerd "$old_pid"; then
            log "dockerd (pid $old_pid) is running but not answering; waiting for it"
        else
            log "removing stale pid file $PID_FILE"
            rm -f "$PID_FILE"
        fi
    fi

    if [ ! -f "$PID_FILE" ]; then
        log "starting dockerd --bridge=none --iptables=false --ip-masq=false (log: $LOG_FILE)"
        local dockerd_bin
        dockerd_bin="$(command -v dockerd)"
        # setsid: own session, so the daemon survives the calling shell.
        # exec keeps the pid: $! is dockerd's own pid (setsid does not fork
        # since the subshell is not a process-group leader).
        (exec setsid nohup "$dockerd_bin" \
            --bridge=none --iptables=false --ip-masq=false \
            >>"$LOG_FILE" 2>&1 </dev/null) &
        echo $! >"$PID_FILE"
    fi

    local pid waited=0
    pid="$(cat "$PID_FILE")"
    while ! engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            log "dockerd (pid $pid) exited during startup; last lines of $LOG_FILE:"
            tail -n 30 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            log "dockerd (pid $pid) did not answer within ${START_TIMEOUT}s; last lines of $LOG_FILE:"
            tail -n 30 "$LOG_FILE" >&2 || true
            log "it is left running; '$0 start' waits for it again, '$0 stop' stops it"
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    # Trust dockerd's own pid file if it names a different live dockerd.
    local real_pid
    real_pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
    if [ -n "$real_pid" ] && [ "$real_pid" != "$pid" ] && pid_is_dockerd "$real_pid"; then
        pid="$real_pid"
        echo "$pid" >"$PID_FILE"
    fi
    log "dockerd running (pid $pid, $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
}

cmd_stop() {
    if [ ! -f "$PID_FILE" ]; then
        log "no $PID_FILE: no dockerd started by this script; nothing to stop"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if ! pid_is_dockerd "$pid"; then
        log "dockerd (pid ${pid:-?}) is not running; removing stale pid file"
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
            log "dockerd (pid $pid) still alive after ${STOP_TIMEOUT}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
    log "dockerd stopped"
}

cmd_status() {
    if engine_answers; then
        echo "docker engine running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
        return 0
    fi
    echo "docker engine not running"
    return 1
}

case "${1:-}" in
    install) need_root "$@"; cmd_install ;;
    start)
        # Nothing to do (and no root needed) if an engine already answers.
        engine_answers || need_root "$@"
        cmd_start
        ;;
    stop)
        [ -f "$PID_FILE" ] && need_root "$@"
        cmd_stop
        ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install|start|stop|status}" >&2
        exit 2
        ;;
esac
