#!/usr/bin/env bash
# Fault-injection checks for taskapi. Prints one PASS/FAIL line per check and ends with
# "N passed, M failed" (exit status 1 when anything failed).
#
#   deploy/bench/faults.sh
#
# 1. PostgreSQL outage: a private throwaway cluster (initdb in a temp dir, port 55432) is
#    stopped for OUTAGE_SECS (8) in the middle of a LOAD_SECS (30) write load, then started
#    again. Checks: process stays up, 503 problem+json during the outage, /health/ready 503,
#    recovery without restart, every acknowledged task id is in the database.
# 2. SIGTERM mid-load: no 5xx among answered requests, exit status 0, acknowledged writes durable.
# 3. Slow and malformed clients: slowloris (50 conns, 1 header byte/s, 35 s) while /health/live is
#    probed, 10 MB bodies (Content-Length and chunked), deeply nested JSON, broken JSON,
#    non-HTTP bytes, a 1 MB header; then the server must still be healthy.
#
# Only 127.0.0.1 is used. The shared PostgreSQL on 5432 is not touched. Raw outputs go to
# deploy/bench/results/faults-<timestamp>/.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TASKAPI_BIN:-$ROOT/target/release/taskapi}
PG_PORT=${FAULT_PG_PORT:-55432}
PORT=${FAULT_PORT:-18090}
LOAD_SECS=${LOAD_SECS:-30}
OUTAGE_SECS=${OUTAGE_SECS:-8}
OUTAGE_AT=${OUTAGE_AT:-10}
CLIENTS=${CLIENTS:-4}
GRACE=${GRACE:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${FAULT_OUT:-$HERE/results/faults-$STAMP}
PY=python3
[[ -x "$HERE/.venv/bin/python" ]] && PY=$HERE/.venv/bin/python
mkdir -p "$OUT"
PGDIR=$(mktemp -d /tmp/taskapi-faults-pg.XXXXXX)
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/taskapi"
SERVER_PID=""
PASSED=0
FAILED=0

log() { printf '[faults %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }

as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl_() { as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" "$@"; }

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  pg_ctl_ stop -m immediate -w >/dev/null 2>&1
  rm -rf "$PGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a checker, echoes its lines and counts PASS/FAIL lines.
check() {
  local out
  out=$("$@" 2>&1)
  printf '%s\n' "$out" | tee -a "$OUT/checks.txt"
  PASSED=$((PASSED + $(grep -c '^PASS ' <<<"$out")))
  FAILED=$((FAILED + $(grep -c '^FAIL ' <<<"$out")))
}
result() { # ok name detail
  if [[ $1 == 0 ]]; then echo "PASS $2: $3"; PASSED=$((PASSED + 1)); else echo "FAIL $2: $3"; FAILED=$((FAILED + 1)); fi | tee -a "$OUT/checks.txt"
}

start_server() { # label
  TASKAPI_SERVER__PORT=$PORT DATABASE_URL=$DB_URL \
    JWT_SECRET_KEY="faults-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    TASKAPI_LOG__DIR="$OUT/logs-$1" TASKAPI_LOG__LEVEL=${FAULT_LOG_LEVEL:-warn} \
    TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000 \
    TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=$GRACE \
    "$BIN" serve >"$OUT/server-$1.out" 2>&1 &
  SERVER_PID=$!
  "$PY" -c "import sys; sys.path.insert(0, '$HERE'); import httpkit; httpkit.wait_ready($PORT, 60)" ||
    { log "server did not become ready; see $OUT/server-$1.out"; exit 1; }
  log "taskapi ($1) pid $SERVER_PID ready on 127.0.0.1:$PORT"
}

command -v psql >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null; }
[[ -x "$BIN" ]] || { echo "missing $BIN: cd $ROOT && cargo build --release --bin taskapi" >&2; exit 1; }
[[ -x "$PGBIN/initdb" ]] || { echo "missing $PGBIN/initdb (Debian package postgresql-15)" >&2; exit 1; }

# ---------------------------------------------------------------- private cluster
log "initdb into $PGDIR (port $PG_PORT)"
chown postgres: "$PGDIR" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres --no-sync >"$OUT/initdb.txt" 2>&1 ||
  { cat "$OUT/initdb.txt" >&2; exit 1; }
PG_OPTS="-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PGDIR -c max_connections=100"
pg_ctl_ -o "$PG_OPTS" -l "$PGDIR/pg.log" -w start >/dev/null
psql "postgres://postgres@127.0.0.1:$PG_PORT/postgres" -Xq -c 'CREATE DATABASE taskapi' >/dev/null

# ---------------------------------------------------------------- 1. outage
start_server outage
"$PY" "$HERE/fault_load.py" users --port "$PORT" --count "$CLIENTS" --out "$OUT/tokens.txt"
log "write load: $CLIENTS clients for ${LOAD_SECS}s; PostgreSQL stopped at +${OUTAGE_AT}s for ${OUTAGE_SECS}s"
"$PY" "$HERE/fault_load.py" writes --port "$PORT" --tokens "$OUT/tokens.txt" --seconds "$LOAD_SECS" \
  --out "$OUT/outage-events.jsonl" --ready-poll &
LOAD=$!
sleep "$OUTAGE_AT"
echo "stop_begin $(now)" >"$OUT/outage-marks.txt"
pg_ctl_ stop -m fast -w >>"$OUT/pg_ctl.txt" 2>&1
echo "down $(now)" >>"$OUT/outage-marks.txt"
sleep "$OUTAGE_SECS"
echo "start_begin $(now)" >>"$OUT/outage-marks.txt"
pg_ctl_ -o "$PG_OPTS" -l "$PGDIR/pg.log" -w start >>"$OUT/pg_ctl.txt" 2>&1
echo "up $(now)" >>"$OUT/outage-marks.txt"
wait "$LOAD"
check "$PY" "$HERE/fault_load.py" analyze-outage --events "$OUT/outage-events.jsonl" --marks "$OUT/outage-marks.txt" \
  --db-url "$DB_URL" --pid "$SERVER_PID"

# ---------------------------------------------------------------- 2. SIGTERM mid-load
log "SIGTERM mid-load (grace ${GRACE}s)"
"$PY" "$HERE/fault_load.py" writes --port "$PORT" --tokens "$OUT/tokens.txt" --seconds 8 \
  --out "$OUT/sigterm-events.jsonl" &
LOAD=$!
sleep 3
echo "sigterm $(now)" >"$OUT/sigterm-marks.txt"
T0=$(now)
kill -TERM "$SERVER_PID"
# Bounded wait: grace period plus 10 s.
for _ in $(seq 1 $(((GRACE + 10) * 10))); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  result 1 sigterm/exit-0 "process still running $((GRACE + 10)) s after SIGTERM"
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null
else
  wait "$SERVER_PID"
  RC=$?
  result "$([[ $RC == 0 ]] && echo 0 || echo 1)" sigterm/exit-0 \
    "exit status $RC, $(awk -v a="$T0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}') s after SIGTERM"
fi
SERVER_PID=""
wait "$LOAD"
check "$PY" "$HERE/fault_load.py" analyze-sigterm --events "$OUT/sigterm-events.jsonl" --db-url "$DB_URL" \
  --marks "$OUT/sigterm-marks.txt"

# ---------------------------------------------------------------- 3. slow / huge / malformed
start_server abuse
# Each start gets a new JWT secret, so the earlier tokens are void: register a fresh user.
"$PY" "$HERE/fault_load.py" users --port "$PORT" --count 1 --out "$OUT/tokens-abuse.txt"
TOKEN=$(awk 'NR==1 {print $2}' "$OUT/tokens-abuse.txt")
log "slowloris: ${SLOW_CONNS:-50} connections for ${SLOW_SECS:-35}s"
check "$PY" "$HERE/fault_load.py" slowloris --port "$PORT" --conns "${SLOW_CONNS:-50}" --seconds "${SLOW_SECS:-35}"
check "$PY" "$HERE/fault_load.py" healthy --port "$PORT" --pid "$SERVER_PID" --label after-slowloris
check "$PY" "$HERE/fault_load.py" bigbody --port "$PORT" --token "$TOKEN"
check "$PY" "$HERE/fault_load.py" nested --port "$PORT" --token "$TOKEN"
check "$PY" "$HERE/fault_load.py" malformed --port "$PORT" --token "$TOKEN"
check "$PY" "$HERE/fault_load.py" healthy --port "$PORT" --pid "$SERVER_PID" --label final

echo "raw outputs: $OUT" >&2
echo "$PASSED passed, $FAILED failed" | tee -a "$OUT/checks.txt"
[[ $FAILED == 0 ]]
