#!/bin/sh
# Entrypoint of the offline redis stand-in (the parts of the official one compose relies on).
set -eu
case "${1:-}" in -* | *.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
    case "${2:-}" in
        *.conf) ;;
        # The official image is built with protected mode off by default; Debian's is not.
        *) shift; set -- redis-server --bind '* -::*' --protected-mode no "$@" ;;
    esac
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid=redis --regid=redis --init-groups "$@"
    fi
fi
exec "$@"
