#!/usr/bin/env bash
# Typed clients from the OpenAPI document: generates a Python client (openapi-python-client)
# and TypeScript types (openapi-typescript, used through openapi-fetch) from
# `taskapi openapi`, failing on any generator warning, then runs the same flow with each
# (tests/clients/python/flow.py, tests/clients/typescript/flow.ts, type-checked with tsc
# first) against a freshly started taskapi server on an EMPTY SQLite database.
#
# Environment:
#   TASKAPI_BIN          server binary (default target/debug/taskapi; relative to the repo root)
#   CLIENTS_HOME         where the generators and runtimes are installed
#                        (default ${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-clients)
#   CLIENTS_KEEP_TMP=1   keep the temporary directory (database, logs) after the run
#
# Generated code goes to tests/clients/generated/ (not committed). Prints
# "clients: N passed, N failed" (flows); exits non-zero on any failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

CLIENTS="$ROOT/tests/clients"
GENERATED="$CLIENTS/generated"
CLIENTS_HOME="${CLIENTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-clients}"

resolve_taskapi_bin

make_tmp clients
cleanup_on_exit "${CLIENTS_KEEP_TMP:-0}"

# --- tools ------------------------------------------------------------------------------
ensure_node_npm
command -v python3 >/dev/null 2>&1 || install_debian_package python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || install_debian_package python3-venv
command -v curl >/dev/null 2>&1 || die "curl is required"

# TypeScript side: openapi-typescript, openapi-fetch, tsx and tsc from the committed
# package.json + package-lock.json (npm ci), outside the work tree, reinstalled only when
# the lock file changes. flow.ts finds them through a node_modules link (git-ignored).
NODE_HOME="$CLIENTS_HOME/node"
TS_DIR="$CLIENTS/typescript"
npm_install_cached "$TS_DIR" "$NODE_HOME" openapi-typescript "openapi-typescript, openapi-fetch, tsx, typescript"
ln -sfn "$NODE_HOME/node_modules" "$TS_DIR/node_modules"
NODE_BIN="$NODE_HOME/node_modules/.bin"

# Python side: a virtualenv with the pinned generator and the generated client's imports,
# rebuilt when requirements.txt changes.
VENV="$CLIENTS_HOME/venv"
PY_DIR="$CLIENTS/python"
if [[ ! -x "$VENV/bin/openapi-python-client" ]] ||
    ! cmp -s "$PY_DIR/requirements.txt" "$VENV/requirements.txt"; then
    log "installing openapi-python-client into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$PY_DIR/requirements.txt" >&2
    cp "$PY_DIR/requirements.txt" "$VENV/requirements.txt"
fi
log "using openapi-python-client $("$VENV/bin/pip" show openapi-python-client | sed -n 's/^Version: //p'), openapi-typescript $("$NODE_BIN/openapi-typescript" --version)"

# --- generate ---------------------------------------------------------------------------
SPEC="$TMP/openapi.json"
"$TASKAPI_BIN" openapi >"$SPEC"
mkdir -p "$GENERATED"

# Python: --fail-on-warning turns every warning into a failure. The generator's post hooks
# (ruff) are run from the virtualenv.
log "generating the Python client"
PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate \
    --path "$SPEC" \
    --config "$PY_DIR/config.yaml" \
    --output-path "$GENERATED/python/taskapi_client" \
    --meta none \
    --overwrite \
    --fail-on-warning 2>&1 | tee "$TMP/python-generate.log" >&2 ||
    die "openapi-python-client failed (or warned)"
if grep -qi 'warning' "$TMP/python-generate.log"; then
    die "openapi-python-client printed warnings"
fi

# TypeScript: openapi-typescript validates the document (Redocly) before writing; any line
# it prints besides its banner and success line counts as a warning.
log "generating the TypeScript types"
"$NODE_BIN/openapi-typescript" "$SPEC" -o "$GENERATED/typescript/schema.d.ts" \
    >"$TMP/typescript-generate.log" 2>&1 || {
    cat "$TMP/typescript-generate.log" >&2
    die "openapi-typescript failed"
}
cat "$TMP/typescript-generate.log" >&2
if grep -v '^✨ openapi-typescript\|^🚀 ' "$TMP/typescript-generate.log" | grep -q '[^[:space:]]'; then
    die "openapi-typescript printed warnings"
fi

log "type-checking flow.ts against the generated types"
(cd "$TS_DIR" && "$NODE_BIN/tsc" --noEmit -p tsconfig.json) || die "tsc found type errors in flow.ts"

# --- run --------------------------------------------------------------------------------
# start_server LABEL: a server on an empty SQLite database; sets BASE_URL.
start_server() {
    local label="$1"
    start_taskapi "$label" "sqlite://$TMP/$label/taskapi.db?mode=rwc"
    log "[$label] starting $TASKAPI_BIN on $BASE_URL"
    wait_ready "$label"
}

# run_flow LABEL COMMAND...: the flow against its own fresh server (each flow registers
# the first account, the admin, on an empty database).
passed=0
failed=0
run_flow() {
    local label="$1"
    shift
    local rc=0
    start_server "$label" || rc=$?
    if ((rc == 0)); then
        log "[$label] running the flow"
        TASKAPI_BASE_URL="$BASE_URL" "$@" || rc=$?
    fi
    if ((rc == 0)); then
        passed=$((passed + 1))
        log "[$label] flow passed"
    else
        failed=$((failed + 1))
        log "[$label] flow FAILED (exit $rc); last server output:"
        tail -n 30 "$TMP/$label/server.out" >&2 || true
    fi
    stop_taskapi
}

run_flow python env PYTHONPATH="$GENERATED/python" "$VENV/bin/python" "$PY_DIR/flow.py"
run_flow typescript "$NODE_BIN/tsx" "$TS_DIR/flow.ts"

echo "clients: $passed passed, $failed failed"
((failed == 0))
