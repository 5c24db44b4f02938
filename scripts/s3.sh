#!/usr/bin/env bash
# A real, single-node S3 server for development and tests: Ceph RADOS Gateway (Debian bookworm packages).
#
#   scripts/s3.sh install   install the Ceph packages if a daemon binary is missing
#   scripts/s3.sh start     install if needed, start mon + osd + rgw (no-op when RGW already answers)
#   scripts/s3.sh stop      stop the daemons started here (rgw, osd, mon), by their pid files
#   scripts/s3.sh status    exit 0 when RGW answers on its port, else 1
#   scripts/s3.sh reset     stop, then delete the state directory
#
# Every daemon listens on 127.0.0.1 only; all state (config, data, logs, pids) lives under $LERULI_S3_STATE_DIR.
# Data is kept in bluestore, so a restart finds its buckets again. After `start`, `source $LERULI_STACK_DIR/s3.env`
# gives LERULI_S3_SERVER, LERULI_S3_ACCESS and LERULI_S3_SECRET.
#
# Environment (all optional):
#   LERULI_STACK_DIR      where local services keep their state   (default: <repo>/.stack)
#   LERULI_S3_STATE_DIR   the Ceph state directory                (default: $LERULI_STACK_DIR/ceph)
#   LERULI_S3_PORT        RGW (S3) port on 127.0.0.1              (default: 7480)
#   LERULI_S3_ACCESS      access key of the S3 user               (default: leruli-test-access)
#   LERULI_S3_SECRET      secret key of the S3 user               (default: leruli-test-secret-0123456789abcdef)
#   LERULI_CEPH_MON_PORT  Ceph mon port on 127.0.0.1, read only when a cluster is created (default: 6790)
# A second cluster can run beside the first with its own LERULI_STACK_DIR, LERULI_S3_PORT and LERULI_CEPH_MON_PORT.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
STATE_DIR="${LERULI_S3_STATE_DIR:-$STACK_DIR/ceph}"
RGW_PORT="${LERULI_S3_PORT:-7480}"
S3_ACCESS="${LERULI_S3_ACCESS:-leruli-test-access}"
S3_SECRET="${LERULI_S3_SECRET:-leruli-test-secret-0123456789abcdef}"
S3_UID="leruli"
START_TIMEOUT=90

CONF="$STATE_DIR/ceph.conf"
RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/log"
# Written once the cluster and its S3 user exist: without it, the state dir is a half-made cluster and is rebuilt.
READY_MARK="$STATE_DIR/initialized"
# What a state dir may hold; anything else means LERULI_S3_STATE_DIR points somewhere it must not delete.
STATE_ENTRIES=" ceph.conf crash fsid initialized keyring log mon mon_port monmap osd osd-block rgw run s3-user.keys "
# Pids that stop_daemon ended, for wait_until_reaped.
STOPPED_PIDS=()

# Ceph's client tools read this instead of /etc/ceph/ceph.conf, so nothing outside the state dir is touched.
export CEPH_CONF="$CONF"
# Debian's python3-rados is built for Debian's own python, not for whatever python3 comes first on PATH.
SYSTEM_PYTHON=/usr/bin/python3

log() { echo "s3.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------- install

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

packages_present() {
    command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null \
        && command -v curl >/dev/null && "$SYSTEM_PYTHON" -c 'import rados' 2>/dev/null
}

cmd_install() {
    packages_present && return 0
    # No recommends: they pull ceph-mgr and friends (~300 MB) that S3 does not need.
    local packages=(radosgw ceph-mon ceph-osd ceph-common python3-rados)
    # Named only when missing: naming an installed curl would upgrade it as a side effect.
    command -v curl >/dev/null || packages+=(curl)
    log "installing ${packages[*]} (about 30 s)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

# ---------------------------------------------------------------------------------------------------- helpers

rgw_url() { echo "http://127.0.0.1:$RGW_PORT"; }

# The mon port is baked into the monmap when the cluster is created; later starts take it from the state dir.
mon_port() {
    if [[ -f "$STATE_DIR/mon_port" ]]; then cat "$STATE_DIR/mon_port"; else echo "${LERULI_CEPH_MON_PORT:-6790}"; fi
}

rgw_answers() {
    [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$(rgw_url)/" 2>/dev/null)" == 200 ]]
}

# Ceph writes "$RUN_DIR/<name>.pid" itself (see `pid file` below) and deletes it on a clean exit.
pid_file() { echo "$RUN_DIR/$1.pid"; }

# Prints the pid of daemon $1 (mon.a, osd.0, client.rgw.a) if it is running. Daemons are started with
# `-c $CONF`, and that is checked so that a stale pid file whose pid was reused by another process, or a daemon
# of another state dir, is never acted on.
daemon_pid() {
    local file pid
    file="$(pid_file "$1")"
    [[ -s "$file" ]] || return 1
    pid="$(<"$file")"
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF" || return 1
    echo "$pid"
}

daemon_running() { daemon_pid "$1" >/dev/null; }

now() { echo "$EPOCHREALTIME"; }
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

show_log_tail() {
    local file="$LOG_DIR/$1.log"
    [[ -f "$file" ]] || return 0
    log "last lines of $file:"
    tail -n 25 "$file" >&2
}

# ---------------------------------------------------------------------------------------------------- config

# Written on every start so that a changed LERULI_S3_PORT takes effect; the fsid is the only thing kept.
write_conf() {
    local fsid="$1" mon_port
    mon_port="$(mon_port)"
    cat >"$CONF" <<EOF
# Generated by scripts/s3.sh on every start: edit the script, not this file.
[global]
fsid = $fsid
mon initial members = a
# v1 only: monmaptool and the daemons otherwise move non-default ports to msgr2.
mon host = v1:127.0.0.1:$mon_port
ms bind msgr2 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# A local test store: no cephx keys to manage.
auth cluster required = none
auth service required = none
auth client required = none
# One OSD: one replica, place by OSD rather than by host, few PGs, no autoscaler (there is no mgr anyway).
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
# Everything that would go to /var/lib/ceph, /var/run/ceph, /var/log/ceph stays in the state dir.
run dir = $RUN_DIR
admin socket = $RUN_DIR/\$name.asok
pid file = $RUN_DIR/\$name.pid
log file = $LOG_DIR/\$name.log
keyring = $STATE_DIR/keyring
mon data = $STATE_DIR/mon/\$cluster-\$id
osd data = $STATE_DIR/osd/\$cluster-\$id
rgw data = $STATE_DIR/rgw/\$cluster-\$id
crash dir = $STATE_DIR/crash
# The mon batches map changes for up to a second; with one daemon of each kind there is nothing to batch, and
# each pool created at setup would otherwise wait that second.
paxos propose interval = 0.05
# A nearly full disk must not stop the mon. CI's disk had 1 % free (4.9 GiB, ample for our tests), and the
# mon refuses to start when the free share, in whole percent, is at most this: -1 never refuses. (A running
# mon only reports MON_DISK_CRIT; tried on a loop filesystem with 0.4 % free: S3 kept working, and with 0
# a restart was refused.)
mon data avail crit = -1
mon data avail warn = 1

[osd]
osd objectstore = bluestore
# A sparse file, outside the OSD data dir (mkfs refuses a block file inside it).
bluestore block path = $STATE_DIR/osd-block/\$cluster-\$id.block
bluestore block create = true
bluestore block size = $((20 * 1024 * 1024 * 1024))
osd memory target = $((900 * 1024 * 1024))
# osd.0 is placed in the CRUSH map at creation; asking the mon again at every boot is one more round trip, and
# on a young mon that request is where a first boot can fail.
osd crush update on start = false

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
# RGW frees a deleted object's data only when its garbage collector gets to it, by default 2 h later: a day of
# benchmarks (GiBs per staging run) then fills the 20 GiB block and the store refuses every write (seen here).
# Not much sooner either: collecting GiBs while a benchmark runs slows the S3 it measures.
rgw gc obj min wait = 1200
rgw gc processor period = 600
EOF
}

# ---------------------------------------------------------------------------------------------------- daemons
# Daemons are started with `9>&-`: fd 9 holds the lock of this script (see take_lock), and a daemon that
# inherited it would hold the lock for its whole life.

start_mon() {
    daemon_running mon.a && return 0
    ceph-mon -c "$CONF" -i a 9>&- || { show_log_tail mon.a; die "ceph-mon did not start"; }
}

# A freshly made mon sometimes refuses the OSD's first boot ("wrong fsid") before it has settled: retry.
start_osd() {
    daemon_running osd.0 && return 0
    local attempt
    for attempt in 1 2 3 4 5; do
        # ceph-osd forks and its parent exits only after the daemon's init, with init's status.
        if ceph-osd -c "$CONF" -i 0 9>&- 2>>"$LOG_DIR/osd.0.start.log" && daemon_running osd.0; then
            return 0
        fi
        log "ceph-osd did not start (attempt $attempt), retrying"
        sleep 1
    done
    show_log_tail osd.0
    die "ceph-osd did not start"
}

# Only called when RGW does not answer: a running radosgw is then hung or bound to an old LERULI_S3_PORT.
start_rgw() {
    stop_daemon client.rgw.a
    radosgw -c "$CONF" -n client.rgw.a 9>&- || { show_log_tail client.rgw.a; die "radosgw did not start"; }
}

wait_for_rgw() {
    local deadline=$((SECONDS + START_TIMEOUT)) name
    until rgw_answers; do
        if ((SECONDS >= deadline)); then
            show_log_tail client.rgw.a
            show_log_tail osd.0
            die "RGW did not answer 200 on $(rgw_url)/ within ${START_TIMEOUT}s"
        fi
        for name in client.rgw.a osd.0 mon.a; do
            daemon_running "$name" || { show_log_tail "$name"; die "$name exited while waiting for RGW"; }
        done
        sleep 0.2
    done
}

# True while process $1 exists and is not a zombie. The daemons detach, so their parent is PID 1; in a container
# PID 1 may reap late or never, and a zombie has already released its ports and files.
process_alive() {
    local state
    state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# Sends TERM, then KILL after ~10 s, and waits until the process is gone.
stop_daemon() {
    local name="$1" pid i
    pid="$(daemon_pid "$name")" || { rm -f "$(pid_file "$name")"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        process_alive "$pid" || break
        sleep 0.1
    done
    if process_alive "$pid"; then
        log "$name (pid $pid) ignored TERM for 10 s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        while process_alive "$pid"; do sleep 0.1; done
    fi
    rm -f "$(pid_file "$name")"
    STOPPED_PIDS+=("$pid")
}

# Exited daemons stay zombies until PID 1 reaps them (here about 2 s later). They hold nothing, but would still
# show in `pgrep ceph`; wait a little for all of them at once, never forever.
wait_until_reaped() {
    local pid i
    for pid in "$@"; do
        for ((i = 0; i < 50; i++)); do
            [[ -e "/proc/$pid" ]] || break
            sleep 0.1
        done
    done
}

# ---------------------------------------------------------------------------------------------------- fresh cluster

create_mon() {
    local fsid="$1"
    monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:127.0.0.1:$(mon_port)]" "$STATE_DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$STATE_DIR/monmap" 2>>"$LOG_DIR/mkfs.log"
}

# Runs mon commands (JSON, one per argument) through Debian's python3-rados: one connection for many commands
# instead of one `ceph` CLI process (~0.3 s) each. Prints each command's output.
# A freshly made mon sometimes answers its first commands with "wrong fsid" (EPERM) while it settles; those
# are retried for a while, anything else fails at once.
mon_commands() {
    "$SYSTEM_PYTHON" - "$@" <<'EOF'
import errno
import os
import sys
import time

import rados


def run(cluster, cmd):
    deadline = time.monotonic() + 30
    while True:
        ret, out, err = cluster.mon_command(cmd, b"", timeout=30)
        if ret == 0:
            return out.decode()
        if ret != -errno.EPERM or "wrong fsid" not in err or time.monotonic() > deadline:
            sys.exit(f"mon command {cmd} failed ({ret}): {err}")
        time.sleep(0.2)


with rados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
    for cmd in sys.argv[1:]:
        print(run(cluster, cmd), end="")
EOF
}

# The OSD id is registered with the mon first; mkfs then formats bluestore, which takes a few seconds.
create_osd_in_background() {
    local osd_uuid id
    osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
    id="$(mon_commands "{\"prefix\": \"osd new\", \"uuid\": \"$osd_uuid\"}" \
        '{"prefix": "osd crush add", "id": 0, "weight": 1.0, "args": ["root=default"]}')"
    [[ "$id" == 0 ]] || die "expected the new OSD to get id 0, got '$id'"
    mkdir -p "$STATE_DIR/osd/ceph-0"
    # -f: without it mkfs forks like a daemon, and the pid recorded here would not be the one working.
    ceph-osd -c "$CONF" -i 0 -f --mkfs --osd-uuid "$osd_uuid" 9>&- >>"$LOG_DIR/mkfs.log" 2>&1 &
    OSD_MKFS_PID=$!
    # Recorded like a daemon's, so that stop (or the next start) ends a mkfs left running by an interrupted start.
    echo "$OSD_MKFS_PID" >"$(pid_file osd.0.mkfs)"
}

# RGW creates its pools itself on first start, one mon round trip (and PG peering) at a time; creating them
# here while the OSD formats saves about 10 s. Pool creation needs only the mon.
create_rgw_pools() {
    local pool commands=()
    for pool in .rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index \
        default.rgw.buckets.data default.rgw.buckets.non-ec; do
        commands+=("{\"prefix\": \"osd pool create\", \"pool\": \"$pool\", \"pg_num\": 8, \"pgp_num\": 8}")
        commands+=("{\"prefix\": \"osd pool application enable\", \"pool\": \"$pool\", \"app\": \"rgw\"}")
    done
    mon_commands "${commands[@]}" >/dev/null
}

create_cluster() {
    local fsid
    fsid="$(cat /proc/sys/kernel/random/uuid)"
    echo "$fsid" >"$STATE_DIR/fsid"
    echo "${LERULI_CEPH_MON_PORT:-6790}" >"$STATE_DIR/mon_port"
    write_conf "$fsid"
    : >"$STATE_DIR/keyring"
    create_mon "$fsid"
    start_mon
    create_osd_in_background
    create_rgw_pools
    wait "$OSD_MKFS_PID" || { tail -n 25 "$LOG_DIR/mkfs.log" >&2; die "ceph-osd --mkfs failed"; }
    rm -f "$(pid_file osd.0.mkfs)"
    start_osd
}

# ---------------------------------------------------------------------------------------------------- S3 user

# radosgw-admin talks to RADOS directly (not to RGW) and costs up to a second or two, so it runs only when the wanted
# keys differ from the ones recorded after its last successful run.
# Every job has a bucket of its own, so the user may own any number of them (RGW's default cap is 1000).
ensure_s3_user() {
    local keys_file="$STATE_DIR/s3-user.keys" old_access="" wanted="$S3_ACCESS $S3_SECRET unlimited-buckets"
    [[ -f "$keys_file" ]] && read -r old_access _ <"$keys_file"
    [[ -f "$keys_file" && "$(<"$keys_file")" == "$wanted" ]] && return 0
    if [[ -z "$old_access" ]]; then
        radosgw_admin user create --uid "$S3_UID" --display-name "leruli test user" \
            --access-key "$S3_ACCESS" --secret-key "$S3_SECRET" --max-buckets 0
    else
        # Changed keys: keep the user (and its buckets), swap the key pair so only the requested one works.
        radosgw_admin key create --uid "$S3_UID" --key-type s3 --access-key "$S3_ACCESS" --secret-key "$S3_SECRET"
        [[ "$old_access" == "$S3_ACCESS" ]] || radosgw_admin key rm --uid "$S3_UID" --access-key "$old_access"
        radosgw_admin user modify --uid "$S3_UID" --max-buckets 0
    fi
    echo "$wanted" >"$keys_file"
}

# radosgw-admin blocks while the OSD is not yet serving; the timeout turns a stuck cluster into an error.
radosgw_admin() {
    timeout "$START_TIMEOUT" radosgw-admin "$@" >/dev/null 2>>"$LOG_DIR/radosgw-admin.log" || {
        tail -n 25 "$LOG_DIR/radosgw-admin.log" >&2
        die "radosgw-admin $1 $2 failed"
    }
}

write_env_file() {
    mkdir -p "$STACK_DIR"
    cat >"$STACK_DIR/s3.env" <<EOF
export LERULI_S3_SERVER=$(rgw_url)
export LERULI_S3_ACCESS=$S3_ACCESS
export LERULI_S3_SECRET=$S3_SECRET
EOF
}

# ---------------------------------------------------------------------------------------------------- commands

cmd_start() {
    local started what
    started="$(now)"
    if rgw_answers; then
        daemon_running client.rgw.a \
            || die "$(rgw_url) is served by something not started from $STATE_DIR; stop it or set LERULI_S3_PORT"
        ensure_s3_user
        write_env_file
        echo "s3.sh: S3 already answers at $(rgw_url), nothing to do"
        return 0
    fi
    cmd_install
    # A half-made cluster from an interrupted start is rebuilt from nothing.
    if [[ ! -f "$READY_MARK" ]]; then
        cmd_stop
        remove_state_dir
    fi
    mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR/mon/ceph-a" "$STATE_DIR/osd-block" \
        "$STATE_DIR/rgw/ceph-rgw.a" "$STATE_DIR/crash"
    if [[ -f "$READY_MARK" ]]; then
        what="restarted on existing data"
        write_conf "$(<"$STATE_DIR/fsid")"
        start_mon
        start_osd
    else
        what="started a fresh cluster"
        create_cluster
    fi
    ensure_s3_user
    : >"$READY_MARK"
    start_rgw
    wait_for_rgw
    write_env_file
    echo "s3.sh: $what, S3 at $(rgw_url) in $(elapsed_since "$started") s (state $STATE_DIR)"
}

cmd_stop() {
    # Reverse dependency order: RGW flushes to the OSD, the OSD reports to the mon.
    local name
    for name in client.rgw.a osd.0.mkfs osd.0 mon.a; do
        stop_daemon "$name"
    done
    wait_until_reaped "${STOPPED_PIDS[@]}"
}

cmd_status() {
    rgw_answers
}

# Deletes the state dir, after checking that it holds nothing but what this script puts there.
remove_state_dir() {
    [[ -d "$STATE_DIR" ]] || return 0
    local entry
    for entry in "$STATE_DIR"/* "$STATE_DIR"/.[!.]*; do
        [[ -e "$entry" ]] || continue
        [[ "$STATE_ENTRIES" == *" ${entry##*/} "* ]] \
            || die "refusing to delete $STATE_DIR: it holds ${entry##*/}, which s3.sh did not make"
    done
    rm -rf "$STATE_DIR"
}

cmd_reset() {
    cmd_stop
    remove_state_dir
    rm -f "$STACK_DIR/s3.env"
}

# Test runners may call start/stop from several processes at once; one at a time keeps the setup sane.
# The lock lives beside the state dir, not in it, because reset deletes the state dir.
take_lock() {
    mkdir -p "$STACK_DIR"
    exec 9>>"$STACK_DIR/s3.lock"
    flock -w 180 9 || die "another scripts/s3.sh still holds $STACK_DIR/s3.lock"
}

main() {
    case "${1:-}" in
        install) cmd_install ;;
        start) take_lock && cmd_start ;;
        stop) take_lock && cmd_stop ;;
        status) cmd_status ;;
        reset) take_lock && cmd_reset ;;
        *)
            echo "usage: $0 {install|start|stop|status|reset}" >&2
            exit 2
            ;;
    esac
}

main "$@"
