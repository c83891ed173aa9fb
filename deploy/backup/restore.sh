#!/usr/bin/env bash
# Restores a backup made by backup.sh (pg_dump -Fc) into a FRESH database.
#
#   deploy/backup/restore.sh BACKUP.dump postgres://user:pass@host:5432/taskapi_restored
#
# The target database is created (through the server's `postgres` database, so the role
# needs CREATEDB) and must not exist yet: a restore never writes over live data. With
# RESTORE_CREATE=0 the target must already exist and be empty (e.g. a managed database
# created by the platform). The restore runs in one transaction with --exit-on-error: it
# either loads everything or leaves the new database empty, and the script exits non-zero.
# Objects end up owned by the restoring role (--no-owner, --no-acl: the source's roles need
# not exist here). Then point the app's DATABASE_URL at the new database; its schema
# version is whatever the backup had (`taskapi migrate status` shows it, readiness reports
# pending migrations until `taskapi migrate up` has run).
#
# Environment:
#   RESTORE_CREATE=0     do not create the database (it must exist and hold no tables)
#   RESTORE_JOBS=N       pg_restore --jobs N (parallel; turns off --single-transaction)
set -euo pipefail

log() { printf '[restore.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $# -eq 2 ]] || die "usage: restore.sh BACKUP.dump TARGET_DATABASE_URL"
dump="$1"
target="$2"
[[ -f "$dump" && -r "$dump" ]] || die "$dump is not a readable file"
case "$target" in postgres://* | postgresql://*) ;; *) die "the target must be a postgres:// URL" ;; esac
command -v pg_restore >/dev/null || die "pg_restore is required (Debian: postgresql-client)"
command -v psql >/dev/null || die "psql is required (Debian: postgresql-client)"

target="$(printf '%s' "$target" | sed -E 's/([?&])statement-cache-capacity=[0-9]*&?/\1/; s/[?&]$//')"
# Database name = the URL's path; the maintenance URL is the same with /postgres.
rest="${target#*://}"
path_and_query="${rest#*/}"
[[ "$path_and_query" != "$rest" ]] || die "the target URL names no database"
dbname="${path_and_query%%\?*}"
[[ "$dbname" =~ ^[A-Za-z0-9_]+$ ]] || die "target database name '$dbname': letters, digits and _ only"
query=""
[[ "$path_and_query" == *\?* ]] && query="?${path_and_query#*\?}"
admin="${target%%://*}://${rest%%/*}/postgres$query"

pg_restore --list "$dump" >/dev/null || die "$dump is not a pg_dump custom-format archive"

if [[ "${RESTORE_CREATE:-1}" != 0 ]]; then
    exists="$(psql "$admin" -qAtX -v ON_ERROR_STOP=1 -c "SELECT 1 FROM pg_database WHERE datname = '$dbname'")" ||
        die "cannot reach the server's postgres database"
    [[ -z "$exists" ]] || die "database $dbname already exists: restore into a fresh one (or drop it first)"
    psql "$admin" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$dbname\"" >/dev/null || die "could not create $dbname"
    log "created database $dbname"
else
    tables="$(psql "$target" -qAtX -v ON_ERROR_STOP=1 -c \
        "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")" ||
        die "cannot reach $dbname"
    [[ "$tables" == 0 ]] || die "database $dbname already has $tables tables: restore into an empty one"
fi

args=(--no-owner --no-acl --exit-on-error --dbname="$target")
if [[ -n "${RESTORE_JOBS:-}" ]]; then
    args+=(--jobs="$RESTORE_JOBS")
else
    args+=(--single-transaction)
fi
start=$SECONDS
pg_restore "${args[@]}" "$dump" || die "pg_restore failed: $dbname is incomplete, drop it before retrying"
log "restored $dump into $dbname in $((SECONDS - start)) s"
