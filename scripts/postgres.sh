#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks (Debian's postgresql packages), never the system one.
#
#   scripts/postgres.sh install   install Debian's PostgreSQL server if initdb is missing
#   scripts/postgres.sh start     install if needed, create the cluster once, start it (no-op when it answers)
#   scripts/postgres.sh stop      stop the cluster started from this state dir (fast shutdown)
#   scripts/postgres.sh status    exit 0 when the cluster answers on its port, else 1
#
# It listens on 127.0.0.1 only (plus a unix socket in the state dir); all state (data, log, socket) lives
# under $LERULI_POSTGRES_DIR. The cluster's superuser `leruli` logs in with a password (scram-sha-256) and may
# create databases: each test server gets a database of its own. After `start`,
# `source $LERULI_STACK_DIR/postgres.env` gives LERULI_POSTGRES_URL (postgresql+asyncpg://...) and PG* variables
# for psql.
#
# initdb and postgres refuse to run as root: as root, the cluster runs as the `postgres` system user (made by
# Debian's package) and the state dir belongs to it.
#
# Environment (all optional):
#   LERULI_STACK_DIR          where local services keep their state   (default: <repo>/.stack)
#   LERULI_POSTGRES_DIR       the cluster's state directory           (default: $LERULI_STACK_DIR/postgres)
#   LERULI_POSTGRES_PORT      port on 127.0.0.1                       (default: 55432)
#   LERULI_POSTGRES_PASSWORD  password of the `leruli` role, read when the cluster is created
#                             (default: leruli-test-password)
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
STATE_DIR="${LERULI_POSTGRES_DIR:-$STACK_DIR/postgres}"
PORT="${LERULI_POSTGRES_PORT:-55432}"
PASSWORD="${LERULI_POSTGRES_PASSWORD:-leruli-test-password}"
ROLE=leruli
DATABASE=leruli
DATA_DIR="$STATE_DIR/data"
SOCKET_DIR="$STATE_DIR/run"
LOG_FILE="$STATE_DIR/postgres.log"
ENV_FILE="$STACK_DIR/postgres.env"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# The newest installed server version's programs (Debian keeps them out of PATH).
bin_dir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || return 1
    echo "$dir"
}

cmd_install() {
    bin_dir >/dev/null && command -v pg_isready >/dev/null && command -v psql >/dev/null && return 0
    log "installing Debian's postgresql (about 30 s)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin_dir >/dev/null || die "initdb still missing after installing postgresql"
}

# Runs a server program as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

answers() {
    pg_isready -q -h 127.0.0.1 -p "$PORT" -t 2 >/dev/null 2>&1
}

# The cluster runs from this state dir when its postmaster.pid names a live postgres.
running_here() {
    local pid
    [[ -s "$DATA_DIR/postmaster.pid" ]] || return 1
    pid="$(head -n 1 "$DATA_DIR/postmaster.pid")"
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]]
}

create_cluster() {
    local bin="$1" pwfile
    log "creating a cluster in $DATA_DIR"
    rm -rf "$DATA_DIR"
    mkdir -p "$STATE_DIR" "$SOCKET_DIR"
    [[ $EUID -eq 0 ]] && chown -R postgres: "$STATE_DIR"
    pwfile="$STATE_DIR/.pwfile"
    (umask 077 && echo "$PASSWORD" >"$pwfile")
    [[ $EUID -eq 0 ]] && chown postgres: "$pwfile"
    as_owner "$bin/initdb" -D "$DATA_DIR" -U "$ROLE" --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$STATE_DIR/initdb.log" 2>&1 \
        || { tail -n 20 "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    # Settings of a test cluster: loopback only, room for several servers (Prefect keeps a pool of up to 15
    # connections per process) and commits that do not wait for the disk (a crashed server process loses
    # nothing; only a crashed machine could lose the last few commits).
    as_owner tee -a "$DATA_DIR/postgresql.conf" >/dev/null <<EOF

# Added by scripts/postgres.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKET_DIR'
max_connections = 400
shared_buffers = 256MB
synchronous_commit = off
EOF
    echo "$PORT" >"$STATE_DIR/port"
}

write_env_file() {
    mkdir -p "$STACK_DIR"
    cat >"$ENV_FILE" <<EOF
export LERULI_POSTGRES_URL=postgresql+asyncpg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE
export PGHOST=127.0.0.1
export PGPORT=$PORT
export PGUSER=$ROLE
export PGPASSWORD=$PASSWORD
export PGDATABASE=$DATABASE
EOF
}

ensure_database() {
    PGPASSWORD="$PASSWORD" psql -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 \
        || PGPASSWORD="$PASSWORD" createdb -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$DATABASE"
}

cmd_start() {
    local bin started=$SECONDS
    if answers; then
        running_here || die "127.0.0.1:$PORT is served by a PostgreSQL not started from $STATE_DIR; set LERULI_POSTGRES_PORT"
        write_env_file
        echo "postgres.sh: PostgreSQL already answers on 127.0.0.1:$PORT, nothing to do"
        return 0
    fi
    cmd_install
    bin="$(bin_dir)"
    [[ -f "$DATA_DIR/PG_VERSION" ]] || create_cluster "$bin"
    mkdir -p "$SOCKET_DIR"
    [[ $EUID -eq 0 ]] && chown postgres: "$SOCKET_DIR" "$STATE_DIR"
    [[ $EUID -eq 0 ]] && { touch "$LOG_FILE"; chown postgres: "$LOG_FILE"; }
    # -o: the port given now wins over the one the cluster was made with. 9>&-: see take_lock.
    as_owner "$bin/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 -o "-p $PORT" start 9>&- >/dev/null \
        || { tail -n 20 "$LOG_FILE" >&2; die "pg_ctl start failed"; }
    ensure_database
    write_env_file
    echo "postgres.sh: PostgreSQL on 127.0.0.1:$PORT in $((SECONDS - started)) s (state $STATE_DIR)"
}

cmd_stop() {
    local bin
    running_here || { log "no PostgreSQL running from $DATA_DIR; nothing to stop"; return 0; }
    bin="$(bin_dir)"
    as_owner "$bin/pg_ctl" -D "$DATA_DIR" -m fast -w -t 60 stop >/dev/null
    log "PostgreSQL stopped"
}

cmd_status() {
    answers && running_here
}

# Several test processes may start it at once.
take_lock() {
    mkdir -p "$STACK_DIR"
    exec 9>>"$STACK_DIR/postgres.lock"
    flock -w 120 9 || die "another scripts/postgres.sh still holds $STACK_DIR/postgres.lock"
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
