#!/usr/bin/env bash
# Throughput cost of the Redis-backed limiter on GET /api/v1/tasks/{id}: the same taskapi
# binary, the same seeded database, wrk against one process, alternating in-memory limits
# (REDIS_URL unset) and Redis-backed limits (its own redis-server) in the same run.
# By hand, not in CI (it takes ROUNDS x 2 x DURATION plus seeding):
#
#   cargo build --release --bin taskapi
#   bash deploy/cluster/bench_limiter.sh          # DURATION=15s ROUNDS=3 CONNS=32
#
# Knobs: TASKAPI_BIN (target/release/taskapi), DURATION, ROUNDS, CONNS, THREADS (2), USERS (16),
# BENCH_PORT (18390), BENCH_REDIS_PORT (6391), POOL (16).
# The limits are set very high so every request is counted (one Redis round trip per request
# in Redis mode: the per-user window) but none is refused.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${TASKAPI_BIN:-$ROOT/target/release/taskapi}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
USERS=${USERS:-16}
PORT=${BENCH_PORT:-18390}
REDIS_PORT=${BENCH_REDIS_PORT:-6391}
POOL=${POOL:-16}
DB=taskapi_limiter_bench_$$
OUT=$(mktemp -d /tmp/taskapi-limiter-bench.XXXXXX)
SERVER_PID=""
REDIS_PID=""

log() { printf '[limiter-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop_pid "$SERVER_PID"
  stop_pid "$REDIS_PID"
  psql -q "postgres://postgres@127.0.0.1:5432/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  [[ "${KEEP_OUT:-0}" == 1 ]] || rm -rf "$OUT"
  exit "$rc"
}
trap cleanup EXIT INT TERM

for tool in wrk redis-server psql python3; do
  command -v "$tool" >/dev/null || { log "$tool is missing (apt-get install wrk redis-server postgresql-client)"; exit 1; }
done
[[ -x "$BIN" ]] || { log "$BIN missing: cargo build --release --bin taskapi"; exit 1; }

psql -q "postgres://postgres@127.0.0.1:5432/postgres" -c "CREATE DATABASE $DB" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export JWT_SECRET_KEY="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TASKAPI_SERVER__PORT=$PORT
export TASKAPI_LOG__DIR=$OUT/logs
export TASKAPI_LOG__LEVEL=warn
export TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000
export TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000
export TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400
export TASKAPI_DATABASE__MAX_CONNECTIONS=$POOL
export TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=5
unset REDIS_URL TASKAPI_REDIS__URL

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start_server() { # $1 = memory|redis
  if [[ "$1" == redis ]]; then
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT" "$BIN" serve >>"$OUT/server-$1.log" 2>&1 &
  else
    "$BIN" serve >>"$OUT/server-$1.log" 2>&1 &
  fi
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" -o "$OUT/ready.json" 2>/dev/null && break
    sleep 0.1
  done
  grep -q '"ready"' "$OUT/ready.json" || { log "server ($1) not ready"; tail "$OUT/server-$1.log" >&2; exit 1; }
  log "server up in $1 mode: $(cat "$OUT/ready.json")"
}

start_server memory
python3 "$ROOT/deploy/bench/seed.py" --port "$PORT" --users "$USERS" --tasks-per-user 10 --out "$OUT/seed" >&2
export BENCH_LUA_DIR=$ROOT/deploy/bench/lua BENCH_TASKS_FILE=$OUT/seed/tasks.txt
stop_pid "$SERVER_PID"

declare -A RESULTS CPU
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  # Alternate the order so that drift (other load, caches) does not favour one mode.
  if ((round % 2)); then order="memory redis"; else order="redis memory"; fi
  for mode in $order; do
    start_server "$mode"
    wrk -t"$THREADS" -c"$CONNS" -d3s -s "$BENCH_LUA_DIR/get_task.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1
    # CPU time of taskapi and redis-server per request: unlike req/s, it does not depend on
    # what else the machine runs at the same time.
    app0=$(cpu_ticks "$SERVER_PID") redis0=$(cpu_ticks "$REDIS_PID")
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency -s "$BENCH_LUA_DIR/get_task.lua" \
      "http://127.0.0.1:$PORT" >"$OUT/wrk-$mode-$round.txt" 2>&1
    app1=$(cpu_ticks "$SERVER_PID") redis1=$(cpu_ticks "$REDIS_PID")
    rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-$mode-$round.txt")
    reqs=$(awk '/requests in/ {print $1}' "$OUT/wrk-$mode-$round.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$mode-$round.txt")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$OUT/wrk-$mode-$round.txt")
    app_us=$(awk -v t=$((app1 - app0)) -v n="$reqs" -v hz="$HZ" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
    redis_us=$(awk -v t=$((redis1 - redis0)) -v n="$reqs" -v hz="$HZ" 'BEGIN { printf "%.0f", t * 1e6 / hz / n }')
    RESULTS[$mode]+="$rps "
    CPU[$mode]+="$((app_us + redis_us)) "
    log "round $round $mode: $rps req/s, p99 $p99, non-2xx ${non2xx:-0}, CPU/request taskapi ${app_us} us + redis ${redis_us} us"
    printf 'round %s  %-6s  %10s req/s  p99 %-8s non-2xx %-3s CPU per request: taskapi %4s us, redis-server %3s us\n' \
      "$round" "$mode" "$rps" "$p99" "${non2xx:-0}" "$app_us" "$redis_us"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mem=$(echo "${RESULTS[memory]}" | median)
red=$(echo "${RESULTS[redis]}" | median)
mem_cpu=$(echo "${CPU[memory]}" | median)
red_cpu=$(echo "${CPU[redis]}" | median)
printf 'median in-memory %s req/s, Redis-backed %s req/s, ratio %.3f (binary %s, wrk -t%s -c%s -d%s, %s rounds)\n' \
  "$mem" "$red" "$(awk -v r="$red" -v m="$mem" 'BEGIN { print r / m }')" "$BIN" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS"
printf 'median CPU per request (taskapi + redis-server): in-memory %s us, Redis-backed %s us, ratio %.3f\n' \
  "$mem_cpu" "$red_cpu" "$(awk -v r="$red_cpu" -v m="$mem_cpu" 'BEGIN { print m / r }')"
