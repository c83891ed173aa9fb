#!/usr/bin/env python3
"""Seeds a running taskapi through its public API and writes the files the wrk scripts read.

  seed.py --port 18080 --users 64 --tasks-per-user 100 --out DIR

Writes DIR/creds.txt ("email password"), DIR/tasks.txt ("access_token task_id").
"""

import argparse
import concurrent.futures as cf
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpkit import Client  # noqa: E402

PASSWORD = "bench-password-123"


def seed_user(port, index, tasks_per_user, run_tag):
    client = Client(port, timeout=60)
    email = f"bench-{run_tag}-{index}@example.test"
    client.json("POST", "/api/v1/auth/register",
                {"name": f"Bench User {index}", "email": email, "password": PASSWORD}, expect=201)
    _, login = client.json("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}, expect=200)
    token = login["access_token"]
    ids = []
    priorities = ("low", "medium", "high")
    statuses = ("todo", "in_progress", "done")
    for k in range(tasks_per_user):
        body = {
            "title": f"Seed task {k} of user {index}",
            "description": "Seeded for the benchmark. " * 4,
            "priority": priorities[k % 3],
            "status": statuses[(k // 3) % 3],
            "due_date": f"2030-{(k % 12) + 1:02d}-{(k % 28) + 1:02d}T09:00:00Z",
        }
        _, task = client.json("POST", "/api/v1/tasks", body, token=token, expect=201)
        ids.append(task["id"])
    client.close()
    return email, token, ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", type=int, default=64)
    ap.add_argument("--tasks-per-user", type=int, default=100)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run_tag = str(int(time.time()))
    start = time.monotonic()
    with cf.ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(seed_user, args.port, i, args.tasks_per_user, run_tag) for i in range(args.users)]
        results = [f.result() for f in futures]
    with open(os.path.join(args.out, "creds.txt"), "w") as creds, \
            open(os.path.join(args.out, "tasks.txt"), "w") as tasks:
        for email, token, ids in results:
            creds.write(f"{email} {PASSWORD}\n")
            for task_id in ids:
                tasks.write(f"{token} {task_id}\n")
    total = sum(len(r[2]) for r in results)
    print(f"seeded {len(results)} users and {total} tasks in {time.monotonic() - start:.1f}s")


if __name__ == "__main__":
    main()
