#!/usr/bin/env python3
"""Page 500 of a 50,000-task user: offset paging vs keyset cursor, on PostgreSQL.

  cursor_vs_offset.py [--bin target/release/taskapi] [--pg postgres://postgres@127.0.0.1:5432/postgres]
                      [--tasks 50000] [--limit 100] [--page 500] [--reps 200]

Creates a scratch database, starts the binary on it (migrations run at start), registers
one user through the API, seeds the tasks with one SQL statement (the API would take
minutes), then times GET /api/v1/tasks for the same page both ways:
  offset: ?limit=100&offset=49900
  cursor: ?limit=100&cursor=<next_cursor of page 499>, found by walking pages 1..499 first.
Both pages are checked to hold the same ids. Prints median/p90/p99 in ms for each, page 1
for reference, and the PostgreSQL plans of both queries. Needs psql on PATH; stdlib only.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpkit import Client, wait_ready  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "bench-password-123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql):
    out = subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def percentile(samples, p):
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def timed(client, path, token, reps):
    """Milliseconds per request over `reps` sequential requests (after 10 warm-ups)."""
    for _ in range(10):
        client.request("GET", path, token=token)
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        status, _, _ = client.request("GET", path, token=token)
        samples.append((time.perf_counter() - start) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
    return samples


def summary(samples):
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(percentile(samples, 90), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "n": len(samples),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("TASKAPI_BIN", os.path.join(ROOT, "target/release/taskapi")))
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--tasks", type=int, default=50_000)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--page", type=int, default=500)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()

    db_name = f"taskapi_cursor_bench_{os.getpid()}"
    db_url = args.pg.rsplit("/", 1)[0] + "/" + db_name
    psql(args.pg, f'CREATE DATABASE "{db_name}"')
    port = free_port()
    logs = tempfile.mkdtemp(prefix="cursor-bench-")
    env = dict(os.environ,
               DATABASE_URL=db_url,
               JWT_SECRET_KEY="cursor-bench-secret-cursor-bench-secret-0123",
               TASKAPI_SERVER__PORT=str(port),
               TASKAPI_LOG__DIR=logs,
               TASKAPI_LOG__LEVEL="warn",
               TASKAPI_AUTH__ACCESS_TOKEN_TTL_SECS="86400",
               TASKAPI_LIMITS__AUTH_PER_IP_PER_MINUTE="100000000",
               TASKAPI_LIMITS__PER_USER_PER_MINUTE="100000000")
    server = subprocess.Popen([args.bin, "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(logs, "server.err"), "w"))
    try:
        wait_ready(port, timeout=60)
        client = Client(port, timeout=60)
        email = "cursor-bench@example.test"
        _, user = client.json("POST", "/api/v1/auth/register",
                              {"name": "Cursor Bench", "email": email, "password": PASSWORD}, expect=201)
        _, login = client.json("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}, expect=200)
        token = login["access_token"]

        started = time.monotonic()
        # One second apart, newest first as the API would write them; v4 ids (ties never
        # happen here, so the id order does not matter).
        psql(db_url, f"""
            INSERT INTO tasks (id, user_id, title, description, status, priority, due_date, version,
                               created_at, updated_at, title_search, description_search)
            SELECT gen_random_uuid(), '{user["id"]}', 'Seed task ' || n, 'Seeded for the cursor benchmark.',
                   (ARRAY['todo','in_progress','done'])[1 + n % 3], 1 + n % 3,
                   CASE WHEN n % 4 = 0 THEN NULL ELSE timestamptz '2030-01-01' + n * interval '1 hour' END,
                   1, timestamptz '2026-01-01' + n * interval '1 second',
                   timestamptz '2026-01-01' + n * interval '1 second',
                   'seed task ' || n, 'seeded for the cursor benchmark.'
            FROM generate_series(1, {args.tasks}) AS n""")
        psql(db_url, "VACUUM ANALYZE tasks")
        seeded_in = time.monotonic() - started

        limit, page = args.limit, args.page
        offset = (page - 1) * limit
        base = f"/api/v1/tasks?limit={limit}"
        _, first = client.json("GET", base, token=token, expect=200)
        assert first["total"] == args.tasks, first["total"]

        walk_started = time.monotonic()
        body, cursor = first, None
        for _ in range(page - 1):
            cursor = body["next_cursor"]
            _, body = client.json("GET", f"{base}&cursor={urllib.parse.quote(cursor, safe='')}",
                                  token=token, expect=200)
        walk_secs = time.monotonic() - walk_started
        by_cursor = [t["id"] for t in body["items"]]
        _, by_offset = client.json("GET", f"{base}&offset={offset}", token=token, expect=200)
        assert by_cursor == [t["id"] for t in by_offset["items"]], "cursor and offset disagree on page"
        cursor_path = f"{base}&cursor={urllib.parse.quote(cursor, safe='')}"

        results = {
            "tasks": args.tasks,
            "limit": limit,
            "page": page,
            "seed_secs": round(seeded_in, 1),
            "walk_to_page_secs": round(walk_secs, 1),
            "page1": summary(timed(client, base, token, args.reps)),
            "offset": summary(timed(client, f"{base}&offset={offset}", token, args.reps)),
            "cursor": summary(timed(client, cursor_path, token, args.reps)),
        }
        results["speedup_median"] = round(results["offset"]["median_ms"] / results["cursor"]["median_ms"], 1)
        print(json.dumps(results, indent=2))

        # The plans behind the two pages (what list() sends, with the page's values): the
        # keyset page starts after the last task of page 499.
        _, prev = client.json("GET", f"{base}&offset={offset - limit}", token=token, expect=200)
        prev_last = prev["items"][-1]
        print("-- keyset plan (page 500):")
        print(psql(db_url, f"""EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
            SELECT * FROM tasks WHERE user_id = '{user["id"]}'
              AND (created_at, id) < ('{prev_last["created_at"]}', '{prev_last["id"]}')
            ORDER BY created_at DESC, id DESC LIMIT {limit + 1}"""))
        print("-- offset plan (page 500):")
        print(psql(db_url, f"""EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
            SELECT *, COUNT(*) OVER () FROM tasks WHERE user_id = '{user["id"]}'
            ORDER BY created_at DESC, id DESC LIMIT {limit + 1} OFFSET {offset}"""))
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        psql(args.pg, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
