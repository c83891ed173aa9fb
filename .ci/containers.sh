#!/usr/bin/env bash
# Containers for real: builds the image, runs it locked down, brings the compose stack up
# (single app, then three replicas behind HAProxy), runs the Postman collection against it,
# checks Prometheus scraped it on its metrics port and that /metrics is not served on the
# public port (the app's, then HAProxy's), and runs the README test command through
# testcontainers.
#
# There is no image registry here: the third-party images are offline stand-ins built by
# deploy/offline-images/build.sh under the official names (cached between runs), and builds
# use the classic builder (DOCKER_BUILDKIT=0), since BuildKit would pull its Dockerfile
# frontend for the `# syntax=` line. Everything is installed and started on demand: Debian's
# docker.io (Engine 20.10) and dockerd, Compose v2 (Debian 13's docker-compose package,
# fetched with apt-get download from a source list kept apart from the system's), debootstrap.
#
# Environment:
#   CONTAINERS_HTTP_PORT / CONTAINERS_PROMETHEUS_PORT / CONTAINERS_LB_STATS_PORT
#       host ports of the stacks (default 18080 / 19090 / 18404: clear of a developer's own)
#   CONTAINERS_KEEP_DOCKERD=1   leave a dockerd this script started running afterwards
#
# Usage: bash .ci/containers.sh    (root on Debian 12; prints one line per step and a summary)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DOCKER_BUILDKIT=0
HTTP_PORT="${CONTAINERS_HTTP_PORT:-18080}"
PROM_PORT="${CONTAINERS_PROMETHEUS_PORT:-19090}"
STATS_PORT="${CONTAINERS_LB_STATS_PORT:-18404}"
# TASKAPI_SERVER__METRICS_PORT of docker-compose.yml: /metrics is served there only, to the
# compose network (Prometheus), and never published on the host.
APP_METRICS_PORT=9100
PROJECT="taskapi-ci"
REPLICAS_PROJECT="taskapi-ci-replicas"
RO_NAME="taskapi-ci-readonly"
NEWMAN_HOME="${NEWMAN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/taskapi-newman}"
TRIXIE_APT="/var/cache/taskapi-trixie-apt"
PLUGIN_DIR="/usr/local/lib/docker/cli-plugins"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/taskapi-containers.XXXXXX")"
chmod 0755 "$WORK"
STARTED_DOCKERD=""
CREATED_DOTENV=""
SERVICE_STANDINS=""
RESULTS=()
FIGURES=()
FAILED=0
SCRIPT_START=$SECONDS

log() { printf '[containers] %s\n' "$*" >&2; }

# step NAME CMD...: runs CMD with its output in a log file, shown only on failure.
# CMD runs in a condition, where `set -e` does not apply: step functions check explicitly.
step() {
  local name="$1" start=$SECONDS out
  shift
  out="$WORK/step-${#RESULTS[@]}.log"
  log "$name ..."
  if "$@" >"$out" 2>&1; then
    RESULTS+=("$(printf 'ok    %4d s  %s' $((SECONDS - start)) "$name")")
    log "ok: $name ($((SECONDS - start)) s)"
    return 0
  fi
  FAILED=$((FAILED + 1))
  RESULTS+=("$(printf 'FAIL  %4d s  %s' $((SECONDS - start)) "$name")")
  log "FAILED: $name ($((SECONDS - start)) s); last output:"
  tail -n 60 "$out" | sed 's/^/      /' >&2
  return 1
}

compose() { docker compose -p "$PROJECT" --env-file "$WORK/compose.env" -f docker-compose.yml "$@"; }
compose_replicas() {
  docker compose -p "$REPLICAS_PROJECT" --env-file "$WORK/compose.env" \
    -f docker-compose.yml -f docker-compose.replicas.yml "$@"
}

cleanup() {
  local rc=$?
  set +e
  [[ -n "${SERVICE_STANDINS:-}" ]] && kill "$SERVICE_STANDINS" 2>/dev/null
  if docker info >/dev/null 2>&1; then
    docker rm -f "$RO_NAME" >/dev/null 2>&1
    docker volume rm -f taskapi-ci-logs taskapi-ci-data >/dev/null 2>&1
    [[ -f "$WORK/compose.env" ]] && {
      compose down -v --remove-orphans >/dev/null 2>&1
      compose_replicas down -v --remove-orphans >/dev/null 2>&1
    }
  fi
  [[ -n "$CREATED_DOTENV" ]] && rm -f "$ROOT/.env"
  if [[ -n "$STARTED_DOCKERD" && "${CONTAINERS_KEEP_DOCKERD:-0}" != 1 ]]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
  fi
  printf '\n==== containers: results ====\n'
  printf '%s\n' "${RESULTS[@]}"
  printf '%s\n' "${FIGURES[@]}"
  printf 'containers: %d steps passed, %d failed, %d s in all\n' \
    $((${#RESULTS[@]} - FAILED)) "$FAILED" $((SECONDS - SCRIPT_START))
  rm -rf "$WORK"
  ((FAILED == 0 && rc == 0)) || exit 1
}
trap cleanup EXIT

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# wait_for SECONDS CMD...: retries CMD every second until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}

# --- tools --------------------------------------------------------------------------------
engine() {
  if ! command -v dockerd >/dev/null; then
    apt-get update -qq || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null || return 1
  fi
  command -v debootstrap >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
    || return 1
  if ! docker info >/dev/null 2>&1; then
    setsid dockerd --storage-driver overlay2 >/var/log/taskapi-dockerd.log 2>&1 </dev/null &
    STARTED_DOCKERD=$!
    echo "$STARTED_DOCKERD" >"$WORK/dockerd.pid"
    wait_for 60 docker info >/dev/null 2>&1 || { tail -n 30 /var/log/taskapi-dockerd.log; return 1; }
  fi
  docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
}

compose_v2() {
  if docker compose version >/dev/null 2>&1; then
    docker compose version
    return 0
  fi
  # Debian 12's docker-compose is v1, which rejects the Compose Specification (`name:`).
  # Debian 13's is v2, a static binary: fetched from a trixie source list of its own, so
  # the system's apt sources and state are untouched.
  mkdir -p "$TRIXIE_APT/lists/partial" "$TRIXIE_APT/cache/archives/partial" "$WORK/deb"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n' \
    >"$TRIXIE_APT/sources.list"
  local apt=(-o "Dir::Etc::SourceList=$TRIXIE_APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$TRIXIE_APT/lists" -o "Dir::Cache=$TRIXIE_APT/cache")
  apt-get "${apt[@]}" update -qq || return 1
  chmod 0777 "$WORK/deb" # apt-get download runs as the unprivileged _apt user
  (cd "$WORK/deb" && apt-get "${apt[@]}" download -qq docker-compose) || return 1
  dpkg-deb -x "$WORK"/deb/docker-compose_*.deb "$WORK/deb/x" || return 1
  install -D -m 0755 "$WORK/deb/x/usr/libexec/docker/cli-plugins/docker-compose" "$PLUGIN_DIR/docker-compose" \
    || return 1
  docker compose version
}

newman_install() {
  command -v npm >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  } || return 1
  if [[ ! -x "$NEWMAN_HOME/node_modules/.bin/newman" ]] \
    || ! cmp -s tests/postman/package-lock.json "$NEWMAN_HOME/package-lock.json"; then
    mkdir -p "$NEWMAN_HOME"
    cp tests/postman/package.json tests/postman/package-lock.json "$NEWMAN_HOME/" || return 1
    npm ci --prefix "$NEWMAN_HOME" --no-audit --no-fund --loglevel=error || return 1
  fi
  "$NEWMAN_HOME/node_modules/.bin/newman" --version
}

# --- image --------------------------------------------------------------------------------
build_image() {
  local start=$SECONDS size
  # --force-rm: a failed step must not leave its container behind either.
  docker build --force-rm -t taskapi:local . || return 1
  size="$(docker image inspect -f '{{.Size}}' taskapi:local)"
  FIGURES+=("image taskapi:local: $((size / 1000 / 1000)) MB ($size bytes) on the stand-in distroless base of $(($(docker image inspect -f '{{.Size}}' gcr.io/distroless/cc-debian12:nonroot) / 1000 / 1000)) MB; docker build $((SECONDS - start)) s")
}

health_of() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"; }
is_healthy() { [[ "$(health_of "$1")" == healthy ]]; }

# run_readonly VOLUME-ARGS...: the image as a production runtime would start it.
run_readonly() {
  docker rm -f "$RO_NAME" >/dev/null 2>&1 || true
  docker run -d --name "$RO_NAME" --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e JWT_SECRET_KEY="$(random_hex 32)" "$@" taskapi:local >/dev/null || return 1
  wait_for 60 is_healthy "$RO_NAME" || {
    echo "not healthy: $(health_of "$RO_NAME")"
    docker logs "$RO_NAME" 2>&1 | tail -n 30
    return 1
  }
}

readonly_with_log_volume() {
  docker volume rm -f taskapi-ci-logs taskapi-ci-data >/dev/null 2>&1 || true
  run_readonly -v taskapi-ci-logs:/app/logs -v taskapi-ci-data:/app/data || return 1
  local user uid pid
  user="$(docker inspect -f '{{.Config.User}}' "$RO_NAME")"
  pid="$(docker inspect -f '{{.State.Pid}}' "$RO_NAME")"
  uid="$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")"
  echo "configured user $user, process uid $uid"
  [[ "$user" == 65532:65532 && "$uid" == 65532 ]] || return 1
  # The file log landed in the volume (read with the bookworm base: the image has no shell).
  docker run --rm -v taskapi-ci-logs:/logs:ro taskapi-offline/debian:bookworm \
    sh -c 'ls /logs && grep -h "taskapi listening" /logs/app.log.*' || return 1
  local start_ns end_ns code
  start_ns=$(date +%s%N)
  docker stop -t 10 "$RO_NAME" >/dev/null || return 1
  end_ns=$(date +%s%N)
  code="$(docker inspect -f '{{.State.ExitCode}}' "$RO_NAME")"
  FIGURES+=("read-only container: uid $uid, healthy, stopped in $(((end_ns - start_ns) / 1000000)) ms with exit code $code")
  [[ "$code" == 0 ]]
}

readonly_without_log_volume() {
  run_readonly -v taskapi-ci-data:/app/data || return 1
  # The service warns (one JSON line) and keeps logging to stdout.
  docker logs "$RO_NAME" 2>&1 | grep '"log directory is not writable' || return 1
  docker logs "$RO_NAME" 2>&1 | grep '"taskapi listening' || return 1
  docker rm -f "$RO_NAME" >/dev/null
  docker volume rm -f taskapi-ci-logs taskapi-ci-data >/dev/null
}

# --- compose ------------------------------------------------------------------------------
compose_env() {
  # Secrets as the README asks for them (openssl rand -hex); ports clear of the defaults.
  cat >"$WORK/compose.env" <<EOF
JWT_SECRET_KEY=$(random_hex 32)
POSTGRES_PASSWORD=$(random_hex 24)
GRAFANA_ADMIN_PASSWORD=$(random_hex 16)
TASKAPI_HTTP_PORT=$HTTP_PORT
PROMETHEUS_PORT=$PROM_PORT
TASKAPI_LB_STATS_PORT=$STATS_PORT
EOF
}

# Every image compose names is present (as an official image or a stand-in), but Grafana's
# and Alertmanager's: neither has a stand-in (nor is started here); .ci/alerting.sh proves
# the alerting path with Debian's Alertmanager instead.
compose_images_present() {
  local image missing=0
  for image in $(compose config --images) $(compose_replicas config --images); do
    [[ "$image" == grafana/* || "$image" == prom/alertmanager:* || "$image" == taskapi:local ]] && continue
    docker image inspect "$image" >/dev/null 2>&1 || { echo "missing image $image"; missing=1; }
  done
  return "$missing"
}

compose_up() {
  # Grafana has no Debian package and no image here; every other service starts.
  compose up -d --build --wait --wait-timeout 180 app postgres redis prometheus || return 1
  compose ps --format '{{.Service}} {{.State}} {{.Health}}'
}

newman_against_stack() {
  local report="$WORK/newman.json"
  local rc=0 app_ip
  # /metrics is on the app's metrics port, which compose does not publish: the collection
  # reads it at the container's address on the compose network (reachable from this host).
  app_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "$(compose ps -q app)") || return 1
  "$NEWMAN_HOME/node_modules/.bin/newman" run postman_collection.json \
    --env-var "baseUrl=http://127.0.0.1:$HTTP_PORT" \
    --env-var "metricsUrl=http://$app_ip:$APP_METRICS_PORT" --reporters cli,json \
    --reporter-json-export "$report" --color off --timeout-request 30000 || rc=$?
  FIGURES+=("$(node -e '
const a = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).run.stats.assertions;
console.log(`newman against the compose stack: ${a.total - a.failed} assertions passed, ${a.failed} failed`);
' "$report")")
  return "$rc"
}

# prometheus_scraped_app [N]: Prometheus has N (default 1) taskapi targets, all up, each
# scraped on the app's metrics port over the compose network.
prometheus_scraped_app() {
  local want="${1:-1}" targets="$WORK/targets.json"
  target_up() {
    curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/targets?state=active" -o "$targets" \
      && node -e '
const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).data.activeTargets;
const app = t.filter((x) => x.labels.job === "taskapi");
process.exit(app.length === Number(process.argv[2]) && app.every((x) => x.health === "up") ? 0 : 1);
' "$targets" "$want"
  }
  # Targets come from DNS (refreshed every 15 s), then the first scrape within 15 s more.
  wait_for 90 target_up || { cat "$targets"; return 1; }
  node -e '
const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).data.activeTargets;
for (const x of t) console.log(`${x.labels.job} ${x.scrapeUrl} ${x.health}`);
const app = t.filter((x) => x.labels.job === "taskapi");
const off = app.filter((x) => new URL(x.scrapeUrl).port !== process.argv[2]);
if (off.length) {
  console.log(`not on the metrics port ${process.argv[2]}: ${off.map((x) => x.scrapeUrl).join(", ")}`);
  process.exit(1);
}
' "$targets" "$APP_METRICS_PORT" || return 1
  FIGURES+=("Prometheus: $want taskapi target(s) up, scraped on the metrics port $APP_METRICS_PORT")
  # And the app's own series are queryable.
  curl -fsS "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=taskapi_build_info' \
    | grep -o '"__name__":"taskapi_build_info"[^}]*'
}

# metrics_not_public COMPOSE-FN: /metrics on the public port (the app's in the single stack,
# HAProxy's with the replicas override) is refused with 404/403 while the API behind it
# answers, and no app container publishes the metrics port on the host.
metrics_not_public() {
  local compose_fn="$1" base="http://127.0.0.1:$HTTP_PORT" path code id
  for path in /metrics /metrics/; do
    code="$(curl -s -o "$WORK/metrics-public.txt" -w '%{http_code}' "$base$path")"
    echo "GET $path on the public port $HTTP_PORT: HTTP $code"
    [[ "$code" == 404 || "$code" == 403 ]] || { head -c 400 "$WORK/metrics-public.txt"; echo; return 1; }
    if grep -q taskapi_build_info "$WORK/metrics-public.txt"; then echo "metrics in the body"; return 1; fi
  done
  code="$(curl -s -o /dev/null -w '%{http_code}' "$base/health/live")"
  echo "GET /health/live on the public port: HTTP $code"
  [[ "$code" == 200 ]] || return 1
  for id in $("$compose_fn" ps -q app); do
    echo "published by $id: $(docker port "$id" | tr '\n' ' ')"
    if docker port "$id" | grep -q "^$APP_METRICS_PORT/"; then
      echo "the metrics port $APP_METRICS_PORT is published on the host"
      return 1
    fi
  done
  FIGURES+=("/metrics on the public port $HTTP_PORT ($compose_fn): 404/403; metrics port $APP_METRICS_PORT not published")
}

# --- replicas -----------------------------------------------------------------------------
replicas_up() {
  compose_replicas up -d --build --wait --wait-timeout 240 lb prometheus || return 1
  compose_replicas ps --format '{{.Name}} {{.State}} {{.Health}}'
}

# HAProxy's CSV statistics: "<server>,<status>,<total sessions>" per replica slot in use.
lb_servers() {
  curl -fsS "http://127.0.0.1:$STATS_PORT/stats;csv" \
    | awk -F, '$1 == "taskapi" && $2 != "BACKEND" && $2 != "FRONTEND" && $18 !~ /MAINT/ { print $2 "," $18 "," $8 }'
}

replicas_serve_through_lb() {
  three_up() { [[ "$(lb_servers | awk -F, '$2 == "UP"' | wc -l)" == 3 ]]; }
  wait_for 60 three_up || { lb_servers; return 1; }
  local base="http://127.0.0.1:$HTTP_PORT" email token i code
  before="$(lb_servers)"
  email="replica-$(random_hex 4)@example.com"
  curl -fsS "$base/api/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"name\":\"Replica\",\"email\":\"$email\",\"password\":\"correct horse battery\"}" >/dev/null || return 1
  token="$(curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery\"}" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).access_token))')"
  [[ -n "$token" && "$token" != undefined ]] || { echo "no access token"; return 1; }
  curl -fsS "$base/api/v1/tasks" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"title":"made through the load balancer"}' >/dev/null || return 1
  # The token and the task are good on every replica: each request lands on the next one.
  for i in $(seq 1 12); do
    code="$(curl -s -o "$WORK/list.json" -w '%{http_code}' "$base/api/v1/tasks" -H "authorization: Bearer $token")"
    [[ "$code" == 200 ]] || { echo "request $i: HTTP $code"; cat "$WORK/list.json"; return 1; }
    grep -q 'made through the load balancer' "$WORK/list.json" || { echo "request $i: task missing"; return 1; }
  done
  after="$(lb_servers)"
  echo "before: $before"
  echo "after:  $after"
  # Round robin: every replica took part of the 15 requests.
  local served
  served="$(join -t, <(sort <<<"$before") <(sort <<<"$after") | awk -F, '$5 > $3 { n++ } END { print n + 0 }')"
  FIGURES+=("replicas: 3 UP behind HAProxy; $served of 3 served the 15 requests through the load balancer")
  [[ "$served" == 3 ]]
}

# --- testcontainers -----------------------------------------------------------------------
# The README's test command without TEST_DATABASE_URL and TEST_REDIS_URL, so PostgreSQL and
# Redis come from testcontainers (postgres:17-alpine, redis:7-alpine), with a .env in the checkout as the compose
# instructions leave one: the spawned binaries must not read it (a test used to hang).
testcontainers_path() {
  if [[ ! -e .env ]]; then
    sed -e "s/^JWT_SECRET_KEY=.*/JWT_SECRET_KEY=$(random_hex 32)/" \
      -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$(random_hex 24)/" \
      -e "s/^GRAFANA_ADMIN_PASSWORD=.*/GRAFANA_ADMIN_PASSWORD=$(random_hex 16)/" .env.example >.env
    CREATED_DOTENV=1
  fi
  local rc=0
  # Bounded: a spawned binary that reads .env again would serve forever.
  env -u TEST_DATABASE_URL -u TEST_REDIS_URL timeout 1800 cargo test --workspace >"$WORK/cargo-test.log" 2>&1 || rc=$?
  [[ -n "$CREATED_DOTENV" ]] && { rm -f .env; CREATED_DOTENV=""; }
  grep -E '^test result|FAILED|panicked' "$WORK/cargo-test.log" || true
  ((rc == 0)) || tail -n 80 "$WORK/cargo-test.log"
  FIGURES+=("testcontainers run: $(grep -c '^test result: ok' "$WORK/cargo-test.log") test binaries ok, $(grep -c '^test result: FAILED' "$WORK/cargo-test.log") failed (exit $rc)")
  return "$rc"
}

# Counts only containers this run created: one left over from an earlier run (a daemon that
# died mid-test marks its containers "Exited (255)" on restart) is not this run's leak.
no_container_left() {
  local left
  left="$(comm -13 <(sort <<<"$BASELINE_IDS") <(docker ps -aq --no-trunc | sort) | sed '/^$/d' | wc -l)"
  docker ps -a --format '{{.ID}} {{.Names}} {{.Image}} {{.Status}}'
  FIGURES+=("containers left after the run: $left (not counting $(sed '/^$/d' <<<"$BASELINE_IDS" | wc -l) that existed before it)")
  [[ "$left" == 0 ]]
}

# --- run ----------------------------------------------------------------------------------
step "Docker engine (docker.io, dockerd) and debootstrap" engine || exit 1
step "Compose v2 CLI plugin" compose_v2 || exit 1
BASELINE_IDS="$(docker ps -aq --no-trunc)"
if [[ -n "$BASELINE_IDS" ]]; then
  log "warning: $(wc -l <<<"$BASELINE_IDS") containers existed before this run:"
  docker ps -a --format '{{.ID}} {{.Names}} {{.Image}} {{.Status}}'
fi
step "offline stand-ins for the image build: rust, distroless (deploy/offline-images/build.sh)" \
  bash deploy/offline-images/build.sh rust distroless || exit 1
# The service stand-ins mostly wait on Debian's mirror, the image build on the CPU: side by side.
bash deploy/offline-images/build.sh postgres redis prometheus haproxy >"$WORK/service-standins.log" 2>&1 &
SERVICE_STANDINS=$!
step "docker build -t taskapi:local ." build_image || exit 1
service_standins() {
  local rc=0
  wait "$SERVICE_STANDINS" || rc=$?
  SERVICE_STANDINS=""
  cat "$WORK/service-standins.log"
  return "$rc"
}
step "offline stand-ins for the services: postgres, redis, prometheus, haproxy" service_standins || exit 1
step "run --read-only --cap-drop ALL, writable /app/logs: healthy, uid 65532, clean stop" readonly_with_log_volume || true
step "run --read-only without a writable log dir: stdout-only with a warning" readonly_without_log_volume || true
compose_env
step "every compose image present (official or stand-in; Grafana excepted)" compose_images_present || true
step "newman installed" newman_install || true
if step "docker compose up -d --build --wait (app, postgres, redis, prometheus)" compose_up; then
  step "newman (Postman collection) against the compose stack" newman_against_stack || true
  step "Prometheus targets API: job taskapi up, on the metrics port" prometheus_scraped_app || true
  step "/metrics not served on the app's public port; metrics port not published" metrics_not_public compose || true
fi
step "docker compose down -v" compose down -v --remove-orphans || true
if step "replicas: docker compose -f docker-compose.yml -f docker-compose.replicas.yml up --wait" replicas_up; then
  step "replicas: 3 UP, requests round-robin through HAProxy" replicas_serve_through_lb || true
  step "replicas: Prometheus scrapes each of the 3 replicas on the metrics port" prometheus_scraped_app 3 || true
  step "replicas: /metrics refused through HAProxy; metrics port not published" metrics_not_public compose_replicas || true
fi
step "replicas: docker compose down -v" compose_replicas down -v --remove-orphans || true
step "cargo test --workspace without TEST_DATABASE_URL/TEST_REDIS_URL (testcontainers), .env present" testcontainers_path || true
step "no container left behind" no_container_left || true
