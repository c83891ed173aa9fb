#!/usr/bin/env bash
# Runs the Postman collection (postman_collection.json) with newman against a freshly
# started taskapi server on an EMPTY SQLite database (the first registered user becomes
# admin, which the collection relies on), and optionally a second time against
# PostgreSQL when NEWMAN_DATABASE_URL points to an EMPTY database.
#
# Environment:
#   TASKAPI_BIN          server binary (default target/debug/taskapi; relative to the repo root)
#   NEWMAN_DATABASE_URL  optional postgres://… URL for a second run against PostgreSQL. By default the
#                        script creates a throwaway database on that server (needs psql and the
#                        CREATEDB privilege) and drops it afterwards.
#   NEWMAN_PG_SCRATCH=0  use NEWMAN_DATABASE_URL's own database as it is instead (it must be empty)
#   NEWMAN_SQLITE=0      skip the SQLite run (only the PostgreSQL one; .ci/pgbouncer.sh)
#   NEWMAN_HOME          where newman is installed (default ${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-newman)
#   NEWMAN_KEEP_TMP=1    keep the temporary directory (database, logs, reports) after the run
#
# Prints "newman: N passed, N failed" (assertions) per run; exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COLLECTION="$ROOT/postman_collection.json"
PKG_DIR="$ROOT/tests/postman"
TASKAPI_BIN="${TASKAPI_BIN:-target/debug/taskapi}"
NEWMAN_HOME="${NEWMAN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-newman}"
READY_TIMEOUT_SECS="${READY_TIMEOUT_SECS:-60}"

log() { printf '[newman.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$TASKAPI_BIN" in /*) ;; *) TASKAPI_BIN="$ROOT/$TASKAPI_BIN" ;; esac
[[ -x "$TASKAPI_BIN" ]] || die "server binary $TASKAPI_BIN not found or not executable (build it first: cargo build)"
[[ -f "$COLLECTION" ]] || die "$COLLECTION not found"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/taskapi-newman.XXXXXX")"
SERVER_PID=""
SCRATCH_DB=""       # name of the throwaway PostgreSQL database, when one was created
SCRATCH_ADMIN_URL="" # URL used to create and drop it

stop_server() {
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

cleanup() {
    local rc=$?
    stop_server
    if [[ -n "$SCRATCH_DB" ]]; then
        psql "$SCRATCH_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$SCRATCH_DB\"" >/dev/null 2>&1 ||
            log "could not drop scratch database $SCRATCH_DB"
    fi
    if [[ "${NEWMAN_KEEP_TMP:-0}" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing nodejs and npm with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        die "node and npm are required (apt-get install nodejs npm)"
    fi
fi
command -v curl >/dev/null 2>&1 || die "curl is required"

# newman is installed from the committed package.json + package-lock.json (npm ci), outside
# the work tree, and reinstalled only when the lock file changes.
NEWMAN="$NEWMAN_HOME/node_modules/.bin/newman"
if [[ ! -x "$NEWMAN" ]] || ! cmp -s "$PKG_DIR/package-lock.json" "$NEWMAN_HOME/package-lock.json"; then
    log "installing newman into $NEWMAN_HOME"
    mkdir -p "$NEWMAN_HOME"
    cp "$PKG_DIR/package.json" "$PKG_DIR/package-lock.json" "$NEWMAN_HOME/"
    npm ci --prefix "$NEWMAN_HOME" --no-audit --no-fund --loglevel=error >&2
fi
[[ -x "$NEWMAN" ]] || die "newman was not installed"
log "using newman $("$NEWMAN" --version)"

# Cheap structural check first: a broken collection fails here with a clear message.
node -e '
const fs = require("fs");
const c = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
let n = 0;
const walk = (items) => items.forEach((i) => { if (i.item) walk(i.item); else n++; });
walk(c.item);
if (!n) { console.error("collection has no requests"); process.exit(1); }
' "$COLLECTION" || die "postman_collection.json is not valid"

# --- helpers ----------------------------------------------------------------------------
free_port() {
    node -e '
const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

random_hex() { # 32 random bytes as 64 hex chars
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

# run_once LABEL DATABASE_URL
run_once() {
    local label="$1" db_url="$2"
    local port base dir
    port="$(free_port)"
    base="http://127.0.0.1:$port"
    dir="$TMP/$label"
    mkdir -p "$dir/logs"

    log "[$label] starting $TASKAPI_BIN on $base"
    env DATABASE_URL="$db_url" \
        JWT_SECRET_KEY="$(random_hex)" \
        TASKAPI_PROFILE=development \
        TASKAPI_SERVER__HOST=127.0.0.1 \
        TASKAPI_SERVER__PORT="$port" \
        TASKAPI_LOG__DIR="$dir/logs" \
        "$TASKAPI_BIN" serve >"$dir/server.out" 2>&1 &
    SERVER_PID=$!

    local deadline=$((SECONDS + READY_TIMEOUT_SECS)) code=""
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "[$label] server exited before becoming ready; its output:"
            tail -n 50 "$dir/server.out" >&2 || true
            SERVER_PID=""
            return 1
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health/ready" || true)"
        [[ "$code" == 200 ]] && break
        if ((SECONDS >= deadline)); then
            log "[$label] /health/ready not 200 after ${READY_TIMEOUT_SECS}s (last status: ${code:-none}); server output:"
            tail -n 50 "$dir/server.out" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    log "[$label] server ready"

    local rc=0
    "$NEWMAN" run "$COLLECTION" \
        --env-var "baseUrl=$base" \
        --reporters cli,json \
        --reporter-json-export "$dir/newman-report.json" \
        --color off \
        --timeout-request 30000 \
        || rc=$?

    if [[ -f "$dir/newman-report.json" ]]; then
        node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const a = r.run.stats.assertions;
console.log(`newman: ${a.total - a.failed} passed, ${a.failed} failed`);
' "$dir/newman-report.json" || true
    fi
    if ((rc != 0)); then
        log "[$label] newman failed (exit $rc); last server output:"
        tail -n 40 "$dir/server.out" >&2 || true
    fi
    stop_server
    return "$rc"
}

status=0
if [[ "${NEWMAN_SQLITE:-1}" != 0 ]]; then
    run_once sqlite "sqlite://$TMP/newman.db?mode=rwc" || status=1
fi

# with_database URL NAME: URL with its database (path) replaced by NAME
with_database() {
    node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.toString());' "$1" "$2"
}

if [[ -n "${NEWMAN_DATABASE_URL:-}" ]]; then
    pg_url="$NEWMAN_DATABASE_URL"
    if [[ "${NEWMAN_PG_SCRATCH:-1}" != 0 ]]; then
        command -v psql >/dev/null 2>&1 || die "psql is required to create a scratch database (or set NEWMAN_PG_SCRATCH=0)"
        SCRATCH_ADMIN_URL="$NEWMAN_DATABASE_URL"
        name="taskapi_newman_$(date +%s)_$$"
        psql "$SCRATCH_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null ||
            die "could not create scratch database $name via NEWMAN_DATABASE_URL"
        SCRATCH_DB="$name"
        pg_url="$(with_database "$NEWMAN_DATABASE_URL" "$name")"
        log "[postgres] using scratch database $name"
    fi
    run_once postgres "$pg_url" || status=1
fi

if ((status == 0)); then
    log "all newman runs passed"
else
    log "newman runs FAILED"
fi
exit "$status"
