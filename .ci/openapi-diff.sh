#!/usr/bin/env bash
# Breaking-change check of the OpenAPI document (issue #28, versioning): runs the self-test of
# tests/openapi/breaking.py, then compares `taskapi openapi` with the last released document,
# tests/openapi/released.json (refreshed at each release). Fails on any breaking change that
# is not listed in tests/openapi/accepted-breaking.txt; compatible changes are printed as info.
#
# Environment:
#   TASKAPI_BIN        server binary (default target/debug/taskapi; relative to the repo root)
#   OPENAPI_BASELINE   the released document (default tests/openapi/released.json)
#
# Prints "openapi diff: N unaccepted breaking, N accepted breaking, N compatible changes".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

CHECK="$ROOT/tests/openapi/breaking.py"
BASELINE="${OPENAPI_BASELINE:-$ROOT/tests/openapi/released.json}"

command -v python3 >/dev/null 2>&1 || install_debian_package python3
resolve_taskapi_bin
[[ -f "$BASELINE" ]] || die "$BASELINE not found (write it with: taskapi openapi > $BASELINE)"

make_tmp openapi-diff
trap 'rm -rf "$TMP"' EXIT

log "self-test of $(basename "$CHECK")"
python3 "$CHECK" --self-test || die "breaking.py self-test failed"

"$TASKAPI_BIN" openapi >"$TMP/openapi.json"
log "comparing $("$TASKAPI_BIN" --version 2>/dev/null || echo taskapi)'s document with ${BASELINE#"$ROOT"/}"
python3 "$CHECK" "$BASELINE" "$TMP/openapi.json" || die "breaking changes against ${BASELINE#"$ROOT"/}: mark intended ones in tests/openapi/accepted-breaking.txt"
