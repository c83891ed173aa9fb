#!/usr/bin/env python3
"""Start-up-to-ready time of taskapi on SQLite: time from exec to the first 200 on
/health/ready, polled every millisecond. Runs --runs times on a fresh database file
(migrations included) and --runs times on the already-migrated file.

  startup_probe.py --bin target/release/taskapi --port 18181 --workdir DIR --runs 5

Prints one JSON line with every sample and the medians; also reports VmRSS ~1 s after ready.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import time


def ready_once(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/health/ready")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def one_run(binary, port, env, log_path, measure_rss):
    with open(log_path, "ab") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = t0 + 30
            elapsed = None
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"taskapi exited with {proc.returncode} before ready; see {log_path}")
                if ready_once(port):
                    elapsed = time.perf_counter() - t0
                    break
                time.sleep(0.001)
            if elapsed is None:
                raise RuntimeError("not ready within 30 s")
            rss = None
            if measure_rss:
                time.sleep(1.0)
                rss = rss_kb(proc.pid)
            return elapsed, rss
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    os.makedirs(args.workdir, exist_ok=True)
    db_dir = os.path.join(args.workdir, "sqlite")
    log_path = os.path.join(args.workdir, "startup-server.log")
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.update({
        "DATABASE_URL": f"sqlite://{db_dir}/taskapi.db?mode=rwc",
        "TASKAPI_SERVER__PORT": str(args.port),
        "TASKAPI_LOG__DIR": os.path.join(args.workdir, "startup-logs"),
        "TASKAPI_LOG__LEVEL": "warn",
        "TASKAPI_SERVER__SHUTDOWN_GRACE_SECS": "1",
    })
    env.setdefault("JWT_SECRET_KEY", "startup-probe-secret-0123456789abcdef")
    fresh, warm, rss = [], [], []
    for _ in range(args.runs):
        shutil.rmtree(db_dir, ignore_errors=True)
        elapsed, _ = one_run(binary, args.port, env, log_path, False)
        fresh.append(elapsed * 1000)
    for _ in range(args.runs):
        elapsed, r = one_run(binary, args.port, env, log_path, True)
        warm.append(elapsed * 1000)
        rss.append(r)
    print(json.dumps({
        "fresh_db_ms": [round(x, 1) for x in fresh],
        "fresh_db_median_ms": round(statistics.median(fresh), 1),
        "migrated_db_ms": [round(x, 1) for x in warm],
        "migrated_db_median_ms": round(statistics.median(warm), 1),
        "sqlite_idle_rss_kb": rss,
    }))


if __name__ == "__main__":
    main()
