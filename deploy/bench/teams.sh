#!/usr/bin/env bash
# Teams (#24) read paths against raw `pgbench -S` in the same run:
#   shared-get   GET /api/v1/tasks/{id}, a task of a shared project, read by a non-admin member (target >= 0.6x)
#   shared-list  GET /api/v1/projects/{id}/tasks?limit=20, first page, project of MEMBERS members
#                and TASKS tasks (target >= 0.25x)
#   inbox-get    GET /api/v1/tasks/{id}, a task of the caller's own Inbox (comparison)
#   inbox-list   GET /api/v1/tasks?limit=20, the Inbox's first page, TASKS tasks in it (comparison)
# The same non-admin members are the callers of all four; each of them also owns an Inbox of
# TASKS tasks, so the two listings page through equally large projects.
#
#   TASKAPI_BIN=/path/to/taskapi deploy/bench/teams.sh
#
# Knobs (environment): DURATION (15s), CONNS (64), POOL (16), MEMBERS (10, the admin who
# creates the project included), MEMBER_ROLE (editor, or viewer), TASKS (10000), SAMPLE (100
# task ids per member for the GETs), PGBENCH_SCALE (10), PG_SSLMODE (prefer), BENCH_PORT
# (18400), TASKAPI_BIN (target/release/taskapi), KEEP_DB=1. Server settings are run.sh's.
# pgbench -S runs before and after the four scenarios; ratios are to the mean of the two.
# Raw outputs go to deploy/bench/results/teams-<timestamp>/; the table goes to stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
POOL=${POOL:-16}
MEMBERS=${MEMBERS:-10}
MEMBER_ROLE=${MEMBER_ROLE:-editor}
TASKS=${TASKS:-10000}
SAMPLE=${SAMPLE:-100}
PGBENCH_SCALE=${PGBENCH_SCALE:-10}
PORT=${BENCH_PORT:-18400}
BIN=${TASKAPI_BIN:-$ROOT/target/release/taskapi}
PG_SSLMODE=${PG_SSLMODE:-prefer}
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGSSLMODE=$PG_SSLMODE
OUT=${BENCH_OUT:-$HERE/results/teams-$(date -u +%Y%m%dT%H%M%SZ)}
DB=taskapi_teams_$$
PGB_DB=taskapi_teams_pgb_$$
SERVER_PID=""

case "$DURATION" in *m) SECS=$((${DURATION%m} * 60)) ;; *s) SECS=${DURATION%s} ;; *) SECS=$DURATION ;; esac

log() { printf '[teams %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ "${KEEP_DB:-0}" != 1 ]]; then
    dropdb --if-exists "$DB" 2>/dev/null || true
    dropdb --if-exists "$PGB_DB" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# The 1/5/15-minute load and any other CPU-heavy process, before each measured run.
load_note() { # label
  local busy
  busy=$(ps -eo pid=,comm= | awk '$2 ~ /^(rustc|cargo|cc1|cc1plus|ld|lld|clang|node|pytest|chrome)$/ {print $2"("$1")"}' | sort | tr '\n' ' ')
  echo "$1 $(cut -d' ' -f1-3 /proc/loadavg) busy=[${busy}]" >>"$OUT/load.txt"
  log "before $1: $(uptime | sed 's/^ *//')${busy:+ busy: $busy}"
}

pgbench_select() { # name
  load_note "$1"
  pgbench -S -M prepared -c "$CONNS" -j 2 -T "$SECS" "$PGB_DB" >"$OUT/$1.txt" 2>&1
  awk '/^tps/ {print $3; exit}' "$OUT/$1.txt"
}

db_xacts() { psql -d "$DB" -Atc "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()"; }

scenario() { # name script rows-file
  local name=$1 script=$2 x0
  export BENCH_TASKS_FILE=$3
  wrk -t2 -c"$CONNS" -d3s -s "$HERE/lua/$script" "http://127.0.0.1:$PORT" >"$OUT/wrk-$name-warmup.txt" 2>&1
  kill -0 "$SERVER_PID" 2>/dev/null || { log "server died; see $OUT/server.out"; exit 1; }
  sleep 2 # let backends flush their statistics
  x0=$(db_xacts)
  load_note "$name"
  wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s --latency -s "$HERE/lua/$script" \
    "http://127.0.0.1:$PORT" >"$OUT/wrk-$name.txt" 2>&1
  sleep 2
  echo "$(($(db_xacts) - x0 - 1))" >"$OUT/xacts-$name.txt"
  grep -E 'Requests/sec|Non-2xx|Socket errors' "$OUT/wrk-$name.txt" >&2 || true
}

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v pgbench >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null; }
[[ -x "$BIN" ]] || { echo "missing $BIN (set TASKAPI_BIN)" >&2; exit 1; }
mkdir -p "$OUT"
log "results in $OUT; binary $BIN (built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)); scripts from $ROOT at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"

# ---------------------------------------------------------------- pgbench database
createdb "$PGB_DB"
pgbench -i -q -s "$PGBENCH_SCALE" "$PGB_DB" >"$OUT/pgbench-init.txt" 2>&1

# ---------------------------------------------------------------- server, users, project
createdb "$DB"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=$PG_SSLMODE"
export JWT_SECRET_KEY="teams-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export TASKAPI_SERVER__PORT=$PORT TASKAPI_LOG__DIR=$OUT/server-logs TASKAPI_LOG__LEVEL=warn
export TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000
export TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400 TASKAPI_SERVER__SHUTDOWN_GRACE_SECS=5
export TASKAPI_DATABASE__MAX_CONNECTIONS=$POOL
(cd "$ROOT" && exec "$BIN" serve) >"$OUT/server.out" 2>&1 &
SERVER_PID=$!
python3 -c "import sys; sys.path.insert(0, '$HERE'); import httpkit; httpkit.wait_ready($PORT, 60)"

# Writes "email token" per member to tokens.txt (admin first) and prints the project id.
PROJECT=$(python3 - "$HERE" "$PORT" "$MEMBERS" "$MEMBER_ROLE" "$OUT/tokens.txt" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from httpkit import Client
port, members, role, out = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
c, tag, password, rows = Client(port, timeout=60), int(time.time()), "bench-password-123", []
for i in range(members):
    email = f"teams-{tag}-{i}@example.test"
    c.json("POST", "/api/v1/auth/register", {"name": f"Teams {i}", "email": email, "password": password}, expect=201)
    _, login = c.json("POST", "/api/v1/auth/login", {"email": email, "password": password}, expect=200)
    rows.append((email, login["access_token"]))
admin = rows[0][1]
_, project = c.json("POST", "/api/v1/projects", {"name": "Shared bench project"}, token=admin, expect=201)
for email, _ in rows[1:]:
    c.json("POST", f"/api/v1/projects/{project['id']}/members", {"email": email, "role": role}, token=admin, expect=201)
with open(out, "w") as f:
    f.writelines(f"{e} {t}\n" for e, t in rows)
print(project["id"])
PY
)
log "project $PROJECT: $MEMBERS members ($((MEMBERS - 1)) ${MEMBER_ROLE}s); inserting $TASKS tasks into it and into each non-admin member's Inbox"

# big_owner.sql takes the project id as "owner" (tasks.user_id holds the project; an Inbox's id is its user's).
for owner in "$PROJECT" $(psql -d "$DB" -Atc "select user_id from project_members where project_id = '$PROJECT' and role < 3"); do
  psql -q -d "$DB" -v ON_ERROR_STOP=1 -v owner="$owner" -v tasks="$TASKS" -f "$HERE/big_owner.sql" >/dev/null
done
psql -q -d "$DB" -c 'VACUUM ANALYZE' >/dev/null
psql -d "$DB" -Atc "select 'tasks: ' || count(*) || ' in ' || count(distinct user_id) || ' projects' from tasks" >&2

# "email task_id" rows, SAMPLE random tasks per non-admin member, shuffled; then emails -> tokens.
psql -d "$DB" -At -F' ' -v ON_ERROR_STOP=1 -c "
  select u.email, t.id from users u join project_members m on m.user_id = u.id
  cross join (select id from tasks where user_id = '$PROJECT' order by random() limit $SAMPLE) t
  where m.project_id = '$PROJECT' and m.role < 3 order by random()" >"$OUT/shared-rows.txt"
psql -d "$DB" -At -F' ' -v ON_ERROR_STOP=1 -c "
  select u.email, t.id from users u join project_members m on m.user_id = u.id
  cross join lateral (select id from tasks where user_id = u.id order by random() limit $SAMPLE) t
  where m.project_id = '$PROJECT' and m.role < 3 order by random()" >"$OUT/inbox-rows.txt"
for kind in shared inbox; do
  awk 'NR == FNR {tok[$1] = $2; next} {print tok[$1], $2}' "$OUT/tokens.txt" "$OUT/$kind-rows.txt" >"$OUT/$kind-get.txt"
done

# One request of each kind by hand: a scenario that only answers errors must not pass for fast.
read -r TOK SHARED_TASK <"$OUT/shared-get.txt"
read -r ITOK INBOX_TASK <"$OUT/inbox-get.txt"
for probe in "$TOK /api/v1/tasks/$SHARED_TASK" "$TOK /api/v1/projects/$PROJECT/tasks?limit=20" \
  "$ITOK /api/v1/tasks/$INBOX_TASK" "$ITOK /api/v1/tasks?limit=20"; do
  read -r t path <<<"$probe"
  code=$(curl -s -o "$OUT/probe.json" -w '%{http_code}' -H "Authorization: Bearer $t" "http://127.0.0.1:$PORT$path")
  log "check GET $path -> $code ($(head -c 120 "$OUT/probe.json"))"
  [[ "$code" == 200 ]] || { log "expected 200"; exit 1; }
done

# ---------------------------------------------------------------- measurements
export BENCH_LUA_DIR=$HERE/lua BENCH_PROJECT_ID=$PROJECT
PGB_BEFORE=$(pgbench_select pgbench-before)
log "pgbench -S before: $PGB_BEFORE tps"
scenario shared-get get_task.lua "$OUT/shared-get.txt"
scenario shared-list project_tasks.lua "$OUT/shared-get.txt"
scenario inbox-get get_task.lua "$OUT/inbox-get.txt"
scenario inbox-list list_tasks.lua "$OUT/inbox-get.txt"
PGB_AFTER=$(pgbench_select pgbench-after)
log "pgbench -S after: $PGB_AFTER tps"

# ---------------------------------------------------------------- summary
PGB=$(awk -v a="$PGB_BEFORE" -v b="$PGB_AFTER" 'BEGIN {printf "%.0f", (a + b) / 2}')
{
  echo "## taskapi Teams reads $(date -u +%Y-%m-%dT%H:%M:%SZ) ($(nproc) cores; wrk -t2 -c$CONNS -d$DURATION; pool $POOL; $MEMBERS members, $TASKS tasks per project)"
  echo
  echo "| scenario | req/s | p50 | p99 | non-2xx | socket errors | db xacts/req | x pgbench -S | target | load 1/5/15 before |"
  echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---|"
  for pg in pgbench-before pgbench-after; do
    tps=$(awk '/^tps/ {print $3; exit}' "$OUT/$pg.txt")
    lat=$(awk '/^latency average/ {print $4 $5; exit}' "$OUT/$pg.txt")
    printf '| %s -S | %.0f | avg %s | | | | 1 | %.2f | | %s |\n' "$pg" "$tps" "$lat" "$(awk -v a="$tps" -v b="$PGB" 'BEGIN {print a / b}')" \
      "$(awk -v n="$pg" '$1 == n {print $2, $3, $4}' "$OUT/load.txt")"
  done
  for spec in "shared-get 0.6" "shared-list 0.25" "inbox-get -" "inbox-list -"; do
    read -r name target <<<"$spec"
    f=$OUT/wrk-$name.txt
    rps=$(awk '/Requests\/sec/ {print $2}' "$f")
    reqs=$(awk '/requests in/ {print $1}' "$f")
    awk -v name="$name" -v rps="$rps" -v reqs="$reqs" -v pgb="$PGB" -v target="$target" \
      -v p50="$(awk '$1 == "50%" {print $2}' "$f")" -v p99="$(awk '$1 == "99%" {print $2}' "$f")" \
      -v bad="$(awk '/Non-2xx/ {print $NF}' "$f")" -v sock="$(awk -F'errors: ' '/Socket errors/ {print $2}' "$f")" \
      -v xacts="$(cat "$OUT/xacts-$name.txt")" -v ld="$(awk -v n="$name" '$1 == n {print $2, $3, $4}' "$OUT/load.txt")" \
      'BEGIN {printf "| %s | %.0f | %s | %s | %s | %s | %.2f | %.2f | %s | %s |\n", name, rps, p50, p99,
              (bad == "" ? 0 : bad), (sock == "" ? "-" : sock), (reqs > 0 ? xacts / reqs : 0), rps / pgb,
              (target == "-" ? "-" : ">= " target), ld}'
  done
  echo
  echo "Ratios are to the mean of the two pgbench -S runs ($PGB tps; pgbench -S -M prepared -c$CONNS -j2 -T$SECS, scale $PGBENCH_SCALE)."
  echo "Other CPU-heavy processes before each run: $(awk '{n = $1; $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); printf "%s%s %s", (NR > 1 ? "; " : ""), n, $0}' "$OUT/load.txt")"
} | tee "$OUT/summary.md"
