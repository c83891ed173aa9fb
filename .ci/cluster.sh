#!/usr/bin/env bash
# Multi-replica harness (issue #10, "Prove"): a scratch database on the local PostgreSQL, its
# own redis-server, 3 taskapi replicas and HAProxy (round robin, health checks on
# /health/ready, X-Forwarded-For), all on 127.0.0.0/8; then the checks of
# deploy/cluster/cluster.py through the balancer. One PASS/FAIL line per check, a final
# "N passed, N failed" line, non-zero exit on any failure.
#
#   bash .ci/cluster.sh                    # TASKAPI_BIN defaults to target/debug/taskapi
#
# Knobs (environment): TASKAPI_BIN, CLUSTER_PORT_BASE (18300: HAProxy on it, replicas on the
# next four ports and their metrics ports, which serve /metrics and are never behind HAProxy,
# on +11..+14), CLUSTER_REDIS_PORT (6390; never the system Redis on 6379, because the harness
# stops and restarts it), CLUSTER_LOAD_WORKERS (8), CLUSTER_LOAD_RATE (20 requests/s per
# worker), CLUSTER_DRAIN_DELAY_SECS (2), CLUSTER_KEEP=1 (keep the run directory and the
# database for inspection).
#
# Needs root on Debian 12 when haproxy or redis-server is missing (installed with apt-get).
# The shared PostgreSQL on 127.0.0.1:5432 is only used through createdb/dropdb of a scratch
# database. Everything the harness starts is ended on exit by the trap below, by pid.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${TASKAPI_BIN:-$ROOT/target/debug/taskapi}"
PORT_BASE="${CLUSTER_PORT_BASE:-18300}"
REDIS_PORT="${CLUSTER_REDIS_PORT:-6390}"
PG="postgres://postgres@127.0.0.1:5432"
DB="taskapi_cluster_$$"
RUN_DIR="$(mktemp -d /tmp/taskapi-cluster.XXXXXX)"
DB_CREATED=""

say() { printf '[cluster.sh] %s\n' "$*"; }

cleanup() {
  local rc=$? pid f
  # End what the driver started (its pid files), in case the driver itself died early.
  for f in "$RUN_DIR"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for f in "$RUN_DIR"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [[ "${CLUSTER_KEEP:-0}" == 1 ]]; then
    say "kept $RUN_DIR and database $DB"
  else
    if [[ -n "$DB_CREATED" ]]; then
      psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$RUN_DIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ------------------------------------------------------------------------------
apt_install() {
  say "installing $* (Debian packages)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}
command -v haproxy >/dev/null || apt_install haproxy
command -v redis-server >/dev/null || apt_install redis-server
command -v psql >/dev/null || apt_install postgresql-client
command -v python3 >/dev/null || apt_install python3
say "$(haproxy -v | head -n1), $(redis-server --version | awk '{print $1, $2, $3}'), $(python3 --version)"

if [[ ! -x "$BIN" ]]; then
  say "building $BIN"
  cargo build --bin taskapi
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { say "PostgreSQL is not answering on 127.0.0.1:5432 (.ci/run starts it)"; exit 1; }

psql -q "$PG/postgres" -c "CREATE DATABASE $DB" >/dev/null
DB_CREATED=1

# --- run ---------------------------------------------------------------------------------
mkdir -p "$RUN_DIR/pids"
set +e
env \
  TASKAPI_BIN="$BIN" \
  CLUSTER_ROOT="$ROOT" \
  CLUSTER_RUN_DIR="$RUN_DIR" \
  CLUSTER_DATABASE_URL="$PG/$DB" \
  CLUSTER_HAPROXY_CFG="$ROOT/deploy/cluster/haproxy.cfg" \
  CLUSTER_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  CLUSTER_LB_PORT="$PORT_BASE" \
  CLUSTER_REPLICA_PORTS="$((PORT_BASE + 1)),$((PORT_BASE + 2)),$((PORT_BASE + 3)),$((PORT_BASE + 4))" \
  CLUSTER_REPLICA_METRICS_PORTS="$((PORT_BASE + 11)),$((PORT_BASE + 12)),$((PORT_BASE + 13)),$((PORT_BASE + 14))" \
  CLUSTER_REDIS_PORT="$REDIS_PORT" \
  python3 "$ROOT/deploy/cluster/cluster.py"
rc=$?
set -e
if ((rc != 0)); then
  for f in "$RUN_DIR"/r?.log; do
    [[ -f "$f" ]] || continue
    say "last lines of $(basename "$f"):"
    tail -n 8 "$f" | sed 's/^/    /'
  done
fi
exit "$rc"
