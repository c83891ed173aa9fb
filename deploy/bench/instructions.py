#!/usr/bin/env python3
"""Drives a taskapi running under `valgrind --tool=callgrind` (started by instructions.sh):
seeds users and tasks, then for each request kind sends a warm-up, zeroes callgrind's
counters, sends exactly N requests on one keep-alive connection and dumps the counters.

  instructions.py --port P --pid PID --out DIR [--requests 2000] [--warmup 100]

Writes DIR/phases.json: [{"phase": "get", "requests": N, "dump": "<callgrind file>"}, ...].
Every response must have the expected status, or the run fails (a count over errors
would measure the wrong thing).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpkit import Client  # noqa: E402

PASSWORD = "bench-password-123"
PATCH_BODIES = [
    {"status": "in_progress"},
    {"priority": "high", "status": "done"},
    {"title": "patched by the instruction count", "priority": "low"},
    {"status": "todo", "description": None},
]
PRIORITIES = ("low", "medium", "high")


def dumps(out):
    return set(glob.glob(os.path.join(out, "callgrind.out.*")))


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measured(pid, out, name, count, send):
    """Zero, send `count` requests, dump; returns the phase record."""
    control(pid, "-z")
    before = dumps(out)
    start = time.monotonic()
    for i in range(count):
        send(i)
    elapsed = time.monotonic() - start
    control(pid, "-d", name)
    for _ in range(100):
        new = dumps(out) - before
        if new:
            break
        time.sleep(0.1)
    if len(new) != 1:
        raise RuntimeError(f"phase {name}: expected one new dump, found {sorted(new)}")
    return {"phase": name, "requests": count, "dump": new.pop(), "seconds": round(elapsed, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--tasks-per-user", type=int, default=50)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args()

    client = Client(args.port, timeout=120)
    tag = str(int(time.time()))
    users = []  # (token, [task ids])
    for u in range(args.users):
        email = f"instr-{tag}-{u}@example.test"
        client.json("POST", "/api/v1/auth/register",
                    {"name": f"Instr {u}", "email": email, "password": PASSWORD}, expect=201)
        _, login = client.json("POST", "/api/v1/auth/login",
                               {"email": email, "password": PASSWORD}, expect=200)
        token = login["access_token"]
        ids = []
        for k in range(args.tasks_per_user):
            _, task = client.json("POST", "/api/v1/tasks", {
                "title": f"Seed task {k} of user {u}",
                "description": "Seeded for the instruction count. " * 3,
                "priority": PRIORITIES[k % 3],
                "due_date": f"2030-{(k % 12) + 1:02d}-{(k % 28) + 1:02d}T09:00:00Z",
            }, token=token, expect=201)
            ids.append(task["id"])
        users.append((token, ids))
    pairs = [(token, tid) for token, ids in users for tid in ids]

    def expect(status, want, what):
        if status != want:
            raise RuntimeError(f"{what}: expected {want}, got {status}")

    def get_one(i):
        token, tid = pairs[i % len(pairs)]
        status, _, _ = client.request("GET", f"/api/v1/tasks/{tid}", token=token)
        expect(status, 200, "GET /tasks/{id}")

    def list_page(i):
        token, _ = users[i % len(users)]
        status, _, _ = client.request("GET", "/api/v1/tasks?limit=20", token=token)
        expect(status, 200, "GET /tasks?limit=20")

    def create(i):
        token, _ = users[i % len(users)]
        status, _, _ = client.request("POST", "/api/v1/tasks", body={
            "title": f"instruction count task {i}",
            "description": "created by instructions.py",
            "priority": PRIORITIES[i % 3],
            "due_date": f"2030-01-{(i % 28) + 1:02d}T12:00:00Z",
        }, token=token)
        expect(status, 201, "POST /tasks")

    def patch(i):
        token, tid = pairs[i % len(pairs)]
        status, _, _ = client.request("PATCH", f"/api/v1/tasks/{tid}",
                                      body=PATCH_BODIES[i % len(PATCH_BODIES)], token=token)
        expect(status, 200, "PATCH /tasks/{id}")

    def live(_):
        status, _, _ = client.request("GET", "/health/live")
        expect(status, 200, "GET /health/live")

    phases = []
    # Idle first: what the process burns with no requests (timers, cache housekeeping).
    control(args.pid, "-z")
    before = dumps(args.out)
    time.sleep(args.idle_seconds)
    control(args.pid, "-d", "idle")
    time.sleep(0.5)
    new = dumps(args.out) - before
    phases.append({"phase": "idle", "requests": 0, "dump": new.pop() if new else None,
                   "seconds": args.idle_seconds})
    for name, send in (("get", get_one), ("list", list_page), ("create", create),
                       ("patch", patch), ("live", live)):
        for i in range(args.warmup):
            send(i)
        phases.append(measured(args.pid, args.out, name, args.requests, send))
        print(f"{name}: {args.requests} requests in {phases[-1]['seconds']} s", file=sys.stderr)
    client.close()
    with open(os.path.join(args.out, "phases.json"), "w") as fh:
        json.dump(phases, fh, indent=1)


if __name__ == "__main__":
    main()
