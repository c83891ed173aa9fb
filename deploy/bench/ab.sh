#!/usr/bin/env bash
# A/B of taskapi binaries on one scenario: the binaries take turns on one seeded database, so
# machine noise (which moves run.sh's baselines by tens of percent between runs) hits them
# alike. For a change's effect; run.sh stays the reference for the targets.
#
#   deploy/bench/ab.sh /tmp/taskapi-before /tmp/taskapi-after   (older binary first)
#   SCRIPT=get_task.lua ROUNDS=3 deploy/bench/ab.sh A B C
#
# Meant for the read scripts: a write script changes the data the next turn sees.
# SCRIPT=big_owner.lua measures BIG_PATH (a first page, /api/v1/tasks?limit=20) for one owner
# given BIG_TASKS (50000) more tasks. Knobs: SCRIPT (a file of deploy/bench/lua, list_tasks.lua), ROUNDS (2), DURATION (8s, after
# a 3 s warm-up per turn), CONNS (64), THREADS (2, or 1 with CONNS=1), USERS (64), TASKS_PER_USER (100), BENCH_PORT (18300),
# PG_SSLMODE (prefer). Server settings are run.sh's. Needs wrk, psql and python3 (run.sh
# installs them). Prints one line per turn: binary, req/s, non-2xx responses.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT=${SCRIPT:-list_tasks.lua}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
# wrk needs at least one connection per thread: CONNS=1 measures the lone-request path.
THREADS=${THREADS:-$((CONNS < 2 ? CONNS : 2))}
USERS=${USERS:-64}
TASKS_PER_USER=${TASKS_PER_USER:-100}
PORT=${BENCH_PORT:-18300}
PG_SSLMODE=${PG_SSLMODE:-prefer}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGSSLMODE=$PG_SSLMODE
DB=taskapi_ab_$$
WORK=$(mktemp -d)
SERVER_PID=""

(($# >= 1)) || { echo "usage: $0 BINARY [BINARY ...]" >&2; exit 2; }

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  dropdb --if-exists "$DB" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=$PG_SSLMODE"
export JWT_SECRET_KEY="ab-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TASKAPI_SERVER__PORT=$PORT TASKAPI_LOG__DIR=$WORK/logs TASKAPI_LOG__LEVEL=warn
export TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000
export TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400 TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=5
export BENCH_LUA_DIR=$HERE/lua BENCH_TASKS_FILE=$WORK/seed/tasks.txt BENCH_CREDS_FILE=$WORK/seed/creds.txt

start() {
  "$1" serve >"$WORK/server.out" 2>&1 &
  SERVER_PID=$!
  python3 -c "import sys; sys.path.insert(0, '$HERE'); import httpkit; httpkit.wait_ready($PORT, 60)"
}
stop() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

createdb "$DB"
# Every binary's migrations (expand-only), oldest first as the arguments are given, before
# the data and the statistics: each turn plans with the indexes it would have in
# production. The servers then start without migrating (an older binary's migrator
# refuses a database that holds a migration it does not know).
for bin in "$@"; do "$bin" migrate up >/dev/null; done
export TASKAPI_SERVER__MIGRATE_ON_START=false
start "$1"
python3 "$HERE/seed.py" --port "$PORT" --users "$USERS" --tasks-per-user "$TASKS_PER_USER" --out "$WORK/seed" >&2
stop
if [[ "$SCRIPT" == big_owner.lua ]]; then
  read -r BIG_TOKEN BIG_TASK <"$BENCH_TASKS_FILE"
  BIG_OWNER=$(psql -d "$DB" -Atc "select user_id from tasks where id = '$BIG_TASK'")
  psql -q -d "$DB" -v ON_ERROR_STOP=1 -v owner="$BIG_OWNER" -v tasks="${BIG_TASKS:-50000}" \
    -f "$HERE/big_owner.sql" >/dev/null
  export BIG_TOKEN BIG_PATH=${BIG_PATH:-/api/v1/tasks?limit=20}
fi
psql -q -d "$DB" -c 'VACUUM ANALYZE' >/dev/null

for ((round = 1; round <= ROUNDS; round++)); do
  for bin in "$@"; do
    start "$bin"
    wrk -t"$THREADS" -c"$CONNS" -d3s -s "$HERE/lua/$SCRIPT" "http://127.0.0.1:$PORT" >/dev/null
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s -s "$HERE/lua/$SCRIPT" "http://127.0.0.1:$PORT")
    stop
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf 'round %d  %-40s %10s req/s  non-2xx %s\n' "$round" "$bin" "$rps" "${bad:-0}"
  done
done
