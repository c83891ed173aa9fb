#!/usr/bin/env python3
"""Raw Argon2id throughput at the service's parameters (m=19456 KiB, t=2, p=1), one
worker process per core, using argon2-cffi (libargon2 via argon2-cffi-bindings).

  argon2_rate.py --seconds 10 [--procs N]

Prints a JSON line: {"library": ..., "procs": N, "hashes": H, "seconds": S, "hashes_per_sec": R, ...}
"""

import argparse
import json
import multiprocessing as mp
import os
import time

MEMORY_KIB = 19456
ITERATIONS = 2
PARALLELISM = 1


def worker(seconds, start_at, queue):
    from argon2.low_level import Type, hash_secret_raw

    while time.time() < start_at:
        time.sleep(0.001)
    count = 0
    salt = os.urandom(16)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        hash_secret_raw(b"bench-password-123", salt, time_cost=ITERATIONS, memory_cost=MEMORY_KIB,
                        parallelism=PARALLELISM, hash_len=32, type=Type.ID)
        count += 1
    queue.put((count, time.perf_counter() - t0))


def run(procs, seconds):
    queue = mp.Queue()
    start_at = time.time() + 0.5
    workers = [mp.Process(target=worker, args=(seconds, start_at, queue)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    hashes = sum(c for c, _ in results)
    elapsed = max(e for _, e in results)
    return hashes, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    import argon2
    from importlib.metadata import version

    single, single_s = run(1, min(args.seconds, 5.0))
    hashes, elapsed = run(args.procs, args.seconds)
    print(json.dumps({
        "library": f"argon2-cffi {version('argon2-cffi')} (argon2-cffi-bindings {version('argon2-cffi-bindings')}, libargon2)",
        "params": f"argon2id m={MEMORY_KIB} KiB t={ITERATIONS} p={PARALLELISM}",
        "procs": args.procs,
        "hashes": hashes,
        "seconds": round(elapsed, 3),
        "hashes_per_sec": round(hashes / elapsed, 2),
        "single_proc_hashes_per_sec": round(single / single_s, 2),
        "single_hash_ms": round(1000 * single_s / max(single, 1), 2),
        "argon2_module": argon2.__file__,
    }))


if __name__ == "__main__":
    main()
