# Shared shell for the CI section scripts; sourced, never run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sets ROOT (the repository root; the caller still cd's there when it wants to) and defines:
#   log, die                      "[<script>.sh] …" lines on stderr; die exits 1
#   install_debian_package PKG…   apt-get install as root (quietly), or die saying what to install
#   ensure_node_npm               node and npm, installed with apt-get when missing
#   npm_install_cached …          npm ci of a committed package.json + lock into a cache dir
#   extract_debian_binary …       one binary out of a Debian package, without installing it
#   make_tmp, free_port, random_hex, with_database
#   resolve_taskapi_bin           TASKAPI_BIN made absolute and checked
#   start_taskapi, wait_ready, stop_taskapi, cleanup_on_exit
#                                 a taskapi server on a scratch database, and the EXIT trap
#                                 that stops it and removes $TMP
# Nothing here runs at source time besides setting ROOT, LOG_TAG and the defaults below.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG="$(basename "${BASH_SOURCE[1]:-$0}")" # the sourcing script's file name
READY_TIMEOUT_SECS="${READY_TIMEOUT_SECS:-60}"

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools --------------------------------------------------------------------------------

# install_debian_package PACKAGE...: installs the packages with apt-get when running as root
# (apt's own output discarded); dies with what to install otherwise, or when apt-get fails.
install_debian_package() {
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "$* required (apt-get install $*)"
    fi
    log "installing $* with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null ||
        die "apt-get install $* failed"
}

ensure_node_npm() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        install_debian_package nodejs npm
    fi
}

# npm_install_cached PACKAGE_DIR CACHE_DIR BIN WHAT: `npm ci` of PACKAGE_DIR's committed
# package.json + package-lock.json into CACHE_DIR (outside the work tree), again only when
# the lock file changed or CACHE_DIR/node_modules/.bin/BIN is missing. WHAT names the
# packages in the log line.
npm_install_cached() {
    local pkg_dir="$1" cache="$2" bin="$3" what="$4"
    if [[ ! -x "$cache/node_modules/.bin/$bin" ]] ||
        ! cmp -s "$pkg_dir/package-lock.json" "$cache/package-lock.json"; then
        log "installing $what into $cache"
        mkdir -p "$cache"
        cp "$pkg_dir/package.json" "$pkg_dir/package-lock.json" "$cache/"
        npm ci --prefix "$cache" --no-audit --no-fund --loglevel=error >&2
    fi
    [[ -x "$cache/node_modules/.bin/$bin" ]] || die "$what was not installed"
}

# extract_debian_binary PACKAGE PATH DEST_DIR WORK_DIR LOG_FILE: extracts ./PATH (say
# usr/bin/promtool) of Debian's PACKAGE to DEST_DIR/<its name> without installing the package
# (apt-get download, with one apt-get update when that fails; apt's output appended to
# LOG_FILE). Returns non-zero on any failure; DEST_DIR/<name> is replaced only on success.
extract_debian_binary() {
    local pkg="$1" path="$2" dest="$3" dl="$4/deb-$1" log_file="$5" name
    name="$(basename "$path")"
    mkdir -p "$dl" || return 1
    chmod 0777 "$dl" || return 1 # lets apt's unprivileged _apt user write the download
    if ! (cd "$dl" && apt-get download -qq "$pkg") >>"$log_file" 2>&1; then
        apt-get update -qq >>"$log_file" 2>&1 || return 1
        (cd "$dl" && apt-get download -qq "$pkg") >>"$log_file" 2>&1 || return 1
    fi
    dpkg-deb --fsys-tarfile "$dl/${pkg}"_*.deb | tar -xO "./$path" >"$dest/$name.new" || return 1
    chmod 0755 "$dest/$name.new" && mv "$dest/$name.new" "$dest/$name"
}

# --- small helpers ------------------------------------------------------------------------

free_port() { # a free TCP port on 127.0.0.1
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
    fi
}

make_tmp() { # make_tmp NAME: sets TMP to a new directory ${TMPDIR:-/tmp}/taskapi-NAME.XXXXXX
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/taskapi-$1.XXXXXX")"
}

random_hex() { # 32 random bytes as 64 hex chars
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

# with_database URL NAME: URL with its database (path) replaced by NAME
with_database() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$1" "$2"
    else
        node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.toString());' "$1" "$2"
    fi
}

# --- a taskapi server on a scratch database -----------------------------------------------

# resolve_taskapi_bin: TASKAPI_BIN (default target/debug/taskapi, relative to the repository
# root) made absolute; dies when it is not an executable.
resolve_taskapi_bin() {
    TASKAPI_BIN="${TASKAPI_BIN:-target/debug/taskapi}"
    case "$TASKAPI_BIN" in /*) ;; *) TASKAPI_BIN="$ROOT/$TASKAPI_BIN" ;; esac
    [[ -x "$TASKAPI_BIN" ]] || die "server binary $TASKAPI_BIN not found or not executable (build it first: cargo build)"
}

SERVER_PID=""
BASE_URL=""

# start_taskapi LABEL DATABASE_URL: `taskapi serve` in the background on a free port of
# 127.0.0.1, development profile, logs in $TMP/LABEL/logs and its output in
# $TMP/LABEL/server.out; JWT_SECRET_KEY is $SERVER_JWT_SECRET when set, else random. Sets SERVER_PID
# and BASE_URL; does not wait (wait_ready).
start_taskapi() {
    local label="$1" db_url="$2" port dir="$TMP/$1"
    port="$(free_port)"
    BASE_URL="http://127.0.0.1:$port"
    mkdir -p "$dir/logs"
    env DATABASE_URL="$db_url" \
        JWT_SECRET_KEY="${SERVER_JWT_SECRET:-$(random_hex)}" \
        TASKAPI_PROFILE=development \
        TASKAPI_SERVER__HOST=127.0.0.1 \
        TASKAPI_SERVER__PORT="$port" \
        TASKAPI_LOG__DIR="$dir/logs" \
        "$TASKAPI_BIN" serve >"$dir/server.out" 2>&1 &
    SERVER_PID=$!
}

# wait_ready LABEL: waits (READY_TIMEOUT_SECS, default 60) until $BASE_URL/health/ready
# answers 200; when the server exits first or time runs out, logs why with the server's last
# output lines and returns 1.
wait_ready() {
    local label="$1" out="$TMP/$1/server.out" deadline=$((SECONDS + READY_TIMEOUT_SECS)) code=""
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "[$label] server exited before becoming ready; its output:"
            tail -n 50 "$out" >&2 || true
            SERVER_PID=""
            return 1
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/health/ready" || true)"
        [[ "$code" == 200 ]] && return 0
        if ((SECONDS >= deadline)); then
            log "[$label] /health/ready not 200 after ${READY_TIMEOUT_SECS}s (last status: ${code:-none}); server output:"
            tail -n 50 "$out" >&2 || true
            return 1
        fi
        sleep 0.3
    done
}

# stop_taskapi: SIGTERM (graceful shutdown), SIGKILL after 10 s; no-op when none runs.
stop_taskapi() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# cleanup_on_exit KEEP_TMP: installs the EXIT trap of a script that starts taskapi: stop the
# server, run the script's own cleanup_hook function when it defines one (dropping scratch
# databases), remove $TMP unless KEEP_TMP is 1, exit with the script's status. INT and TERM
# exit 130 through it.
cleanup_on_exit() {
    CLEANUP_KEEP_TMP="$1"
    trap _cleanup_on_exit EXIT
    trap 'exit 130' INT TERM
}
_cleanup_on_exit() {
    local rc=$?
    stop_taskapi
    if declare -F cleanup_hook >/dev/null; then cleanup_hook; fi
    if [[ "$CLEANUP_KEEP_TMP" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
