#!/usr/bin/env bash
# Load benchmark of taskapi against PostgreSQL with in-run baselines (pgbench, raw argon2id).
#
#   deploy/bench/run.sh                      # DURATION=20s by default
#   DURATION=15s deploy/bench/run.sh
#
# Knobs (environment): DURATION (wrk/pgbench run length, "20s" or "1m"), CONNS (64),
# BIG_TASKS (50000: the tasks of the one big owner whose first pages are measured last),
# POOL (server DB pool size, 16), USERS (64), TASKS_PER_USER (100), PGBENCH_SCALE (10),
# PG_SSLMODE (prefer: the server's URL and pgbench both use libpq/sqlx's default, which is TLS
# when the server offers it, as Debian's does; "disable" turns TLS off for both),
# BENCH_PORT (18080), TASKAPI_BIN (default target/release/taskapi), PROBE_BIN (default
# target/release/examples/stack_probe: the stack-ceiling probe, run on BENCH_PORT+2 against
# the same database with the same tokens right after the GET scenario; PROBE=0 skips it), PERF=1 (extra
# profiled read and write runs with `perf record`; needs linux-perf and a binary with symbols),
# KEEP_DB=1 (keep the scratch databases).
#
# Everything talks to 127.0.0.1 only. The shared PostgreSQL server on 127.0.0.1:5432 is only
# used through createdb/dropdb of scratch databases; it is never stopped or reconfigured.
# Raw outputs go to deploy/bench/results/<timestamp>/ (gitignored); the summary goes to stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-20s}
CONNS=${CONNS:-64}
POOL=${POOL:-16}
USERS=${USERS:-64}
TASKS_PER_USER=${TASKS_PER_USER:-100}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
PORT=${BENCH_PORT:-18080}
BIN=${TASKAPI_BIN:-$ROOT/target/release/taskapi}
PROBE_BIN=${PROBE_BIN:-$ROOT/target/release/examples/stack_probe}
PROBE_PORT=$((PORT + 2))
PROBE_PID=""
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${BENCH_OUT:-$HERE/results/$STAMP}
PG_SSLMODE=${PG_SSLMODE:-prefer}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGSSLMODE=$PG_SSLMODE
DB=taskapi_bench_$$
PGB_DB=taskapi_pgbench_$$
VENV=$HERE/.venv
SERVER_PID=""
WATCH_PID=""

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# "20s" / "1m" / "90" -> seconds, for pgbench -T and the argon2 run.
duration_secs() {
  local d=$1
  case "$d" in
    *m) echo $(( ${d%m} * 60 )) ;;
    *s) echo "${d%s}" ;;
    *) echo "$d" ;;
  esac
}
SECS=$(duration_secs "$DURATION")

cleanup() {
  local rc=$?
  if [[ -n "$WATCH_PID" ]]; then kill "$WATCH_PID" 2>/dev/null || true; fi
  if [[ -n "$PROBE_PID" ]]; then kill "$PROBE_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP_DB:-0}" != 1 ]]; then
    dropdb --if-exists "$DB" 2>/dev/null || true
    dropdb --if-exists "$PGB_DB" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# ---------------------------------------------------------------- tools
install_tools() {
  local need=()
  command -v wrk >/dev/null || need+=(wrk)
  # pgbench ships in postgresql-client-15 on Debian 12; postgresql-contrib pulls it in otherwise.
  command -v pgbench >/dev/null || need+=(postgresql-client)
  command -v psql >/dev/null || need+=(postgresql-client)
  command -v python3 >/dev/null || need+=(python3 python3-venv)
  if [[ "${PERF:-0}" == 1 ]] && ! command -v perf >/dev/null; then need+=(linux-perf); fi
  if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import argon2' 2>/dev/null; then
    log "creating $VENV with argon2-cffi"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check argon2-cffi
  fi
}

# ---------------------------------------------------------------- helpers
rss_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Samples VmRSS every 200 ms into $2 (max so far) until killed; at most 30 minutes.
rss_watch() {
  local pid=$1 out=$2 max=0 v i
  echo 0 >"$out"
  for ((i = 0; i < 9000; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    v=$(rss_kb "$pid" VmRSS)
    if [[ -n "$v" ]] && ((v > max)); then max=$v; echo "$max" >"$out"; fi
    sleep 0.2
  done
}

# Peak RSS of the server during one scenario: VmHWM reset before (clear_refs 5), read after,
# combined with the sampled VmRSS maximum in case the kernel refuses the reset.
start_rss() {
  echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true
  rss_watch "$SERVER_PID" "$OUT/rss-$1.sampled" &
  WATCH_PID=$!
}
stop_rss() {
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=""
  local hwm sampled
  hwm=$(rss_kb "$SERVER_PID" VmHWM)
  sampled=$(cat "$OUT/rss-$1.sampled")
  echo "$(( hwm > sampled ? hwm : sampled ))" >"$OUT/rss-$1.peak"
}

wrk_run() { # name script threads conns [duration [port]]
  local name=$1 script=$2 threads=$3 conns=$4 dur=${5:-$DURATION} port=${6:-$PORT}
  note_interference "wrk-$name"
  log "wrk $name: -t$threads -c$conns -d$dur (port $port)"
  wrk -t"$threads" -c"$conns" -d"$dur" --timeout 10s --latency \
    -s "$HERE/lua/$script" "http://127.0.0.1:$port" >"$OUT/wrk-$name.txt" 2>&1
}

# The stack-ceiling probe (deploy/bench/stack_probe.rs): same token check, same SELECT,
# same JSON, nothing else. Same database, pool size and secret as the server; taskapi
# stays up but idle meanwhile.
probe_run() {
  if [[ "${PROBE:-1}" == 0 ]]; then return; fi
  if [[ ! -x "$PROBE_BIN" ]]; then
    log "no probe binary at $PROBE_BIN (cargo build --release --example stack_probe); skipping the probe"
    return
  fi
  (cd "$ROOT" && PROBE_PORT=$PROBE_PORT exec "$PROBE_BIN") >"$OUT/probe.out" 2>&1 &
  PROBE_PID=$!
  for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$PROBE_PORT") 2>/dev/null && break
    sleep 0.1
  done
  wrk_run probe-warmup get_task.lua 2 "$CONNS" 3s "$PROBE_PORT"
  wrk_run probe get_task.lua 2 "$CONNS" "$DURATION" "$PROBE_PORT"
  grep -E 'Requests/sec|Non-2xx|Socket errors' "$OUT/wrk-probe.txt" >&2 || true
  kill -TERM "$PROBE_PID" 2>/dev/null || true
  wait "$PROBE_PID" 2>/dev/null || true
  PROBE_PID=""
}

# Other CPU-heavy work on the 2 cores (builds, tests) skews every number: record it per scenario.
note_interference() { # label
  local busy
  busy=$(ps -eo pid=,comm= | awk '$2 ~ /^(rustc|cargo|cc1|cc1plus|ld|lld|clang|node|pytest|chrome)$/ {print $2"("$1")"}' | sort | tr '\n' ' ')
  echo "$1 loadavg=$(cut -d' ' -f1-3 /proc/loadavg) busy=[${busy}]" >>"$OUT/interference.txt"
  if [[ -n "$busy" ]]; then log "WARNING: other CPU-heavy processes during $1: $busy"; fi
}

server_alive() { kill -0 "$SERVER_PID" 2>/dev/null || { log "server died; see $OUT/server.out"; exit 1; }; }

# ---------------------------------------------------------------- start
install_tools
[[ -x "$BIN" ]] || { echo "missing $BIN: cd $ROOT && cargo build --release --bin taskapi" >&2; exit 1; }
mkdir -p "$OUT"
log "results in $OUT"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "postgresql: $(psql -d postgres -Atc 'show server_version') (ssl=$(psql -d postgres -Atc 'show ssl'); client sslmode=$PG_SSLMODE for pgbench and taskapi)"
  echo "pgbench: $(pgbench --version)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "taskapi binary: $BIN ($(stat -c %s "$BIN") bytes, built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ))"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "note: load generators (wrk, pgbench), PostgreSQL and taskapi all share these cores"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- baselines
log "pgbench baselines on scratch database $PGB_DB (scale $PGBENCH_SCALE)"
createdb "$PGB_DB"
pgbench -i -q -s "$PGBENCH_SCALE" "$PGB_DB" >"$OUT/pgbench-init.txt" 2>&1
note_interference pgbench-select
pgbench -S -M prepared -c "$CONNS" -j 2 -T "$SECS" "$PGB_DB" >"$OUT/pgbench-select.txt" 2>&1

# Writes: one INSERT per transaction into a table shaped like `tasks` (same columns and indexes, no FK).
psql -q -d "$PGB_DB" -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE bench_tasks (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  title varchar(200) NOT NULL,
  description text,
  status varchar(16) NOT NULL,
  priority smallint NOT NULL,
  due_date timestamptz,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX bench_tasks_user_created ON bench_tasks (user_id, created_at);
CREATE INDEX bench_tasks_user_due ON bench_tasks (user_id, due_date);
SQL
cat >"$OUT/pgbench-insert.sql" <<'SQL'
\set uid random(1, 64)
INSERT INTO bench_tasks (id, user_id, title, description, status, priority, due_date, version, created_at, updated_at) VALUES (gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(:uid::text, 12, '0'))::uuid, 'bench task', 'created by pgbench', 'todo', 2, now() + interval '30 days', 1, now(), now());
SQL
note_interference pgbench-insert
pgbench -n -M prepared -c "$CONNS" -j 2 -T "$SECS" -f "$OUT/pgbench-insert.sql" "$PGB_DB" >"$OUT/pgbench-insert.txt" 2>&1
grep -E '^tps' "$OUT/pgbench-select.txt" "$OUT/pgbench-insert.txt" >&2 || true

log "raw argon2id rate ($(nproc) processes, ${SECS}s)"
note_interference argon2
"$VENV/bin/python" "$HERE/argon2_rate.py" --seconds "$SECS" --procs "$(nproc)" >"$OUT/argon2.json"
cat "$OUT/argon2.json" >&2

# ---------------------------------------------------------------- server on PostgreSQL
createdb "$DB"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=$PG_SSLMODE"
export JWT_SECRET_KEY="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TASKAPI_SERVER__PORT=$PORT
export TASKAPI_LOG__DIR=$OUT/server-logs
export TASKAPI_LOG__LEVEL=warn
export TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000
export TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000
export TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400
export TASKAPI_DATABASE__MAX_CONNECTIONS=$POOL
export TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=5

log "starting $BIN on 127.0.0.1:$PORT (pool $POOL)"
(cd "$ROOT" && exec "$BIN" serve) >"$OUT/server.out" 2>&1 &
SERVER_PID=$!
"$VENV/bin/python" -c "import sys; sys.path.insert(0, '$HERE'); import httpkit; print(round(httpkit.wait_ready($PORT, 60), 3))" >"$OUT/ready-seconds.txt"
sleep 3
rss_kb "$SERVER_PID" VmRSS >"$OUT/idle-rss.kb"
# Blocking-pool threads (used for the start-up password-hash warm-up) linger ~10 s; measure again after.
sleep 12
rss_kb "$SERVER_PID" VmRSS >"$OUT/idle-rss-15s.kb"
log "idle RSS $(cat "$OUT/idle-rss.kb") kB at 3 s, $(cat "$OUT/idle-rss-15s.kb") kB at 15 s after ready"

"$VENV/bin/python" "$HERE/seed.py" --port "$PORT" --users "$USERS" --tasks-per-user "$TASKS_PER_USER" --out "$OUT/seed" | tee "$OUT/seed.txt" >&2
psql -q -d "$DB" -c 'VACUUM ANALYZE' >/dev/null
rss_kb "$SERVER_PID" VmRSS >"$OUT/after-seed-rss.kb"

export BENCH_LUA_DIR=$HERE/lua
export BENCH_TASKS_FILE=$OUT/seed/tasks.txt
export BENCH_CREDS_FILE=$OUT/seed/creds.txt

# Database transactions (autocommit statements count one each) per HTTP request, from pg_stat_database.
db_xacts() { psql -d "$DB" -Atc "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()"; }

# Extra run (not part of the table) with PERF=1: where the CPU goes during a scenario, right
# after it, so a listing is profiled on the seeded 100-task lists and not on the thousands of
# tasks the write scenarios add afterwards.
# 1) system-wide samples split by process (taskapi vs postgres vs wrk),
# 2) taskapi's own samples by DSO and symbol (needs a binary with symbols, e.g. built with
#    CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only into another target dir).
perf_run() {
  local name=$1 script=$2 psecs=$((SECS > 6 ? SECS - 3 : 3)) wrk_bg
  [[ "${PERF:-0}" == 1 ]] || return 0
  log "perf during an extra $name run"
  wrk_run "perf-$name" "$script" 2 "$CONNS" "$((2 * psecs + 6))s" &
  wrk_bg=$!
  sleep 2
  perf record -a -F 499 -o "$OUT/perf-$name-system.data" -- sleep "$psecs" >/dev/null 2>&1 || true
  perf record -F 999 -p "$SERVER_PID" -o "$OUT/perf-$name.data" -- sleep "$psecs" >/dev/null 2>&1 || true
  wait "$wrk_bg"
  perf report -i "$OUT/perf-$name-system.data" --stdio --sort comm --percent-limit 0.5 \
    >"$OUT/perf-$name-by-process.txt" 2>/dev/null || true
  perf report -i "$OUT/perf-$name.data" --stdio --sort dso --percent-limit 0.5 \
    >"$OUT/perf-$name-by-dso.txt" 2>/dev/null || true
  perf report -i "$OUT/perf-$name.data" --stdio --sort dso,symbol --percent-limit 0.4 \
    >"$OUT/perf-$name-symbols.txt" 2>/dev/null || true
}

wrk_run warmup get_task.lua 2 "$CONNS" 3s
for spec in "get get_task.lua" "list list_tasks.lua" "patch patch_task.lua" "create create_task.lua" "login login.lua"; do
  read -r name script <<<"$spec"
  server_alive
  sleep 2 # let backends flush their statistics
  X0=$(db_xacts)
  start_rss "$name"
  wrk_run "$name" "$script" 2 "$CONNS"
  stop_rss "$name"
  sleep 2
  echo "$(( $(db_xacts) - X0 - 1 ))" >"$OUT/xacts-$name.txt"
  grep -E 'Requests/sec|Non-2xx|Socket errors' "$OUT/wrk-$name.txt" >&2 || true
  if [[ "$name" == get ]]; then probe_run; fi
  case "$name" in get | list | create) perf_run "$name" "$script" ;; esac
done

# One owner with BIG_TASKS (50,000) tasks: the first page of each listing must not cost
# what the owner's task count costs (#23).
BIG_TASKS=${BIG_TASKS:-50000}
read -r BIG_TOKEN BIG_TASK <"$BENCH_TASKS_FILE"
BIG_OWNER=$(psql -d "$DB" -Atc "select user_id from tasks where id = '$BIG_TASK'")
log "big owner $BIG_OWNER: inserting $BIG_TASKS tasks"
psql -q -d "$DB" -v ON_ERROR_STOP=1 -v owner="$BIG_OWNER" -v tasks="$BIG_TASKS" -f "$HERE/big_owner.sql" >/dev/null
psql -q -d "$DB" -c 'VACUUM ANALYZE tasks' >/dev/null
export BIG_TOKEN
for spec in "default /api/v1/tasks?limit=20" "priority /api/v1/tasks?limit=20&sort=-priority" \
  "done /api/v1/tasks?limit=20&status=done" "search /api/v1/tasks?limit=20&q=task%2012345" \
  "word /api/v1/tasks?limit=20&q=12345" \
  "offset /api/v1/tasks?limit=20&offset=40000"; do
  read -r name path <<<"$spec"
  server_alive
  BIG_PATH=$path wrk_run "big-$name" big_owner.lua 2 16
  printf '%s %s %s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk-big-$name.txt")" \
    "$(awk '$1 == "50%" {print $2}' "$OUT/wrk-big-$name.txt")" >>"$OUT/big-owner.txt"
done
log "big owner (scenario req/s p50): $(tr '\n' ';' <"$OUT/big-owner.txt")"

# Ceiling of the HTTP stack alone (no database, no auth): GET /health/live. Info only.
note_interference wrk-live
wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s --latency "http://127.0.0.1:$PORT/health/live" >"$OUT/wrk-live.txt" 2>&1

# Login at full concurrency while a light reader measures how much logins hurt reads.
server_alive
start_rss login-mixed
wrk_run read-under-login get_task.lua 1 4 &
READER=$!
wrk_run login-mixed login.lua 2 "$CONNS"
wait "$READER"
stop_rss login-mixed
grep -E 'Requests/sec|99%' "$OUT/wrk-login-mixed.txt" "$OUT/wrk-read-under-login.txt" >&2 || true
server_alive

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# ---------------------------------------------------------------- start-up on SQLite
log "start-up to ready on SQLite (5 fresh + 5 migrated runs)"
(cd "$ROOT" && "$VENV/bin/python" "$HERE/startup_probe.py" --bin "$BIN" --port $((PORT + 1)) \
  --workdir "$OUT/startup" --runs 5) >"$OUT/startup.json"
cat "$OUT/startup.json" >&2

cat >"$OUT/meta.json" <<EOF
{"wrk_args": "-t2 -c$CONNS -d$DURATION --latency --timeout 10s", "pool": $POOL, "users": $USERS, "tasks_per_user": $TASKS_PER_USER}
EOF

# ---------------------------------------------------------------- summary
{
  echo "## taskapi benchmark $STAMP"
  echo
  echo '```'
  cat "$OUT/machine.txt"
  echo '```'
  echo
  "$VENV/bin/python" "$HERE/summarize.py" "$OUT"
  echo
  echo "One owner with $BIG_TASKS tasks, first page (wrk -t2 -c16; compare with pgbench -S above):"
  echo
  echo '| listing | req/s | p50 |'
  echo '|---|---:|---:|'
  awk '{printf "| %s | %s | %s |\n", $1, $2, $3}' "$OUT/big-owner.txt"
} | tee "$OUT/summary.md"
