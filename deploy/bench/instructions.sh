#!/usr/bin/env bash
# Instructions per request: a figure that, unlike req/s, does not move with the load other
# processes put on the machine. The release binary runs under `valgrind --tool=callgrind`
# against a scratch PostgreSQL database; instructions.py seeds 4 users x 50 tasks through
# the API, then for each request kind sends a warm-up, zeroes callgrind's counters, sends
# exactly REQUESTS requests on one keep-alive connection, and dumps the counters. The
# counts cover every thread of the server (runtime workers, blocking pool, log writer).
#
#   deploy/bench/instructions.sh                 # REQUESTS=2000 per kind
#   REQUESTS=500 deploy/bench/instructions.sh
#
# Knobs: REQUESTS (2000), WARMUP (100), TASKAPI_BIN (target/release/taskapi; build it with
# CARGO_PROFILE_RELEASE_STRIP=false so callgrind_annotate can name functions), PG_SSLMODE
# (prefer, as run.sh), BENCH_PORT (18090), TOP (25 functions per phase in the profiles),
# BENCH_GIT (the revision to print, for a binary not built from this checkout).
# Server settings are run.sh's (log level warn, limits raised, in-memory limiter, pool 16).
#
# Output in deploy/bench/results/instr-<timestamp>/: callgrind.out.<pid>.<n> per phase,
# annotate-<phase>.txt (top functions, inclusive and exclusive), summary.md (the table).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-100}
PORT=${BENCH_PORT:-18090}
TOP=${TOP:-25}
BIN=${TASKAPI_BIN:-$ROOT/target/release/taskapi}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${BENCH_OUT:-$HERE/results/instr-$STAMP}
PG_SSLMODE=${PG_SSLMODE:-prefer}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGSSLMODE=$PG_SSLMODE
DB=taskapi_instr_$$
SERVER_PID=""

log() { printf '[instr %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  dropdb --if-exists "$DB" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT INT TERM

if ! command -v valgrind >/dev/null; then
  log "installing valgrind"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
[[ -x "$BIN" ]] || { echo "missing $BIN: cd $ROOT && CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --bin taskapi" >&2; exit 1; }
mkdir -p "$OUT"
log "results in $OUT"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "valgrind: $(valgrind --version)"
  echo "taskapi binary: $BIN ($(stat -c %s "$BIN") bytes, built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ))"
  echo "git: ${BENCH_GIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')}"
  echo "requests per kind: $REQUESTS after $WARMUP warm-up; one keep-alive connection; PostgreSQL sslmode=$PG_SSLMODE"
} >"$OUT/machine.txt"

createdb "$DB"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=$PG_SSLMODE"
export JWT_SECRET_KEY="instr-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TASKAPI_SERVER__PORT=$PORT
export TASKAPI_LOG__DIR=$OUT/server-logs
export TASKAPI_LOG__LEVEL=warn
export TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000
export TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000
export TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400
export TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=5

log "starting $BIN under callgrind on 127.0.0.1:$PORT"
(cd "$ROOT" && exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
  "$BIN" serve) >"$OUT/server.out" 2>&1 &
SERVER_PID=$!
python3 -c "import sys; sys.path.insert(0, '$HERE'); import httpkit; print(round(httpkit.wait_ready($PORT, 600), 3))" >"$OUT/ready-seconds.txt"
log "ready after $(cat "$OUT/ready-seconds.txt") s (under callgrind)"

python3 "$HERE/instructions.py" --port "$PORT" --pid "$SERVER_PID" --out "$OUT" \
  --requests "$REQUESTS" --warmup "$WARMUP"

python3 - "$OUT" "$TOP" <<'PY'
import json, os, subprocess, sys
out, top = sys.argv[1], sys.argv[2]
for p in json.load(open(os.path.join(out, "phases.json"))):
    if not p.get("dump"):
        continue
    with open(os.path.join(out, f"annotate-{p['phase']}.txt"), "w") as fh:
        for extra in (["--inclusive=yes"], ["--inclusive=no"]):
            text = subprocess.run(["callgrind_annotate", "--auto=no", *extra, p["dump"]],
                                  capture_output=True, text=True, check=False).stdout
            fh.write("\n".join(text.splitlines()[: int(top) + 25]) + "\n\n")
PY

{
  echo "## instructions per request $STAMP"
  echo
  echo '```'
  cat "$OUT/machine.txt"
  echo '```'
  echo
  python3 "$HERE/callgrind_totals.py" "$OUT"
} | tee "$OUT/summary.md"
