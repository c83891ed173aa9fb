#!/bin/bash
# RSS growth from password hashing: start taskapi on SQLite, 40 registrations + 40 logins,
# print VmRSS before, right after and 12 s after. Usage: TASKAPI_BIN=... extra/rss_hashes.sh LABEL [ENV=VAL...]
# e.g. extra/rss_hashes.sh glibc-mmap MALLOC_MMAP_THRESHOLD_=1048576
label=$1; shift
rm -rf /tmp/taskapi-rss-rssdb; mkdir -p /tmp/taskapi-rss-rssdb
env "$@" DATABASE_URL="sqlite:///tmp/taskapi-rss-rssdb/t.db?mode=rwc" JWT_SECRET_KEY=0123456789abcdef0123456789abcdef0123 TASKAPI_SERVER__PORT=18300 TASKAPI_LOG__DIR=/tmp/taskapi-rss-rsslogs TASKAPI_LOG__LEVEL=warn TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE=100000000 ${TASKAPI_BIN:-$(dirname "$0")/../../../target/release/taskapi} serve > /tmp/taskapi-rss-rss-$label.out 2>&1 &
pid=$!
$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python -c "import sys; sys.path.insert(0,'$(cd "$(dirname "$0")/.." && pwd)'); import httpkit; httpkit.wait_ready(18300,30)"
sleep 1; a=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python $(cd "$(dirname "$0")/.." && pwd)/seed.py --port 18300 --users 40 --tasks-per-user 0 --out /tmp/taskapi-rss-rssseed >/dev/null
b=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
sleep 12; c=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
echo "$label idle=${a}kB after80hashes=${b}kB after12s=${c}kB threads=$(ls /proc/$pid/task | wc -l)"
kill $pid; wait $pid
