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
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

COLLECTION="$ROOT/postman_collection.json"
PKG_DIR="$ROOT/tests/postman"
NEWMAN_HOME="${NEWMAN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-newman}"

resolve_taskapi_bin
[[ -f "$COLLECTION" ]] || die "$COLLECTION not found"

make_tmp newman
SCRATCH_DB=""       # name of the throwaway PostgreSQL database, when one was created
SCRATCH_ADMIN_URL="" # URL used to create and drop it

cleanup_hook() {
    if [[ -n "$SCRATCH_DB" ]]; then
        psql "$SCRATCH_ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 \
            -c "DROP DATABASE IF EXISTS \"$SCRATCH_DB\"" >/dev/null 2>&1 ||
            log "could not drop scratch database $SCRATCH_DB"
    fi
}
cleanup_on_exit "${NEWMAN_KEEP_TMP:-0}"

# --- tools ------------------------------------------------------------------------------
ensure_node_npm
command -v curl >/dev/null 2>&1 || die "curl is required"

# newman is installed from the committed package.json + package-lock.json (npm ci), outside
# the work tree, and reinstalled only when the lock file changes.
NEWMAN="$NEWMAN_HOME/node_modules/.bin/newman"
npm_install_cached "$PKG_DIR" "$NEWMAN_HOME" newman newman
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

# run_once LABEL DATABASE_URL
run_once() {
    local label="$1" db_url="$2"
    local base dir="$TMP/$1"
    start_taskapi "$label" "$db_url"
    base="$BASE_URL"
    log "[$label] starting $TASKAPI_BIN on $base"
    wait_ready "$label" || return 1
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
    stop_taskapi
    return "$rc"
}

status=0
if [[ "${NEWMAN_SQLITE:-1}" != 0 ]]; then
    run_once sqlite "sqlite://$TMP/newman.db?mode=rwc" || status=1
fi

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
