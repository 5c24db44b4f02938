#!/usr/bin/env bash
# Build the chemistry images psi4:1.3.2 and xtb:6.5.1 from nothing, without any registry.
#
# Usage: scripts/build-chem-images.sh [--force] [psi4|xtb ...]
#
# No registry can be reached here, but Debian's archive can. So: a minimal Debian rootfs made once with
# debootstrap and cached in $LERULI_STACK_DIR/rootfs (default <repo>/.stack/rootfs); for each code a copy of
# it, the Debian package installed into the copy with chroot + apt-get (on the host's network, never inside
# a container), cleaned, and imported with `docker import` (WORKDIR /rundir; Debian has /bin/bash).
#
# An image that already exists is skipped unless --force is given. Delete the rootfs cache to refresh the
# base. Prints how long each step took. Needs root (debootstrap, chroot) and a running engine.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${LERULI_STACK_DIR:-$REPO_DIR/.stack}"
ROOTFS_DIR="$STACK_DIR/rootfs"
BASE_DIR="$ROOTFS_DIR/bookworm-minbase"
SUITE=bookworm
MIRROR=http://deb.debian.org/debian

# image tag -> Debian package and the version prefix the tag promises (checked after installing).
declare -A PACKAGE=([psi4]=psi4 [xtb]=xtb)
declare -A TAG=([psi4]=1.3.2 [xtb]=6.5.1)
declare -A DEB_VERSION=([psi4]="1:1.3.2+" [xtb]="6.5.1-")
# A command that must work in the finished image.
declare -A SMOKE=([psi4]="psi4 --version" [xtb]="xtb --version")

log() { echo "build-chem-images.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

check_prerequisites() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it)"
    command -v docker >/dev/null 2>&1 || die "no docker client; run scripts/docker.sh start"
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
        die "docker engine not answering; run scripts/docker.sh start"
}

install_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return 0
    log "installing debootstrap"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
}

# The cached base rootfs. Made in a temporary directory and renamed when complete, so that an interrupted
# run never leaves a half-made base behind that later runs would trust.
ensure_base_rootfs() {
    [ -x "$BASE_DIR/bin/bash" ] && return 0
    install_debootstrap
    local started partial="$BASE_DIR.partial"
    started=$(date +%s.%N)
    rm -rf "$partial"
    mkdir -p "$ROOTFS_DIR"
    log "debootstrap --variant=minbase $SUITE (cached in $BASE_DIR)"
    debootstrap --variant=minbase "$SUITE" "$partial" "$MIRROR" >"$ROOTFS_DIR/debootstrap.log" 2>&1 ||
        { tail -20 "$ROOTFS_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $ROOTFS_DIR/debootstrap.log)"; }
    mv "$partial" "$BASE_DIR"
    log "base rootfs made in $(seconds_since "$started") s"
}

# apt inside the chroot resolves names as the host does, and must not start any service it installs
# (policy-rc.d exiting 101 is Debian's "forbidden" answer to invoke-rc.d).
prepare_chroot() {
    local dir="$1"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
}

install_package() {
    local dir="$1" package="$2"
    chroot "$dir" apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get install -y -q --no-install-recommends "$package" >"$dir.apt.log" 2>&1 ||
        { tail -20 "$dir.apt.log" >&2; die "apt-get install $package failed (log: $dir.apt.log)"; }
    rm -f "$dir.apt.log"
}

# The tag promises an upstream version: refuse to tag anything else if the archive ever moves on.
check_version() {
    local dir="$1" package="$2" expected="$3" installed
    # shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not a shell variable
    installed="$(chroot "$dir" dpkg-query -W -f '${Version}' "$package")"
    case "$installed" in
        "$expected"*) echo "$installed" ;;
        *) die "$package $installed installed, but the tag promises $expected*" ;;
    esac
}

# What a job never needs: apt's lists and downloaded .debs, documentation, translations, and the build-time
# resolver and policy. This roughly halves a minbase rootfs.
clean_rootfs() {
    local dir="$1"
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/var/cache/debconf/*-old "$dir"/var/log/apt/* "$dir"/var/log/dpkg.log \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/* \
        "$dir"/usr/share/lintian "$dir/usr/sbin/policy-rc.d"
    : >"$dir/etc/resolv.conf"
}

import_image() {
    local dir="$1" image="$2" deb_version="$3"
    tar -C "$dir" -c . | docker import \
        --change 'WORKDIR /rundir' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL org.leruli.debian-package-version=$deb_version" \
        --change 'CMD ["/bin/bash"]' \
        - "$image" >/dev/null
}

smoke_test() {
    local image="$1" command="$2" out
    out="$(docker run --rm --network none "$image" /bin/bash -c "pwd && $command" 2>&1)" ||
        die "smoke test of $image failed: $out"
    [ "$(head -1 <<<"$out")" = "/rundir" ] || die "$image does not start in /rundir: $out"
}

# Replace the tag; drop the previous image if nothing else names it any more.
drop_if_dangling() {
    local old_id="$1" new_id="$2"
    [ -n "$old_id" ] && [ "$old_id" != "$new_id" ] || return 0
    if [ "$(docker image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null || echo 1)" = "0" ]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
}

build_image() {
    local code="$1" image started dir old_id deb_version
    image="$code:${TAG[$code]}"
    if [ "$FORCE" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
        log "$image already exists (use --force to rebuild)"
        return 0
    fi
    ensure_base_rootfs
    started=$(date +%s.%N)
    dir="$ROOTFS_DIR/build-$code"
    rm -rf "$dir"
    cp -a "$BASE_DIR" "$dir"
    prepare_chroot "$dir"
    log "installing ${PACKAGE[$code]} into a copy of the base rootfs"
    install_package "$dir" "${PACKAGE[$code]}"
    deb_version="$(check_version "$dir" "${PACKAGE[$code]}" "${DEB_VERSION[$code]}")"
    clean_rootfs "$dir"
    old_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
    import_image "$dir" "$image" "$deb_version"
    rm -rf "$dir"
    drop_if_dangling "$old_id" "$(docker image inspect --format '{{.Id}}' "$image")"
    smoke_test "$image" "${SMOKE[$code]}"
    log "built $image (Debian ${PACKAGE[$code]} $deb_version, $(($(docker image inspect --format '{{.Size}}' "$image") / 1000000)) MB) in $(seconds_since "$started") s"
}

main() {
    FORCE=0
    local codes=() code
    for arg in "$@"; do
        case "$arg" in
            --force | -f) FORCE=1 ;;
            -h | --help) usage; exit 0 ;;
            psi4 | xtb) codes+=("$arg") ;;
            *) usage >&2; exit 2 ;;
        esac
    done
    [ "${#codes[@]}" -gt 0 ] || codes=(psi4 xtb)
    check_prerequisites
    mkdir -p "$ROOTFS_DIR"
    # The test session and `make demo` may run this at the same time: one builder at a time.
    exec 9>"$ROOTFS_DIR/.lock"
    flock 9
    local started
    started=$(date +%s.%N)
    for code in "${codes[@]}"; do
        build_image "$code"
    done
    log "done in $(seconds_since "$started") s"
}

main "$@"
