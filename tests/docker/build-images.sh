#!/usr/bin/env bash
# Builds the container images kafka-broker and kafka-operator from the release binaries.
#
#   bash tests/docker/build-images.sh
#
# Tags each image `dev` and with the workspace version (the tag the Helm chart and the
# deploy/ manifests reference). No base image can be pulled, so the images are FROM scratch:
# this script stages each root filesystem from this machine's glibc (the shared libraries
# `ldd` lists, the loader, the NSS modules for `files` and `dns`) into a build context that
# the repository's Dockerfile copies. Idempotent: unchanged binaries give unchanged staged
# files (fixed mtimes), so Docker's layer cache answers and nothing is rebuilt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
source "$ROOT/tests/lib.sh"

command -v docker >/dev/null || die "docker is not installed"
CONTEXT="$ROOT/target/docker-context"
# Modification time of every staged file: fixed, so that the layers are reproducible.
EPOCH=0
RUN_AS=65532

say "cargo build --release -p broker -p operator"
cargo build --release -p broker -p operator
BIN="$ROOT/target/release"
VERSION="$("$BIN/broker" --version | awk '{print $2}')"
[ -n "$VERSION" ] || die "cannot read the version from $BIN/broker --version"

# libs_of FILE...: the absolute paths of the shared objects the loader maps for FILE (the
# loader itself included), one a line; fails on a library that is not found.
libs_of() {
    local out
    out="$(ldd "$@")" || die "ldd $* failed"
    if grep -q 'not found' <<<"$out"; then
        die "missing shared libraries: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
    fi
    # `lib => /path (0x...)` lines, and the loader's `/path (0x...)` line; with several
    # files ldd also prints a `FILE:` header line, which neither matches.
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(0x/ {print $1}' <<<"$out"
}

# stage_file SRC ROOTFS [MODE]: copies SRC (following symlinks) to the same path in ROOTFS.
stage_file() {
    install -D -m "${3:-0644}" "$1" "$2$1"
}

# stage_binary NAME ROOTFS: the release binary without its debug sections (the release
# profile keeps line tables, 5-6x the code's size); the symbols stay, so a backtrace still
# names the functions.
stage_binary() {
    mkdir -p "$2/usr/local/bin"
    objcopy --strip-debug "$BIN/$1" "$2/usr/local/bin/$1"
    chmod 0755 "$2/usr/local/bin/$1"
}

# Writes the glibc runtime both binaries need, shared as the images' first layer.
stage_runtime() {
    local rootfs="$1" libc nss_dir module lib
    mkdir -p "$rootfs/etc" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    libc="$(libs_of "$BIN/broker" | grep '/libc\.so\.' | head -n1)"
    [ -n "$libc" ] || die "ldd lists no libc for $BIN/broker"
    nss_dir="$(dirname "$libc")"
    # glibc >= 2.34 has `files` and `dns` built into libc (these are then small stubs);
    # older glibc loads them from here at the first host name lookup.
    local modules=()
    for module in libnss_files.so.2 libnss_dns.so.2; do
        if [ -e "$nss_dir/$module" ]; then modules+=("$nss_dir/$module"); fi
    done
    for lib in $(libs_of "$BIN/broker" "$BIN/operator" "${modules[@]}" | sort -u) "${modules[@]}"; do
        stage_file "$lib" "$rootfs" 0755
    done
    printf '%s\n' "passwd: files" "group: files" "hosts: files dns" >"$rootfs/etc/nsswitch.conf"
    printf '%s\n' "root:x:0:0:root:/root:/sbin/nologin" \
        "nonroot:x:$RUN_AS:$RUN_AS:nonroot:/nonexistent:/sbin/nologin" >"$rootfs/etc/passwd"
    printf '%s\n' "root:x:0:" "nonroot:x:$RUN_AS:" >"$rootfs/etc/group"
}

stage_context() {
    local next="$CONTEXT.next"
    rm -rf "$next"
    stage_runtime "$next/runtime"
    stage_binary broker "$next/broker"
    mkdir -p "$next/broker-data/var/lib/kafka/data"
    stage_binary operator "$next/operator"
    # The operator talks TLS to the Kubernetes API: in a cluster it trusts the service
    # account's CA; these roots serve a kubeconfig whose server has a public certificate.
    local ca=/etc/ssl/certs/ca-certificates.crt
    [ -f "$ca" ] || die "no CA bundle at $ca (install ca-certificates)"
    stage_file "$ca" "$next/operator"
    find "$next" -exec touch -h -d "@$EPOCH" {} +
    rm -rf "$CONTEXT"
    mv "$next" "$CONTEXT"
}

say "staging root filesystems in $CONTEXT"
stage_context

for image in broker operator; do
    say "docker build --target $image (kafka-$image:dev, kafka-$image:$VERSION)"
    docker build -q -f "$ROOT/Dockerfile" --target "$image" --build-arg "VERSION=$VERSION" \
        -t "kafka-$image:dev" -t "kafka-$image:$VERSION" "$CONTEXT"
done
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E "^kafka-(broker|operator):(dev|$VERSION) "
