#!/usr/bin/env bash
# Browser end-to-end test of the web front end against a real taskapi server.
#
# Starts $TASKAPI_BIN (default target/debug/taskapi, which must already be
# built) on a free port with a fresh SQLite database, waits for
# /health/ready, then runs tests/browser/e2e.mjs in headless Chromium.
# Screenshots and the server log land in $ARTIFACTS_DIR (default
# artifacts/screenshots) and its parent folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TASKAPI_BIN="${TASKAPI_BIN:-target/debug/taskapi}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:-$ROOT/artifacts/screenshots}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

log() { printf '[browser-e2e] %s\n' "$*"; }

if [[ ! -x "$TASKAPI_BIN" ]]; then
  log "server binary $TASKAPI_BIN not found or not executable (build it first, e.g. cargo build)"
  exit 1
fi
case "$TASKAPI_BIN" in
  /*) ;;
  *) TASKAPI_BIN="$ROOT/$TASKAPI_BIN" ;;
esac

# --- browser ---------------------------------------------------------------
if [[ ! -x /usr/bin/chromium ]]; then
  log "installing Debian's chromium"
  SUDO=""
  if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium
fi
log "$(/usr/bin/chromium --version 2>/dev/null || echo 'chromium (version unknown)')"

# --- test dependencies ------------------------------------------------------
log "npm ci (tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# --- server -----------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/taskapi-e2e.XXXXXX")"
mkdir -p "$TMP/logs" "$ARTIFACTS_DIR"
SERVER_LOG="$TMP/server.log"
SERVER_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -f "$SERVER_LOG" ]]; then
    cp "$SERVER_LOG" "$(dirname "$ARTIFACTS_DIR")/browser-e2e-server.log" 2>/dev/null || true
    if [[ $rc -ne 0 ]]; then
      log "last lines of the server log:"
      tail -n 40 "$SERVER_LOG" >&2 || true
    fi
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => console.log(port)); });
')"
JWT_SECRET_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
BASE_URL="http://127.0.0.1:$PORT"

log "starting $TASKAPI_BIN on $BASE_URL"
env \
  DATABASE_URL="sqlite://$TMP/e2e.db?mode=rwc" \
  JWT_SECRET_KEY="$JWT_SECRET_KEY" \
  TASKAPI_SERVER__HOST="127.0.0.1" \
  TASKAPI_SERVER__PORT="$PORT" \
  TASKAPI_SERVER__STATIC_DIR="$ROOT/static" \
  TASKAPI_LOG__DIR="$TMP/logs" \
  "$TASKAPI_BIN" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

deadline=$((SECONDS + READY_TIMEOUT))
ready() {
  node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(2000) })
      .then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));
  ' "$BASE_URL/health/ready"
}
until ready; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "the server exited before becoming ready"
    exit 1
  fi
  if (( SECONDS >= deadline )); then
    log "the server was not ready within ${READY_TIMEOUT}s"
    exit 1
  fi
  sleep 0.5
done
log "server ready"

# --- test -------------------------------------------------------------------
export BASE_URL ARTIFACTS_DIR
(cd tests/browser && node e2e.mjs)
