#!/usr/bin/env bash
# Proves that an alert reaches someone: a real Prometheus evaluates the repository's alert
# rules, sends what fires to a real Alertmanager running the repository's configuration, and
# Alertmanager delivers it, through the repository's routing tree, to a webhook receiver.
#
#   Prometheus     Debian's `prometheus`, with deploy/prometheus/prometheus.yml as it is but
#                  for local ports, 1 s scrape/evaluation intervals and no `taskapi` scrape job
#                  (the service is absent on purpose), evaluating deploy/prometheus/alerts.yml
#                  with every `for:` set to 0s (the expressions, labels and annotations are the
#                  repository's; only the waiting is cut, or TaskapiAbsent would take 5 min).
#   Alertmanager   Debian's `prometheus-alertmanager`, with deploy/alertmanager/alertmanager.yml
#                  as it is (route tree, grouping, group_wait, inhibitions) but each receiver's
#                  integrations replaced by one webhook to http://127.0.0.1:<port>/<receiver>.
#   receiver       .ci/webhook-receiver.py, writing every POST it gets to a file.
#
# Expected: TaskapiAbsent (severity critical; absent(up{job="taskapi"})) fires at Prometheus's
# first evaluation and arrives at the `page` receiver with its labels (alertname, severity,
# job, the config's external labels) and its runbook_url; a warning posted to Alertmanager
# with amtool (TaskapiRedisDown) arrives at `ticket`, not `page`. Alertmanager is installed
# from Debian (its service kept from starting); Prometheus's binary is extracted from its
# Debian package, as .ci/validate-deploy.sh does for promtool.
#
# Usage: bash .ci/alerting.sh   (root on Debian 12; about 40 s, mostly Alertmanager's
# group_wait of 30 s; exits non-zero when the alert does not arrive)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TOOLS="${TASKAPI_TOOLS_DIR:-/tmp/taskapi-deploy-tools}"
BIN="$TOOLS/bin"
LOG="$TOOLS/install.log"
DEADLINE_SECS=90
START=$SECONDS
mkdir -p "$BIN"
TMP="$(mktemp -d)"
chmod 0755 "$TMP" # apt-get download runs as the unprivileged _apt user
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

say() { printf 'alerting: %s\n' "$*"; }
fail() {
  say "FAIL: $*" >&2
  local f
  for f in alertmanager.log prometheus.log receiver.log received.jsonl; do
    [[ -s "$TMP/$f" ]] && { echo "--- $f (last 30 lines)" >&2; tail -n 30 "$TMP/$f" >&2; }
  done
  say "0 passed, 1 failed"
  exit 1
}

# --- tools ------------------------------------------------------------------------------
# Alertmanager: Debian's package, installed (its binary reads the notification templates from
# /usr/share/prometheus/alertmanager). POLICYRCD keeps the package's service from starting:
# this script runs its own instance and nothing else may be left listening.
ensure_alertmanager() {
  command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null && return 0
  say "installing Debian's prometheus-alertmanager"
  printf '#!/bin/sh\nexit 101\n' >"$TMP/policy-rc.d"
  chmod 0755 "$TMP/policy-rc.d"
  local install=(env POLICYRCD="$TMP/policy-rc.d" DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends prometheus-alertmanager)
  if ! "${install[@]}" >>"$LOG" 2>&1; then
    apt-get update -qq >>"$LOG" 2>&1 || return 1
    "${install[@]}" >>"$LOG" 2>&1 || return 1
  fi
}
# Prometheus: the server binary of Debian's `prometheus` package, extracted only (installing
# it would pull the web console's JavaScript packages and start a service).
ensure_prometheus() {
  if [[ -x "$BIN/prometheus" ]] && "$BIN/prometheus" --version >/dev/null 2>&1; then
    return 0
  fi
  say "extracting prometheus from Debian's prometheus package"
  extract_debian_binary prometheus usr/bin/prometheus "$BIN" "$TMP" "$LOG"
}
(
  flock 9
  ensure_alertmanager
  ensure_prometheus
) 9>"$TOOLS/.lock" || fail "could not install Alertmanager or Prometheus (see $LOG)"
ALERTMANAGER="$(command -v prometheus-alertmanager)"
AMTOOL="$(command -v amtool)"

PY=python3
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  if [[ -x "$TOOLS/venv/bin/python" ]] && "$TOOLS/venv/bin/python" -c 'import yaml' 2>/dev/null; then
    PY="$TOOLS/venv/bin/python"
  else
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml; } >>"$LOG" 2>&1 \
      || fail "python3-yaml is missing and could not be installed"
  fi
fi

# wait_for SECONDS CMD...: retries CMD every 0.2 s.
wait_for() {
  local tries=$(($1 * 5))
  shift
  while ((tries-- > 0)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# --- the webhook receiver -----------------------------------------------------------------
python3 "$ROOT/.ci/webhook-receiver.py" "$TMP/receiver.port" "$TMP/received.jsonl" >"$TMP/receiver.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$TMP/receiver.port" || fail "the webhook receiver did not start"
RECEIVER_PORT="$(cat "$TMP/receiver.port")"
AM_PORT="$(free_port)"
PROM_PORT="$(free_port)"

# --- configuration: the repository's, pointed at this machine -----------------------------
"$PY" - "$ROOT" "$TMP" "$RECEIVER_PORT" "$AM_PORT" "$PROM_PORT" <<'PY' || fail "could not derive the CI configuration"
import re, sys, yaml
root, tmp, receiver_port, am_port, prom_port = sys.argv[1:]

am = yaml.safe_load(open(f"{root}/deploy/alertmanager/alertmanager.yml"))
for r in am["receivers"]:
    for key in [k for k in r if k.endswith("_configs")]:
        del r[key]  # no real integration is contacted from CI
    r["webhook_configs"] = [{"url": f"http://127.0.0.1:{receiver_port}/{r['name']}", "send_resolved": True}]
yaml.safe_dump(am, open(f"{tmp}/alertmanager.yml", "w"), sort_keys=False)

rules = open(f"{root}/deploy/prometheus/alerts.yml").read()
rules, n = re.subn(r"(?m)^(\s+)for: \S+$", r"\1for: 0s", rules)
assert n > 0, "no `for:` in alerts.yml?"
open(f"{tmp}/alerts.yml", "w").write(rules)

prom = yaml.safe_load(open(f"{root}/deploy/prometheus/prometheus.yml"))
managers = prom.get("alerting", {}).get("alertmanagers", [])
assert managers and managers[0].get("static_configs"), "prometheus.yml has no alerting: block"
prom["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
prom["global"]["scrape_interval"] = "1s"
prom["global"]["evaluation_interval"] = "1s"
prom["rule_files"] = [f"{tmp}/alerts.yml"]
# No taskapi job: the service is absent, which is what TaskapiAbsent is for.
prom["scrape_configs"] = [{"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{prom_port}"]}]}]
yaml.safe_dump(prom, open(f"{tmp}/prometheus.yml", "w"), sort_keys=False)
yaml.safe_dump(prom["global"].get("external_labels", {}), open(f"{tmp}/external_labels.yml", "w"))
PY

# --- Alertmanager and Prometheus ----------------------------------------------------------
"$ALERTMANAGER" --config.file="$TMP/alertmanager.yml" --storage.path="$TMP/am-data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$TMP/alertmanager.log" 2>&1 &
PIDS+=($!)
wait_for 20 curl -fsS "http://127.0.0.1:$AM_PORT/-/ready" || fail "Alertmanager did not become ready"

# The first evaluation can fire before the notifier has discovered the Alertmanager (its
# discovery settles after a few seconds), and what is sent to nobody waits for the resend
# delay (1 min by default): resend every 2 s instead.
"$BIN/prometheus" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --rules.alert.resend-delay=2s >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
wait_for 30 curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" || fail "Prometheus did not become ready"

# A warning straight into Alertmanager: the other branch of the route tree.
"$AMTOOL" --alertmanager.url="http://127.0.0.1:$AM_PORT" alert add \
  alertname=TaskapiRedisDown severity=warning job=taskapi instance=ci:9100 \
  --annotation=summary="posted by .ci/alerting.sh" >/dev/null || fail "amtool alert add failed"

say "Alertmanager $("$ALERTMANAGER" --version 2>&1 | awk 'NR==1{print $3}'), Prometheus $("$BIN/prometheus" --version 2>&1 | awk 'NR==1{print $3}'); waiting for the receiver (group_wait 30 s)"

# --- what arrived -------------------------------------------------------------------------
check_received() {
  "$PY" - "$ROOT" "$TMP" <<'PY'
import json, os, sys, yaml
root, tmp = sys.argv[1:]
external = yaml.safe_load(open(f"{tmp}/external_labels.yml")) or {}
try:
    posts = [json.loads(l) for l in open(f"{tmp}/received.jsonl")]
except FileNotFoundError:
    posts = []
def alerts(path, name):
    return [(p["body"], a) for p in posts if p["path"] == f"/{path}" for a in p["body"].get("alerts", [])
            if a.get("labels", {}).get("alertname") == name]
problems = []
if alerts("ticket", "TaskapiAbsent") or alerts("page", "TaskapiRedisDown"):
    print("an alert reached the wrong receiver: " + "; ".join(f"{p['path']}: {p['body'].get('groupLabels')}" for p in posts))
    sys.exit(1)
page = alerts("page", "TaskapiAbsent")
ticket = alerts("ticket", "TaskapiRedisDown")
if not page:
    problems.append("no TaskapiAbsent at the page receiver yet")
if not ticket:
    problems.append("no TaskapiRedisDown at the ticket receiver yet")
if problems:
    print("; ".join(problems))
    sys.exit(2)  # not (yet) arrived
body, alert = page[0]
want = {"alertname": "TaskapiAbsent", "severity": "critical", "job": "taskapi", **external}
labels = alert["labels"]
for k, v in want.items():
    if labels.get(k) != v:
        problems.append(f"TaskapiAbsent label {k}={labels.get(k)!r}, want {v!r}")
if body.get("receiver") != "page" or body.get("version") != "4" or alert.get("status") != "firing":
    problems.append(f"page notification: receiver={body.get('receiver')} version={body.get('version')} status={alert.get('status')}")
url = alert.get("annotations", {}).get("runbook_url", "")
rel = url.split("/blob/main/", 1)[-1]
if not url.endswith("deploy/runbooks/TaskapiAbsent.md") or not os.path.isfile(os.path.join(root, rel)):
    problems.append(f"runbook_url {url!r} does not point at an existing deploy/runbooks/TaskapiAbsent.md")
if not alert.get("generatorURL", "").startswith("http://"):
    problems.append("the alert did not come from Prometheus (no generatorURL)")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"TaskapiAbsent from Prometheus reached `page` with {', '.join(f'{k}={v}' for k, v in sorted(want.items()))} "
      f"and its runbook_url; TaskapiRedisDown (warning) reached `ticket`")
PY
}

while :; do
  set +e
  result="$(check_received)"
  rc=$?
  set -e
  ((rc == 0)) && break
  ((rc == 2)) || fail "$result"
  ((SECONDS - START < DEADLINE_SECS)) || fail "after ${DEADLINE_SECS} s: $result"
  sleep 1
done
say "$result ($((SECONDS - START)) s)"
say "1 passed, 0 failed"
