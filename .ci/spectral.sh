#!/usr/bin/env bash
# Lints the OpenAPI document (`taskapi openapi`) with Spectral: the `spectral:oas` ruleset
# and the OWASP API Security Top 10 ruleset, as configured (and, where a rule does not fit,
# switched off or downgraded with its reason) in tests/spectral/.spectral.yaml.
# Fails on any error; warnings are printed and counted.
#
# Environment:
#   TASKAPI_BIN     server binary (default target/debug/taskapi; relative to the repo root)
#   SPECTRAL_HOME   where Spectral is installed (default ${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-spectral)
#
# Prints "spectral: N errors, N warnings, N infos, N hints"; exits non-zero on any error.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PKG_DIR="$ROOT/tests/spectral"
RULESET="$PKG_DIR/.spectral.yaml"
SPECTRAL_HOME="${SPECTRAL_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-spectral}"

resolve_taskapi_bin
[[ -f "$RULESET" ]] || die "$RULESET not found"

make_tmp spectral
trap 'rm -rf "$TMP"' EXIT

# --- tools ------------------------------------------------------------------------------
ensure_node_npm

# Spectral and the OWASP ruleset come from the committed package.json + package-lock.json
# (npm ci), outside the work tree, reinstalled only when the lock file changes.
SPECTRAL="$SPECTRAL_HOME/node_modules/.bin/spectral"
npm_install_cached "$PKG_DIR" "$SPECTRAL_HOME" spectral Spectral
log "using Spectral $("$SPECTRAL" --version)"

# Spectral resolves a ruleset's `extends: "@stoplight/…"` from the ruleset file's own
# folder, so the ruleset is linted from a copy next to the installed node_modules.
cp "$RULESET" "$SPECTRAL_HOME/.spectral.yaml"

# --- lint -------------------------------------------------------------------------------
"$TASKAPI_BIN" openapi >"$TMP/openapi.json"
rc=0
"$SPECTRAL" lint "$TMP/openapi.json" \
    --ruleset "$SPECTRAL_HOME/.spectral.yaml" \
    --fail-severity error \
    --format stylish \
    --format json --output.json "$TMP/report.json" \
    || rc=$?

[[ -f "$TMP/report.json" ]] || die "Spectral wrote no report (exit $rc)"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const n = [0, 0, 0, 0];
for (const d of r) n[d.severity]++;
console.log(`spectral: ${n[0]} errors, ${n[1]} warnings, ${n[2]} infos, ${n[3]} hints`);
process.exit(n[0] ? 1 : 0);
' "$TMP/report.json" || rc=1
exit "$rc"
