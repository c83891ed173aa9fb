#!/bin/bash
# Private PG cluster on 127.0.0.1:55433 with pg_stat_statements (ssl=off): runs taskapi, 10 s wrk per scenario,
# prints calls, mean exec/plan time and rows per statement. Usage: TASKAPI_BIN=... extra/pgss.sh
set -u
D=$(mktemp -d /tmp/pgss.XXXX); chown postgres: $D
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D $D/data -A trust -U postgres --no-sync >/dev/null
OPTS="-p 55433 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$D -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on -c ssl=off"
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $D/data -o "$OPTS" -l $D/log -w start >/dev/null
U=postgres://postgres@127.0.0.1:55433
psql $U/postgres -qc 'create database t' ; psql $U/t -qc 'create extension pg_stat_statements'
H=$(cd "$(dirname "$0")/.." && pwd); O=${OUT:-/tmp/taskapi-pgss}; rm -rf $O; mkdir -p $O
DATABASE_URL=$U/t JWT_SECRET_KEY=0123456789abcdef0123456789abcdef0123 TASKAPI_SERVER__PORT=18500 TASKAPI_LOG__DIR=$O/logs TASKAPI_LOG__LEVEL=warn TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000 TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS=86400 ${TASKAPI_BIN:-$(dirname "$0")/../../../target/release/taskapi} serve > $O/server.out 2>&1 &
pid=$!
$H/.venv/bin/python -c "import sys; sys.path.insert(0,'$H'); import httpkit; httpkit.wait_ready(18500,30)"
$H/.venv/bin/python $H/seed.py --port 18500 --users 64 --tasks-per-user 100 --out $O/seed > /dev/null
psql $U/t -qc 'vacuum analyze'
export BENCH_LUA_DIR=$H/lua BENCH_TASKS_FILE=$O/seed/tasks.txt BENCH_CREDS_FILE=$O/seed/creds.txt
for s in get_task list_tasks create_task; do
  psql $U/t -qAtc 'select pg_stat_statements_reset()' >/dev/null
  wrk -t2 -c64 -d10s -s $H/lua/$s.lua http://127.0.0.1:18500 > $O/wrk-$s.txt
  echo "== $s (ssl off) $(grep Requests/sec $O/wrk-$s.txt)"
  psql $U/t -P pager=off -c "select calls, round(mean_exec_time::numeric,4) exec_ms, round(mean_plan_time::numeric,4) plan_ms, plans, rows/greatest(calls,1) rows_per_call, left(regexp_replace(query,'\s+',' ','g'),140) q from pg_stat_statements where calls > 100 order by calls desc limit 6"
done
kill $pid; wait $pid
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $D/data -m fast -w stop >/dev/null; rm -rf $D
