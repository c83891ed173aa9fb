#!/usr/bin/env bash
# Schemathesis against the live OpenAPI spec with every check, authenticated, over every
# route, bounded in time with a fixed seed. Two runs: the token-revoking routes
# (logout-all, password change) get their own user so they cannot log the main run out.
# Uses PostgreSQL from FUZZ_DATABASE_URL (a scratch database is created and dropped),
# else SQLite.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${TASKAPI_BIN:-$ROOT/target/debug/taskapi}"
VENV="${TASKAPI_TOOLS_DIR:-/tmp/taskapi-deploy-tools}/fuzz-venv"
SCHEMATHESIS_VERSION="4.32.5"
SEED="${FUZZ_SEED:-20261125}"
MAX_TIME="${FUZZ_MAX_TIME:-90}"
TMP="$(mktemp -d)"
DB_NAME=""
cleanup() {
  [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null
  wait 2>/dev/null || true
  if [[ -n "$DB_NAME" ]]; then psql -q "$FUZZ_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

if [[ ! -x "$VENV/bin/schemathesis" ]] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [[ -n "${FUZZ_DATABASE_URL:-}" ]]; then
  DB_NAME="taskapi_fuzz_$$"
  psql -q "$FUZZ_DATABASE_URL" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
  DATABASE_URL="${FUZZ_DATABASE_URL%/*}/$DB_NAME"
else
  DATABASE_URL="sqlite://$TMP/fuzz.db?mode=rwc"
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
DATABASE_URL="$DATABASE_URL" \
JWT_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
TASKAPI_SERVER__PORT="$PORT" TASKAPI_LOG__DIR="$TMP/logs" TASKAPI_LOG__LEVEL=warn \
TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 TASKAPI_LIMITS__PER_USER_PER_MINUTE=100000000 \
TASKAPI_LIMITS__LOGIN_FAILURES_BEFORE_LOCK=100000000 \
  "$BIN" serve >"$TMP/server.log" 2>&1 &
PID=$!
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do curl -fsS "$base/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done

token_for() {
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"email\":\"$1@fuzz.example.com\",\"password\":\"fuzz-password-$1\"}" "$base/api/v1/auth/register"
  curl -fsS -H 'content-type: application/json' \
    -d "{\"email\":\"$1@fuzz.example.com\",\"password\":\"fuzz-password-$1\"}" "$base/api/v1/auth/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
ADMIN_TOKEN="$(token_for admin)"   # first user: admin, so admin routes are reachable

# Run from the scratch directory: schemathesis and hypothesis keep caches in the cwd.
st() { (cd "$TMP" && "$VENV/bin/schemathesis" --config-file "$ROOT/.ci/schemathesis.toml" run "$base/apidocs/openapi.json" --checks all --seed "$SEED" \
  --generation-deterministic --workers 1 --suppress-health-check too_slow,filter_too_much "$@"); }

status=0
echo "== fuzz: every route except the token-revoking ones and the change feed (admin token) =="
# The change feed (/api/v1/tasks/events) is excluded: a 200 is a Server-Sent Events stream
# that stays open until the token expires, so every generated request would hang the run
# until its timeout. Its 200/401/429 behaviour is covered by tests/api/events.rs.
st -H "Authorization: Bearer $ADMIN_TOKEN" --max-time "$MAX_TIME" \
  --exclude-path-regex '^/api/v1/auth/(logout-all|password)$|^/api/v1/tasks/events$' || status=1
# The other two users are made only now: the admin run may find any listed account through
# the spec's links and deactivate, demote or delete it, which revokes its tokens.
PASSWORD_TOKEN="$(token_for changer)"
LOGOUT_TOKEN="$(token_for leaver)"
echo "== fuzz: password change (its own user; a success revokes that user's tokens) =="
st -H "Authorization: Bearer $PASSWORD_TOKEN" --max-time 20 \
  --include-path-regex '^/api/v1/auth/password$' || status=1
echo "== fuzz: logout-all (its own user; the first success revokes the token) =="
st -H "Authorization: Bearer $LOGOUT_TOKEN" --max-time 10 \
  --include-path-regex '^/api/v1/auth/logout-all$' || status=1
if grep -qiE "panicked|stack backtrace" "$TMP/server.log"; then
  echo "server log shows a panic:"; grep -iE -A5 "panicked" "$TMP/server.log" | head -40; status=1
fi
if [[ $status -eq 0 ]]; then echo "fuzz: 3 passed, 0 failed"; else echo "fuzz: failures found"; fi
exit $status
