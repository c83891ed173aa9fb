#!/usr/bin/env bash
# Backup/restore round trip (issue #27, "Backups you have restored"):
#
#   1. a scratch PostgreSQL database; `taskapi serve` on it (migrations on start-up)
#   2. populated through the API: two users registered, tasks created and edited, both
#      logged in (refresh tokens), a refresh token rotated; what the API shows is recorded
#   3. server stopped; deploy/backup/backup.sh (pg_dump -Fc) takes a backup
#   4. deploy/backup/restore.sh loads it into a second, fresh database
#   5. every table's row count and content checksum (md5 over all rows, ordered) is the
#      same in both databases, and the users, tasks and refresh tokens are all there
#   6. `taskapi serve` on the restored database: both users log in with their passwords,
#      list their tasks (identical to before, ids, versions and all), and a refresh token
#      issued before the backup still refreshes
#
# Environment: TASKAPI_BIN (default target/debug/taskapi), BACKUP_TEST_ADMIN_URL (a
# postgres:// URL of a role with CREATEDB; default postgres://postgres@127.0.0.1:5432/postgres),
# BACKUP_TEST_KEEP_TMP=1 keeps the temporary directory. Both scratch databases are dropped
# on exit. Prints "backup-restore: N passed, N failed" and exits non-zero on any failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ADMIN_URL="${BACKUP_TEST_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

resolve_taskapi_bin
for t in curl jq psql pg_dump pg_restore python3; do
    command -v "$t" >/dev/null || die "$t is required"
done

make_tmp backup
suffix="$(date +%s)_$$"
SRC_DB="taskapi_backup_src_$suffix"
DST_DB="taskapi_backup_restored_$suffix"
SRC_URL="$(with_database "$ADMIN_URL" "$SRC_DB")"
DST_URL="$(with_database "$ADMIN_URL" "$DST_DB")"
CREATED_SRC=0

cleanup_hook() {
    if ((CREATED_SRC)); then
        psql "$ADMIN_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$SRC_DB\"" >/dev/null 2>&1 || log "could not drop $SRC_DB"
    fi
    # restore.sh creates DST_DB; drop it whatever happened (IF EXISTS).
    psql "$ADMIN_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$DST_DB\"" >/dev/null 2>&1 || log "could not drop $DST_DB"
}
cleanup_on_exit "${BACKUP_TEST_KEEP_TMP:-0}"

PASSED=0
FAILED=0
check() { # check DESCRIPTION CONDITION-EXIT-CODE
    if [[ "$2" == 0 ]]; then PASSED=$((PASSED + 1)); log "ok: $1"; else FAILED=$((FAILED + 1)); log "FAIL: $1"; fi
}

BASE=""
start_server() { # start_server LABEL DATABASE_URL; the same JWT secret for both servers
    local label="$1" url="$2"
    start_taskapi "$label" "$url"
    BASE="$BASE_URL"
    wait_ready "$label" || die "[$label] server not ready"
    log "[$label] server ready on $BASE ($url)"
}

# api METHOD PATH [BODY] [TOKEN] -> body on stdout; fails unless 2xx
api() {
    local method="$1" path="$2" body="${3:-}" token="${4:-}" out code
    local args=(-sS -X "$method" -o "$TMP/resp" -w '%{http_code}' -H 'Accept: application/json')
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
    code="$(curl "${args[@]}" "$BASE/api/v1$path")"
    if [[ "$code" != 2* ]]; then
        log "$method $path -> $code: $(head -c 400 "$TMP/resp")"
        return 1
    fi
    cat "$TMP/resp"
}

# The tasks a user sees through the API, in a stable order and form.
list_tasks() { # list_tasks TOKEN
    api GET "/tasks?limit=100&sort=created_at" "" "$1" | jq -S '{total, items: [.items[] | {id, title, description, status, priority, due_date, version, created_at, updated_at}]}'
}

# Row count and content checksum of every table (the schema's migration table included).
table_digest() { # table_digest DATABASE_URL
    local tables t
    tables="$(psql "$1" -qAtX -v ON_ERROR_STOP=1 -c \
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")"
    for t in $tables; do
        psql "$1" -qAtX -v ON_ERROR_STOP=1 -c \
            "SELECT '$t', count(*), md5(coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '')) FROM \"$t\" r"
    done
}

SERVER_JWT_SECRET="$(random_hex)"
PW1="Backup-Restore-Pw-1-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
PW2="Backup-Restore-Pw-2-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
E1="ada.$suffix@example.com"
E2="bob.$suffix@example.com"

# --- 1. scratch database and server ----------------------------------------------------------
psql "$ADMIN_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$SRC_DB\"" >/dev/null || die "cannot create $SRC_DB"
CREATED_SRC=1
start_server source "$SRC_URL"

# --- 2. populate through the API ---------------------------------------------------------------
api POST /auth/register "$(jq -nc --arg e "$E1" --arg p "$PW1" '{name: "Ada Admin", email: $e, password: $p}')" >/dev/null
api POST /auth/register "$(jq -nc --arg e "$E2" --arg p "$PW2" '{name: "Bob Builder", email: $e, password: $p}')" >/dev/null
login() { api POST /auth/login "$(jq -nc --arg e "$1" --arg p "$2" '{email: $e, password: $p}')"; }
L1="$(login "$E1" "$PW1")"
L2="$(login "$E2" "$PW2")"
T1="$(jq -r .access_token <<<"$L1")"
T2="$(jq -r .access_token <<<"$L2")"
# A second session for Bob whose refresh token is rotated once (a spent row + a live one).
L2b="$(login "$E2" "$PW2")"
api POST /auth/refresh "$(jq -nc --arg t "$(jq -r .refresh_token <<<"$L2b")" '{refresh_token: $t}')" >/dev/null
KEEP_REFRESH="$(jq -r .refresh_token <<<"$L1")" # used on the restored server

for i in 1 2 3 4 5; do
    api POST /tasks "$(jq -nc --arg i "$i" '{title: ("Ada task " + $i), description: ("ünïcode – line 1\nline 2 #" + $i),
        status: "todo", priority: (if ($i | tonumber) % 2 == 0 then "high" else "low" end),
        due_date: ("2027-0" + $i + "-15T09:30:00.123456Z")}')" "$T1" >/dev/null
done
for i in 1 2 3; do
    api POST /tasks "$(jq -nc --arg i "$i" '{title: ("Bob task " + $i), status: "in_progress", priority: "medium"}')" "$T2" >/dev/null
done
first="$(api GET "/tasks?limit=1&sort=created_at" "" "$T1" | jq -r '.items[0].id')"
api PATCH "/tasks/$first" '{"status": "done"}' "$T1" >/dev/null
bob_last="$(api GET "/tasks?limit=1&sort=-created_at" "" "$T2" | jq -r '.items[0].id')"
api DELETE "/tasks/$bob_last" "" "$T2" >/dev/null || true
list_tasks "$T1" >"$TMP/ada.before.json"
list_tasks "$T2" >"$TMP/bob.before.json"
log "populated: ada $(jq .total "$TMP/ada.before.json") tasks, bob $(jq .total "$TMP/bob.before.json") tasks"
stop_taskapi

# --- 3./4. backup, restore into a fresh database --------------------------------------------------
t0=$SECONDS
dump="$(DATABASE_URL="$SRC_URL" BACKUP_KEEP=3 bash deploy/backup/backup.sh "$TMP/backups")"
check "backup.sh wrote a custom-format dump ($(basename "$dump"))" "$([[ -s "$dump" ]] && pg_restore --list "$dump" >/dev/null; echo $?)"
bash deploy/backup/restore.sh "$dump" "$DST_URL"
check "restore.sh loaded it into fresh database $DST_DB" $?
# restore.sh refuses to write over an existing database.
set +e
bash deploy/backup/restore.sh "$dump" "$DST_URL" 2>"$TMP/refused.err"
rc=$?
set -e
check "restore.sh refuses an existing database (exit $rc)" "$([[ $rc != 0 ]] && grep -q 'already exists' "$TMP/refused.err"; echo $?)"
log "backup + restore took $((SECONDS - t0)) s"

# --- 5. the same rows in both databases --------------------------------------------------------
table_digest "$SRC_URL" >"$TMP/digest.src"
table_digest "$DST_URL" >"$TMP/digest.dst"
cat "$TMP/digest.src" >&2
check "every table: same row count and md5 of all rows ($(wc -l <"$TMP/digest.src") tables)" \
    "$(diff -u "$TMP/digest.src" "$TMP/digest.dst" >&2; echo $?)"
count() { psql "$1" -qAtX -c "SELECT count(*) FROM $2"; }
check "users: 2 in the backup source, $(count "$DST_URL" users) restored" "$([[ $(count "$SRC_URL" users) == 2 && $(count "$DST_URL" users) == 2 ]]; echo $?)"
check "tasks: 7 live, $(count "$DST_URL" tasks) restored" "$([[ $(count "$SRC_URL" tasks) == 7 && $(count "$DST_URL" tasks) == 7 ]]; echo $?)"
check "refresh tokens: 4+ (3 logins, 1 rotation), $(count "$DST_URL" refresh_tokens) restored" \
    "$([[ $(count "$DST_URL" refresh_tokens) -ge 4 && $(count "$SRC_URL" refresh_tokens) == $(count "$DST_URL" refresh_tokens) ]]; echo $?)"
migrations() { psql "$1" -qAtX -v ON_ERROR_STOP=1 -c "SELECT string_agg(version, ',' ORDER BY version) FROM seaql_migrations"; }
m_src="$(migrations "$SRC_URL")"
check "schema: the same $(tr ',' '\n' <<<"$m_src" | wc -l) migrations recorded" \
    "$([[ -n "$m_src" && "$m_src" == "$(migrations "$DST_URL")" ]]; echo $?)"

# --- 6. the service on the restored database ---------------------------------------------------
start_server restored "$DST_URL"
R1="$(login "$E1" "$PW1")" && R2="$(login "$E2" "$PW2")"
check "both users log in with their passwords on the restored server" $?
list_tasks "$(jq -r .access_token <<<"$R1")" >"$TMP/ada.after.json"
list_tasks "$(jq -r .access_token <<<"$R2")" >"$TMP/bob.after.json"
check "ada's task list identical after restore ($(jq .total "$TMP/ada.after.json") tasks)" "$(diff -u "$TMP/ada.before.json" "$TMP/ada.after.json" >&2; echo $?)"
check "bob's task list identical after restore ($(jq .total "$TMP/bob.after.json") tasks)" "$(diff -u "$TMP/bob.before.json" "$TMP/bob.after.json" >&2; echo $?)"
refreshed="$(api POST /auth/refresh "$(jq -nc --arg t "$KEEP_REFRESH" '{refresh_token: $t}')" | jq -r '.access_token // empty')" || refreshed=""
check "a refresh token issued before the backup refreshes on the restored server" "$([[ -n "$refreshed" ]]; echo $?)"
stop_taskapi

printf 'backup-restore: %d passed, %d failed\n' "$PASSED" "$FAILED"
((FAILED == 0))
