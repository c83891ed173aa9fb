#!/usr/bin/env bash
# The Postman collection through PgBouncer (issue #27, "Connection pooling at scale").
#
# Installs Debian's pgbouncer (if missing), starts it on 127.0.0.1:6432 in front of the local
# PostgreSQL with deploy/pgbouncer/pgbouncer.ini (transaction pooling, max_prepared_statements,
# trust auth for user postgres: CI only, see the file's production notes), creates a scratch
# database directly on PostgreSQL, and runs .ci/newman.sh with
# NEWMAN_DATABASE_URL=postgres://postgres@127.0.0.1:6432/<scratch>, so the server under test
# serves every request through PgBouncer (the schema is migrated directly on PostgreSQL
# first, as in production: see below). Then checks that the traffic went
# through PgBouncer (SHOW STATS) and that the server-side statement_timeout is in force
# (PgBouncer drops the app's own, sent as a start-up option).
#
# PgBouncer < 1.21 (Debian 12 ships 1.18) has no max_prepared_statements, and sqlx does not
# survive transaction pooling without it: named statements collide ("prepared statement
# sqlx_s_1 already exists"), and with the statement cache off
# (DATABASE_URL?statement-cache-capacity=0) sqlx's unnamed statement is parsed and executed
# in two protocol round trips that PgBouncer may send to different server connections ("bind
# message supplies 0 parameters, but prepared statement "" requires 2", or another client's
# statement run with this one's parameters). On such a PgBouncer this script runs the
# collection in SESSION mode instead, and says so: it proves the configuration and the app
# behind PgBouncer, not transaction pooling. PGBOUNCER_REQUIRE_TRANSACTION=1 makes that an
# error. With PgBouncer >= 1.21 (Debian 13, the compose profile's image) it is transaction mode.
#
# Environment: PGBOUNCER_ADMIN_URL (PostgreSQL itself, default
# postgres://postgres@127.0.0.1:5432/postgres), PGBOUNCER_PORT (default 6432), TASKAPI_BIN.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ADMIN_URL="${PGBOUNCER_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PORT="${PGBOUNCER_PORT:-6432}"
CONF="$ROOT/deploy/pgbouncer/pgbouncer.ini"

command -v pgbouncer >/dev/null || install_debian_package pgbouncer
version="$(pgbouncer --version | awk 'NR==1{print $2}')"
IFS=. read -r major minor _ <<<"$version"
if ((major > 1 || (major == 1 && minor >= 21))); then
    MODE=transaction
else
    MODE=session
    [[ "${PGBOUNCER_REQUIRE_TRANSACTION:-0}" != 1 ]] ||
        die "PgBouncer $version < 1.21: no max_prepared_statements, transaction mode cannot carry sqlx (PGBOUNCER_REQUIRE_TRANSACTION=1)"
fi
log "PgBouncer $version: pool_mode = $MODE"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    # Say, Debian's own pgbouncer service started by the package on a systemd machine.
    busy="$PORT"
    PORT="$(free_port)"
    log "127.0.0.1:$busy is in use: listening on $PORT instead"
fi

make_tmp pgbouncer
SCRATCH="taskapi_pgbouncer_$(date +%s)_$$"
CREATED=0
PGB_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$PGB_PID" ]] && kill -0 "$PGB_PID" 2>/dev/null; then
        kill -INT "$PGB_PID" 2>/dev/null || true # SIGINT: safe shutdown
        for _ in $(seq 1 50); do kill -0 "$PGB_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PGB_PID" 2>/dev/null || true
    fi
    if ((CREATED)); then
        psql "$ADMIN_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$SCRATCH\" WITH (FORCE)" >/dev/null 2>&1 || log "could not drop $SCRATCH"
    fi
    if ((rc != 0)) && [[ -f "$TMP/pgbouncer.log" ]]; then
        log "last PgBouncer log lines:"
        tail -n 20 "$TMP/pgbouncer.log" >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The committed configuration, with this run's paths (and the mode this PgBouncer can do).
cp deploy/pgbouncer/userlist.txt "$TMP/userlist.txt"
sed -E \
    -e "s#^auth_file = .*#auth_file = $TMP/userlist.txt#" \
    -e "s#^listen_port = .*#listen_port = $PORT#" \
    -e "s#^pool_mode = .*#pool_mode = $MODE#" \
    "$CONF" >"$TMP/pgbouncer.ini"
[[ "$MODE" == transaction ]] || sed -i -E 's/^max_prepared_statements = /;max_prepared_statements = /' "$TMP/pgbouncer.ini"
printf '\nlogfile = %s/pgbouncer.log\npidfile = %s/pgbouncer.pid\n' "$TMP" "$TMP" >>"$TMP/pgbouncer.ini"
grep -q "^pool_mode = $MODE$" "$TMP/pgbouncer.ini" || die "$CONF has no pool_mode line"
chmod 0755 "$TMP"
chown -R postgres "$TMP" # PgBouncer refuses to run as root

# PostgreSQL: the scratch database, with the statement timeout the app would have set itself
# (database.statement_timeout_ms, 5 s), since PgBouncer drops the app's start-up option.
psql "$ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$SCRATCH\"" >/dev/null || die "cannot create $SCRATCH"
CREATED=1
psql "$ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "ALTER DATABASE \"$SCRATCH\" SET statement_timeout = '5s'" >/dev/null

if [[ "$(id -u)" == 0 ]]; then
    pgbouncer -u postgres "$TMP/pgbouncer.ini" >"$TMP/stdout" 2>&1 &
else
    pgbouncer "$TMP/pgbouncer.ini" >"$TMP/stdout" 2>&1 &
fi
PGB_PID=$!
PGB_URL="postgres://postgres@127.0.0.1:$PORT"
for _ in $(seq 1 50); do
    psql "$PGB_URL/$SCRATCH" -qAtX -c 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$PGB_PID" 2>/dev/null || { cat "$TMP/stdout" >&2; die "pgbouncer exited"; }
    sleep 0.2
done
psql "$PGB_URL/$SCRATCH" -qAtX -c 'SELECT 1' >/dev/null || die "cannot connect through PgBouncer"
log "PgBouncer up on 127.0.0.1:$PORT (pid $PGB_PID), scratch database $SCRATCH"

PASSED=0
FAILED=0
check() { if [[ "$2" == 0 ]]; then PASSED=$((PASSED + 1)); log "ok: $1"; else FAILED=$((FAILED + 1)); log "FAIL: $1"; fi; }

# Migrations run directly against PostgreSQL, never through PgBouncer, as the Kubernetes
# migrate Job should: the migrator serialises processes with a SESSION advisory lock
# (pg_advisory_lock on a connection of its own), which transaction pooling would leave held
# on whichever server connection ran it, blocking the next migration. The server under test
# then starts with migrate-on-start off (newman.sh passes the environment on).
DATABASE_URL="$(printf '%s' "$ADMIN_URL" | sed -E "s#/[^/?]*(\?|$)#/$SCRATCH\1#")" JWT_SECRET_KEY="$(random_hex)" \
    TASKAPI_PROFILE=development TASKAPI_LOG__FILE_ENABLED=false "${TASKAPI_BIN:-target/debug/taskapi}" migrate up >&2 ||
    die "taskapi migrate up (directly on PostgreSQL) failed"
export TASKAPI_SERVER__MIGRATE_ON_START=false

# Only newman.sh's PostgreSQL run (its SQLite run is the newman section's), against the
# scratch database through PgBouncer.
set +e
NEWMAN_SQLITE=0 NEWMAN_PG_SCRATCH=0 NEWMAN_DATABASE_URL="$PGB_URL/$SCRATCH" bash .ci/newman.sh 2>&1 | tee "$TMP/newman.out"
newman_rc=${PIPESTATUS[0]}
set -e
result="$(grep -E '^newman: [0-9]+ passed, [0-9]+ failed' "$TMP/newman.out" | tail -n 1)"
check "newman through PgBouncer ($MODE mode) on PostgreSQL: ${result#newman: }" \
    "$([[ $newman_rc == 0 && "$result" =~ ^newman:\ [1-9][0-9]*\ passed,\ 0\ failed$ ]]; echo $?)"

# The server's traffic went through PgBouncer: it counted the transactions.
xacts="$(psql "$PGB_URL/pgbouncer" -qAtX -F' ' -c 'SHOW STATS' | awk -v db="$SCRATCH" '$1 == db {print $2}')"
check "PgBouncer carried the run (${xacts:-0} transactions for $SCRATCH)" "$([[ "${xacts:-0}" -gt 100 ]]; echo $?)"
timeout="$(psql "$PGB_URL/$SCRATCH" -qAtX -c 'SHOW statement_timeout')"
check "statement_timeout through PgBouncer is the server-side 5s (got $timeout)" "$([[ "$timeout" == 5s ]]; echo $?)"
errors="$(grep -c -E 'ERROR|WARNING .*prepared' "$TMP/pgbouncer.log" || true)"
check "no errors in the PgBouncer log ($errors)" "$([[ "$errors" == 0 ]]; echo $?)"
((FAILED == 0)) || grep -E 'ERROR|WARNING' "$TMP/pgbouncer.log" | tail -n 10 >&2 || true

if [[ "$MODE" == session ]]; then
    log "NOTE: PgBouncer $version < 1.21: ran in SESSION mode. Transaction pooling was NOT tested (needs max_prepared_statements, PgBouncer >= 1.21)."
fi
printf 'pgbouncer (%s mode, PgBouncer %s): %d passed, %d failed\n' "$MODE" "$version" "$PASSED" "$FAILED"
((FAILED == 0))
