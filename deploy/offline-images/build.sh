#!/usr/bin/env bash
# Builds offline stand-ins for the third-party images that the Dockerfile, docker-compose.yml
# (and its replicas override) and the testcontainers tests name, for a Docker engine that
# cannot pull from any registry (CI here). Everything comes from Debian packages and the
# machine's own Rust toolchain; each stand-in is tagged with exactly the official name, so
# the project's files stay the ones real users run against the official images.
#
#   rust:<RUST_VERSION>-slim-bookworm        Debian 12 + gcc + this machine's toolchain
#   gcr.io/distroless/cc-debian12:nonroot    FROM scratch: glibc, libgcc, libstdc++, libssl3,
#                                            tzdata, netbase, CA bundle, uid 65532, no shell
#   postgres:17-alpine                       Debian 13 postgresql-17 + official-like entrypoint
#   prom/prometheus:v3.5.0                   Debian 13 prometheus (2.53)
#   redis:7-alpine                           Debian 12 redis-server (7.0)
#   haproxy:3.0-alpine                       Debian 13 haproxy (3.0)
#
# Grafana has neither a Debian package nor an image here: it has no stand-in.
#
# A tag that already exists is left alone, unless it is a stand-in built from other inputs
# (label org.taskapi.offline-standin holds a hash of its files), so a real official image
# pulled by a developer is never replaced. Base file systems come from debootstrap
# (--variant=minbase) and are imported as taskapi-offline/debian:{bookworm,trixie}.
#
# Usage: bash deploy/offline-images/build.sh [--force] [NAME...]   (root, Debian, a running dockerd)
#   NAME: rust, distroless, postgres, redis, prometheus, haproxy (default: all of them)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
FORCE=0
[[ "${1:-}" == --force ]] && { FORCE=1; shift; }
WANTED=("$@")
((${#WANTED[@]})) || WANTED=(rust distroless postgres redis prometheus haproxy)
wanted() { [[ " ${WANTED[*]} " == *" $1 "* ]]; }

log() { printf '[offline-images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker CLI not found"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"

# The Rust version is the Dockerfile's default build argument; the stand-in carries the
# machine's toolchain, which must be that version (nothing can be fetched from rustup).
RUST_VERSION="$(sed -n 's/^ARG RUST_VERSION=//p' "$ROOT/Dockerfile" | head -n 1)"
[[ -n "$RUST_VERSION" ]] || die "no ARG RUST_VERSION=… in Dockerfile"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/taskapi-offline-images.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# inputs_hash FILE...: identifies a stand-in's recipe, stored as a label.
inputs_hash() { cat "$@" | sha256sum | cut -c1-16; }

# needs_build TAG HASH: true when TAG is missing, or is a stand-in of another recipe.
needs_build() {
  local tag="$1" hash="$2" have
  ((FORCE)) && return 0
  docker image inspect "$tag" >/dev/null 2>&1 || return 0
  have="$(docker image inspect -f '{{ index .Config.Labels "org.taskapi.offline-standin" }}' "$tag" 2>/dev/null || true)"
  if [[ -z "$have" || "$have" == "<no value>" ]]; then
    log "$tag exists and is not a stand-in: kept"
    return 1
  fi
  [[ "$have" != "$hash" ]]
}

# base SUITE: debootstrap'ed minimal Debian imported as taskapi-offline/debian:SUITE.
base() {
  local suite="$1" tag="taskapi-offline/debian:$1" hash dir
  hash="$(printf 'base %s %s v1' "$suite" "$MIRROR" | sha256sum | cut -c1-16)"
  needs_build "$tag" "$hash" || return 0
  command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  log "debootstrap $suite (minbase)"
  dir="$WORK/rootfs-$suite"
  debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >"$WORK/debootstrap-$suite.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap-$suite.log" >&2
    die "debootstrap $suite failed"
  }
  # Security and point-release updates, as the official Debian images have them.
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
    "$MIRROR" "$suite" "$MIRROR" "$suite" "$suite" >"$dir/etc/apt/sources.list"
  # Image hygiene of the official Debian images: no recommends, no apt caches.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$dir/etc/apt/apt.conf.d/90taskapi-offline"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import \
    -c "CMD [\"bash\"]" -c "LABEL org.taskapi.offline-standin=$hash" - "$tag" >/dev/null
  rm -rf "$dir"
}

# standin TAG DOCKERFILE CONTEXT [build args...]; CONTEXT @rust is assembled on demand.
standin() {
  local tag="$1" dockerfile="$2" context="$3" hash
  shift 3
  local base_tag base_id
  # A rebuilt base (or an edited recipe) makes the stand-in stale.
  base_tag="$(sed -n 's/^ARG BASE=//p' "$HERE/$dockerfile" | head -n 1)"
  base_id="$(docker image inspect -f '{{.Id}}' "$base_tag")"
  hash="$(inputs_hash "$HERE/$dockerfile" "$HERE"/*entrypoint.sh <(printf '%s\n' "$base_id" "$@"))"
  needs_build "$tag" "$hash" || { log "$tag: cached"; return 0; }
  [[ "$context" == @rust ]] && context="$(rust_context)"
  log "building $tag"
  local start=$SECONDS
  # The classic builder: BuildKit would want to pull its Dockerfile frontend.
  DOCKER_BUILDKIT=0 docker build -q --force-rm -f "$HERE/$dockerfile" --label "org.taskapi.offline-standin=$hash" \
    "${@/#/--build-arg=}" -t "$tag" "$context" >"$WORK/build.log" 2>&1 || {
    tail -n 40 "$WORK/build.log" >&2
    die "building $tag failed"
  }
  log "$tag built in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$tag" | numfmt --to=iec))"
}

# rust_context: a build context with the machine's toolchain, rustup and extra CA certificates.
rust_context() {
  local sysroot ctx="$WORK/rust"
  sysroot="$(rustc --print sysroot)"
  mkdir -p "$ctx/rustup/toolchains/$RUST_TOOLCHAIN" "$ctx/cargo/bin" "$ctx/ca-certificates"
  # The toolchain without its 800 MB of HTML documentation.
  tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$ctx/rustup/toolchains/$RUST_TOOLCHAIN" -x
  cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca-certificates/" 2>/dev/null || true
  # Writable for any user, as in the official image; done here, not in a RUN layer that
  # would copy the whole toolchain a second time.
  chmod -R a+w "$ctx/rustup" "$ctx/cargo"
  echo "$ctx"
}

RUST_FULL="$(rustc --version | awk '{print $2}')"
[[ "$RUST_FULL" == "$RUST_VERSION" || "$RUST_FULL" == "$RUST_VERSION".* ]] \
  || die "the machine's rustc is $RUST_FULL; the Dockerfile wants $RUST_VERSION"
RUST_TOOLCHAIN="$RUST_FULL-$(rustc -vV | sed -n 's/^host: //p')"

# Both debootstraps at once: they mostly wait on the mirror.
base bookworm &
bookworm_pid=$!
base trixie &
trixie_pid=$!
wait "$bookworm_pid" || die "bookworm base failed"
wait "$trixie_pid" || die "trixie base failed"

# Stand-ins whose context is this directory (entrypoint scripts).
if wanted rust; then
  standin "rust:${RUST_VERSION}-slim-bookworm" rust.Dockerfile @rust \
    "RUST_FULL_VERSION=$RUST_FULL" "TOOLCHAIN=$RUST_TOOLCHAIN"
fi
if wanted distroless; then standin gcr.io/distroless/cc-debian12:nonroot distroless.Dockerfile "$HERE"; fi
if wanted postgres; then standin postgres:17-alpine postgres.Dockerfile "$HERE"; fi
if wanted redis; then standin redis:7-alpine redis.Dockerfile "$HERE"; fi
if wanted prometheus; then standin prom/prometheus:v3.5.0 prometheus.Dockerfile "$HERE"; fi
if wanted haproxy; then standin haproxy:3.0-alpine haproxy.Dockerfile "$HERE"; fi

log "stand-ins ready: $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  --filter label=org.taskapi.offline-standin --filter dangling=false | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
