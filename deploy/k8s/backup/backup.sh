#!/usr/bin/env bash
# Backs up taskapi's PostgreSQL database with pg_dump in custom format (-Fc: compressed,
# restorable selectively and in parallel by pg_restore), under a timestamped name, and
# keeps only the newest backups.
#
#   DATABASE_URL=postgres://user:pass@host:5432/taskapi deploy/backup/backup.sh [DIR]
#
# Environment:
#   DATABASE_URL           the database to dump (required; the app's own variable). sqlx-only
#                          query parameters (statement-cache-capacity) are removed for libpq.
#   BACKUP_DIR             where backups go, when DIR is not given (default ./backups)
#   BACKUP_PREFIX          file name prefix (default taskapi)
#   BACKUP_KEEP            how many backups of this prefix to keep, newest first (default 14;
#                          0 keeps all)
#   BACKUP_KEEP_DAYS       also delete backups of this prefix older than this many days
#                          (default unset: count only)
#
# Writes DIR/<prefix>-<UTC yyyymmddTHHMMSSZ>.dump through a temporary file that is renamed
# only after pg_dump succeeded and pg_restore --list can read it back, so a failed or
# interrupted run never leaves a truncated file under a backup's name, and retention never
# deletes a good backup because of a bad one. Prints the path of the new backup on stdout;
# exits non-zero on any error. pg_dump must be the server's major version or newer.
set -euo pipefail

log() { printf '[backup.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set"
case "$DATABASE_URL" in postgres://* | postgresql://*) ;; *) die "DATABASE_URL must be a postgres:// URL" ;; esac
command -v pg_dump >/dev/null || die "pg_dump is required (Debian: postgresql-client)"
command -v pg_restore >/dev/null || die "pg_restore is required (Debian: postgresql-client)"

DIR="${1:-${BACKUP_DIR:-./backups}}"
PREFIX="${BACKUP_PREFIX:-taskapi}"
KEEP="${BACKUP_KEEP:-14}"
KEEP_DAYS="${BACKUP_KEEP_DAYS:-}"
[[ "$KEEP" =~ ^[0-9]+$ ]] || die "BACKUP_KEEP must be a number"
[[ -z "$KEEP_DAYS" || "$KEEP_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_KEEP_DAYS must be a number"
[[ "$PREFIX" =~ ^[A-Za-z0-9._-]+$ ]] || die "BACKUP_PREFIX may hold letters, digits, . _ - only"

# libpq rejects query parameters it does not know; drop sqlx's own.
url="$(printf '%s' "$DATABASE_URL" | sed -E 's/([?&])statement-cache-capacity=[0-9]*&?/\1/; s/[?&]$//')"

mkdir -p "$DIR"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
final="$DIR/$PREFIX-$stamp.dump"
[[ ! -e "$final" ]] || die "$final already exists"
tmp="$DIR/.$PREFIX-$stamp.dump.partial"
trap 'rm -f "$tmp"' EXIT

start=$SECONDS
# --no-owner/--no-acl are restore-time choices (restore.sh); the dump keeps everything.
pg_dump --format=custom --compress=6 --file="$tmp" --dbname="$url" || die "pg_dump failed"
entries="$(pg_restore --list "$tmp" | grep -c '^[0-9]')" || die "pg_restore cannot read the dump back"
((entries > 0)) || die "the dump lists no objects"
mv "$tmp" "$final"
trap - EXIT
log "wrote $final ($(du -h "$final" | cut -f1), $entries entries, $((SECONDS - start)) s)"

# Retention: only files this script names (prefix + timestamp), never anything else in DIR.
mapfile -t backups < <(find "$DIR" -maxdepth 1 -type f -name "$PREFIX-*.dump" \
    | grep -E "/$PREFIX-[0-9]{8}T[0-9]{6}Z\.dump$" | sort -r)
if ((KEEP > 0 && ${#backups[@]} > KEEP)); then
    for old in "${backups[@]:KEEP}"; do
        log "retention: deleting $old (keeping the newest $KEEP)"
        rm -f -- "$old"
    done
fi
if [[ -n "$KEEP_DAYS" ]]; then
    while IFS= read -r old; do
        [[ "$old" == "$final" ]] && continue
        log "retention: deleting $old (older than $KEEP_DAYS days)"
        rm -f -- "$old"
    done < <(find "$DIR" -maxdepth 1 -type f -name "$PREFIX-*.dump" -mtime "+$KEEP_DAYS" \
        | grep -E "/$PREFIX-[0-9]{8}T[0-9]{6}Z\.dump$")
fi
printf '%s\n' "$final"
