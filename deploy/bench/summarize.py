#!/usr/bin/env python3
"""Turns the raw files that run.sh leaves in a results directory into a markdown summary.

  summarize.py RESULTS_DIR
"""

import json
import os
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(path):
    if not os.path.exists(path):
        return None
    text = open(path).read()
    out = {"rps": None, "p50": None, "p99": None, "requests": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        if m:
            out[key] = to_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = sum(int(x) for x in m.groups())
    return out


def parse_pgbench(path):
    if not os.path.exists(path):
        return None
    text = open(path).read()
    out = {"tps": None, "lat_avg": None}
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    if m:
        out["tps"] = float(m.group(1))
    m = re.search(r"latency average = ([\d.]+) ms", text)
    if m:
        out["lat_avg"] = float(m.group(1))
    return out


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        lines = [line for line in fh.read().splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1]) if lines else None


def read_int(path):
    try:
        return int(open(path).read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def mb(kb):
    return None if kb is None else kb / 1024.0


def xact_ratio(d, key, w):
    x = read_int(os.path.join(d, f"xacts-{key}.txt"))
    if x is None or not w.get("requests"):
        return "n/a"
    return f"{x / w['requests']:.2f}"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "PASS" if ok else "FAIL"


def main():
    d = sys.argv[1]
    scenarios = [
        ("get", "GET /api/v1/tasks/{id}"),
        ("probe", "(probe) GET /api/v1/tasks/{id} on the stack-ceiling probe"),
        ("list", "GET /api/v1/tasks?limit=20"),
        ("create", "POST /api/v1/tasks"),
        ("patch", "PATCH /api/v1/tasks/{id}"),
        ("login", "POST /api/v1/auth/login"),
        ("login-mixed", "POST /api/v1/auth/login (with 4-conn read load)"),
        ("read-under-login", "GET /api/v1/tasks/{id} at 4 conns during login load"),
        ("live", "(info) GET /health/live: HTTP stack only, no DB, no auth"),
    ]
    wrk = {key: parse_wrk(os.path.join(d, f"wrk-{key}.txt")) for key, _ in scenarios}
    peak = {key: read_int(os.path.join(d, f"rss-{key}.peak")) for key, _ in scenarios}
    pg_select = parse_pgbench(os.path.join(d, "pgbench-select.txt"))
    pg_insert = parse_pgbench(os.path.join(d, "pgbench-insert.txt"))
    argon = read_json(os.path.join(d, "argon2.json"))
    startup = read_json(os.path.join(d, "startup.json"))
    idle_kb = read_int(os.path.join(d, "idle-rss.kb"))
    meta = read_json(os.path.join(d, "meta.json")) or {}

    print("### Per-endpoint results")
    print()
    print(f"wrk {meta.get('wrk_args', '')}; server pool size {meta.get('pool', '?')}; "
          f"{meta.get('users', '?')} users x {meta.get('tasks_per_user', '?')} seeded tasks")
    print()
    print("| scenario | req/s | p50 ms | p99 ms | requests | non-2xx | socket errors | peak server RSS MB | DB xacts/req |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in scenarios:
        w = wrk[key]
        if w is None:
            continue
        rss_key = "login-mixed" if key == "read-under-login" else key
        print(f"| {label} | {fmt(w['rps'])} | {fmt(w['p50'], 2)} | {fmt(w['p99'], 2)} | {w['requests']} | "
              f"{w['non2xx']} | {w['socket_errors']} | {fmt(mb(peak.get(rss_key)))} | {xact_ratio(d, key, w)} |")
    print()
    print("### Baselines")
    print()
    if pg_select:
        print(f"- `pgbench -S -M prepared -c 64 -j 2`: {fmt(pg_select['tps'])} tps, avg latency {fmt(pg_select['lat_avg'], 3)} ms")
    if pg_insert:
        print(f"- `pgbench -n -M prepared -c 64 -j 2 -f insert.sql` (one INSERT into a tasks-shaped table): "
              f"{fmt(pg_insert['tps'])} tps, avg latency {fmt(pg_insert['lat_avg'], 3)} ms")
    if argon:
        print(f"- raw Argon2id ({argon['params']}), {argon['procs']} processes, {argon['library']}: "
              f"{fmt(argon['hashes_per_sec'], 2)} hashes/s ({fmt(argon['single_hash_ms'])} ms per hash on one core)")
    if startup:
        print(f"- SQLite start-up to ready: fresh file {startup['fresh_db_ms']} ms (median {startup['fresh_db_median_ms']}); "
              f"migrated file {startup['migrated_db_ms']} ms (median {startup['migrated_db_median_ms']})")
    print()
    print("### Targets (issue #14)")
    print()
    print("| check | measured | baseline | ratio | target | result |")
    print("|---|---:|---:|---:|---|---|")

    def ratio_row(label, value, base, base_label, target):
        r = value / base if value and base else None
        ok = None if r is None or target is None else r >= target
        goal = "info" if target is None else f">= {target}x"
        print(f"| {label} | {fmt(value)} req/s | {fmt(base)} ({base_label}) | {fmt(r, 2)}x | {goal} | {verdict(ok) if target is not None else 'info'} |")

    def rps(key):
        return wrk[key]["rps"] if wrk.get(key) else None

    sel = pg_select["tps"] if pg_select else None
    ins = pg_insert["tps"] if pg_insert else None
    ratio_row("read: GET /tasks/{id}", rps("get"), sel, "pgbench -S", 0.40)
    ratio_row("read: GET /tasks?limit=20", rps("list"), sel, "pgbench -S", 0.25)
    for key, label in (("create", "write: POST /tasks"), ("patch", "write: PATCH /tasks/{id}")):
        ratio_row(label, rps(key), ins, "pgbench insert", 0.45)
    if rps("probe"):
        ratio_row("GET /tasks/{id}: taskapi / stack-ceiling probe", rps("get"), rps("probe"), "probe", 0.75)
        ratio_row("(info) probe / pgbench -S: the stack's own ceiling", rps("probe"), sel, "pgbench -S", None)
    get_p99 = wrk["get"]["p99"] if wrk.get("get") else None
    conns = re.search(r"-c(\d+)", meta.get("wrk_args", ""))
    print(f"| GET /tasks/{{id}} p99 at {conns.group(1) if conns else '?'} connections | {fmt(get_p99, 2)} ms | | | <= 10 ms | "
          f"{verdict(None if get_p99 is None else get_p99 <= 10)} |")
    argon_rate = argon["hashes_per_sec"] if argon else None
    ratio_row("login: POST /auth/login (alone)", wrk["login"]["rps"] if wrk["login"] else None,
              argon_rate, "raw argon2id", 0.9)
    lm = wrk["login-mixed"]["rps"] if wrk["login-mixed"] else None
    if lm and argon_rate:
        rr = wrk["read-under-login"]["rps"] if wrk["read-under-login"] else None
        print(f"| (info) login while a 4-conn closed-loop reader runs ({fmt(rr)} req/s) | {fmt(lm)} req/s | "
              f"{fmt(argon_rate)} (raw argon2id) | {fmt(lm / argon_rate, 2)}x | not a target | info |")
    rul = wrk["read-under-login"]
    p99 = rul["p99"] if rul else None
    print(f"| read p99 during login load | {fmt(p99, 2)} ms | | | < 20 ms | {verdict(None if p99 is None else p99 < 20)} |")
    idle = mb(idle_kb)
    print(f"| idle RSS 3 s after ready (PostgreSQL) | {fmt(idle)} MB | | | <= 30 MB | {verdict(None if idle is None else idle <= 30)} |")
    idle15 = mb(read_int(os.path.join(d, "idle-rss-15s.kb")))
    if idle15 is not None:
        print(f"| idle RSS 15 s after ready (PostgreSQL) | {fmt(idle15)} MB | | | <= 30 MB | {verdict(idle15 <= 30)} |")
    # None where the server had already exited (e.g. its port was taken): not a sample.
    s_samples = [v for v in (startup or {}).get("sqlite_idle_rss_kb") or [] if v is not None]
    if s_samples:
        s_idle = mb(max(s_samples))
        print(f"| idle RSS 1 s after ready (SQLite) | {fmt(s_idle)} MB | | | <= 30 MB | {verdict(s_idle <= 30)} |")
    peaks = [v for v in peak.values() if v is not None]
    worst = mb(max(peaks)) if peaks else None
    print(f"| peak RSS under load (max over scenarios) | {fmt(worst)} MB | | | <= 120 MB | {verdict(None if worst is None else worst <= 120)} |")
    if startup:
        f_med = startup["fresh_db_median_ms"]
        m_med = startup["migrated_db_median_ms"]
        print(f"| start-up to ready, SQLite, fresh file (median of {len(startup['fresh_db_ms'])}) | {fmt(f_med)} ms | | | <= 300 ms | {verdict(f_med <= 300)} |")
        print(f"| start-up to ready, SQLite, migrated file (median of {len(startup['migrated_db_ms'])}) | {fmt(m_med)} ms | | | <= 300 ms | {verdict(m_med <= 300)} |")
    inter = os.path.join(d, "interference.txt")
    if os.path.exists(inter):
        noisy = [line.strip() for line in open(inter) if "busy=[]" not in line]
        if noisy:
            print()
            print("WARNING: other CPU-heavy processes ran during some measurements (numbers for those are skewed):")
            for line in noisy:
                print(f"- {line}")
    bad = {k: (w["non2xx"], w["socket_errors"]) for k, w in wrk.items() if w and (w["non2xx"] or w["socket_errors"])}
    if bad:
        print()
        print(f"WARNING: scenarios with non-2xx responses or socket errors (non2xx, socket errors): {bad}")


if __name__ == "__main__":
    main()
