#!/usr/bin/env bash
# Starts the built server on a fresh SQLite database, drives a few requests through it and
# runs `promtool check metrics` on the live /metrics output. Needs promtool, which
# .ci/validate-deploy.sh installs under $TASKAPI_TOOLS_DIR/bin.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${TASKAPI_BIN:-$ROOT/target/debug/taskapi}"
PROMTOOL="${PROMTOOL:-${TASKAPI_TOOLS_DIR:-/tmp/taskapi-deploy-tools}/bin/promtool}"
TMP="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

DATABASE_URL="sqlite://$TMP/metrics.db?mode=rwc" \
JWT_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
TASKAPI_SERVER__PORT="$PORT" TASKAPI_LOG__DIR="$TMP/logs" \
  "$BIN" serve >"$TMP/server.log" 2>&1 &
PID=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  curl -fsS "$base/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/health/ready" >/dev/null
curl -sS -o /dev/null -H 'content-type: application/json' \
  -d '{"name":"Metrics","email":"metrics@example.com","password":"metrics-password"}' "$base/api/v1/auth/register"
curl -sS -o /dev/null -H 'content-type: application/json' \
  -d '{"email":"metrics@example.com","password":"wrong-password"}' "$base/api/v1/auth/login"
curl -sS -o /dev/null "$base/api/v1/does-not-exist"
curl -fsS "$base/metrics" >"$TMP/metrics.txt"
"$PROMTOOL" check metrics <"$TMP/metrics.txt"
grep -q 'http_requests_total{method="POST",route="/api/v1/auth/register",status="201"}' "$TMP/metrics.txt"
grep -q 'auth_login_total{outcome="failure"}' "$TMP/metrics.txt"
echo "live-metrics: 1 passed, 0 failed"
