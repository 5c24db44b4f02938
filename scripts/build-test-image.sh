#!/usr/bin/env bash
# Build the tiny offline test image leruli-busybox:1.0.
#
# Usage: scripts/build-test-image.sh [--force]
#
# FROM scratch + Debian's static busybox with all applets installed as
# symlinks in /bin, PATH=/bin, WORKDIR /rundir. Nothing is pulled; the build
# runs with the classic builder and --network none.
#
# Job scripts are run as `/bin/bash /rundir/run.sh`. Debian's busybox has no
# `bash` applet, so the image gets a /bin/bash that is a tiny wrapper around
# busybox sh (ash): enough for plain POSIX scripts, not for bash-isms such as
# arrays or [[ ]].
#
# Skips the build if the image already exists, unless --force is given.
# Needs a running engine (scripts/docker.sh start).
set -euo pipefail

IMAGE="${LERULI_TEST_IMAGE:-leruli-busybox:1.0}"
FORCE=0

for arg in "$@"; do
    case "$arg" in
        --force | -f) FORCE=1 ;;
        -h | --help)
            sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build-test-image.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

log() { echo "build-test-image.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "no docker client; run scripts/docker.sh start"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "docker engine not answering; run scripts/docker.sh start"

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already exists (use --force to rebuild)"
    exit 0
fi

is_static_busybox() {
    [ -x /bin/busybox ] || return 1
    # A static binary has no program interpreter (PT_INTERP).
    if command -v file >/dev/null 2>&1; then
        file -L /bin/busybox | grep -q 'statically linked'
    else
        ! LC_ALL=C grep -aq 'ld-linux' /bin/busybox
    fi
}

if ! is_static_busybox; then
    log "installing Debian's busybox-static"
    if [ "$(id -u)" -ne 0 ]; then
        die "need root to install busybox-static (or install it yourself)"
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static
    is_static_busybox || die "/bin/busybox is still missing or not static"
fi

CTX="$(mktemp -d "${TMPDIR:-/tmp}/leruli-busybox-ctx.XXXXXX")"
trap 'rm -rf "$CTX"' EXIT

cp /bin/busybox "$CTX/busybox"
chmod 0755 "$CTX/busybox"

# /bin/bash: use a real applet if this busybox has one, else a wrapper.
if /bin/busybox --list | grep -qx bash; then
    log "busybox has a bash applet; /bin/bash will be a symlink to it"
    BASH_STEP=''
else
    log "busybox has no bash applet; adding a /bin/bash wrapper around busybox sh"
    cat >"$CTX/bash" <<'EOF'
#!/bin/sh
# Not bash: busybox sh (ash), for plain POSIX job scripts.
exec /bin/sh "$@"
EOF
    chmod 0755 "$CTX/bash"
    BASH_STEP='COPY bash /bin/bash'
fi

cat >"$CTX/Dockerfile" <<EOF
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","sh","-c","/bin/busybox --install -s /bin && mkdir -p /tmp /rundir && chmod 1777 /tmp"]
${BASH_STEP}
ENV PATH=/bin
WORKDIR /rundir
EOF

old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"

log "building $IMAGE"
build_args=(--network none -t "$IMAGE")
[ "$FORCE" -eq 1 ] && build_args+=(--no-cache)
DOCKER_BUILDKIT=0 docker build "${build_args[@]}" "$CTX"

# After --force, drop the previous image if it is now untagged (dangling).
new_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] &&
    [ "$(docker image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null || echo 1)" = "0" ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
fi

# Smoke test: the shell, the bash wrapper, the working directory.
out="$(docker run --rm --network none "$IMAGE" /bin/bash -c 'echo ok; pwd')"
[ "$out" = "ok
/rundir" ] || die "smoke test of $IMAGE failed (got: $out)"
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE") bytes)"
