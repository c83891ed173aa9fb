#!/bin/sh
# Entrypoint of the offline haproxy stand-in, as the official one: options alone mean
# haproxy, which then runs in master-worker mode in the foreground (-W -db).
set -eu
case "${1:-}" in -*) set -- haproxy "$@" ;; esac
if [ "${1:-}" = haproxy ]; then
    shift
    set -- haproxy -W -db "$@"
fi
exec "$@"
