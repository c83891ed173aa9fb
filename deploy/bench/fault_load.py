#!/usr/bin/env python3
"""Load generators and probes for faults.sh. Stdlib only; every loop is bounded in time.

Subcommands (all against 127.0.0.1:PORT):
  users    --port P --count N --out FILE          register+login N users, write "email token" lines
  writes   --port P --tokens FILE --seconds S --out EVENTS.jsonl [--ready-poll]
           one client thread per token POSTing /api/v1/tasks; every request is recorded
  analyze-outage  --events E --marks M --db-url URL --pid PID
  analyze-sigterm --events E --db-url URL
  slowloris --port P --conns N --seconds S
  bigbody   --port P --token T
  nested    --port P --token T
  malformed --port P --token T
  healthy   --port P --pid PID

Analysis subcommands print lines "PASS <check>: ..." / "FAIL <check>: ..." that faults.sh counts.
"""

import argparse
import collections
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpkit import HOST, Client  # noqa: E402

PASSWORD = "fault-password-123"


def verdict(ok, name, detail):
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


# ------------------------------------------------------------------ users
def cmd_users(args):
    tag = str(int(time.time() * 1000))
    client = Client(args.port, timeout=60)
    with open(args.out, "w") as fh:
        for i in range(args.count):
            email = f"fault-{tag}-{i}@example.test"
            client.json("POST", "/api/v1/auth/register",
                        {"name": f"Fault {i}", "email": email, "password": PASSWORD}, expect=201)
            _, body = client.json("POST", "/api/v1/auth/login",
                                  {"email": email, "password": PASSWORD}, expect=200)
            fh.write(f"{email} {body['access_token']}\n")


def read_tokens(path):
    with open(path) as fh:
        return [line.split()[1] for line in fh if line.strip()]


# ------------------------------------------------------------------ writes
def cmd_writes(args):
    tokens = read_tokens(args.tokens)
    deadline = time.time() + args.seconds
    lock = threading.Lock()
    out = open(args.out, "w")

    def emit(event):
        with lock:
            out.write(json.dumps(event) + "\n")

    def writer(index, token):
        client = Client(args.port, timeout=args.timeout)
        n = 0
        while time.time() < deadline:
            n += 1
            body = {"title": f"fault write {index}-{n}", "priority": "high"}
            start = time.time()
            event = {"kind": "write", "client": index, "start": start}
            try:
                status, headers, payload = client.request("POST", "/api/v1/tasks", body=body, token=token)
                event.update(status=status, ctype=headers.get("content-type", ""))
                if status == 201:
                    event["id"] = json.loads(payload)["id"]
                elif status >= 400:
                    event["body"] = payload[:200].decode("utf-8", "replace")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                event.update(status=None, error=type(exc).__name__ + ": " + str(exc)[:120])
                time.sleep(0.05)  # the server may be gone (SIGTERM test): do not spin
            event["end"] = time.time()
            emit(event)
        client.close()

    def ready_poller():
        while time.time() < deadline:
            start = time.time()
            event = {"kind": "ready", "start": start}
            try:
                conn = http.client.HTTPConnection(HOST, args.port, timeout=5)
                conn.request("GET", "/health/ready")
                resp = conn.getresponse()
                resp.read()
                event["status"] = resp.status
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                event.update(status=None, error=type(exc).__name__)
            event["end"] = time.time()
            emit(event)
            time.sleep(0.25)

    threads = [threading.Thread(target=writer, args=(i, t)) for i, t in enumerate(tokens)]
    if args.ready_poll:
        threads.append(threading.Thread(target=ready_poller))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=args.seconds + args.timeout + 30)
    out.close()


def load_events(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def missing_ids(db_url, ids):
    """Acknowledged ids that are not in the tasks table (queried through psql)."""
    if not ids:
        return []
    script = ("CREATE TEMP TABLE acked(id uuid);\n"
              "COPY acked FROM STDIN;\n" + "\n".join(ids) + "\n\\.\n"
              "SELECT a.id FROM acked a LEFT JOIN tasks t ON t.id = a.id WHERE t.id IS NULL;\n")
    res = subprocess.run(["psql", db_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                         input=script, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("psql failed: " + res.stderr)
    return [line for line in res.stdout.split() if line]


def histogram(events):
    return dict(sorted(collections.Counter(
        str(e["status"]) if e.get("status") is not None else "transport-error" for e in events).items()))


def cmd_analyze_outage(args):
    events = load_events(args.events)
    marks = dict(line.split() for line in open(args.marks) if line.strip())
    stop_begin, down, up_begin, up = (float(marks[k]) for k in ("stop_begin", "down", "start_begin", "up"))
    writes = [e for e in events if e["kind"] == "write"]
    ready = [e for e in events if e["kind"] == "ready"]
    ok = True

    alive = subprocess.run(["kill", "-0", str(args.pid)]).returncode == 0
    ok &= verdict(alive, "outage/process-up", f"taskapi pid {args.pid} {'still running' if alive else 'DIED'} after the PostgreSQL outage")

    print(f"INFO outage: PostgreSQL stop issued at +0.00 s, down at +{down - stop_begin:.2f} s, "
          f"start issued at +{up_begin - stop_begin:.2f} s, accepting connections at +{up - stop_begin:.2f} s")
    print(f"INFO outage: all writes: {len(writes)} requests, status histogram {histogram(writes)}")
    # Every response that arrived while PostgreSQL was fully down must be a 503 problem+json.
    inside = [e for e in writes if down <= e["end"] <= up_begin]
    started = [e for e in writes if down <= e["start"] <= up_begin]
    overlapping = [e for e in writes if e["end"] >= stop_begin and e["start"] <= up]
    print(f"INFO outage: responses completed while PostgreSQL was down: {len(inside)}, histogram {histogram(inside)}")
    print(f"INFO outage: requests sent while PostgreSQL was down: {len(started)}, histogram {histogram(started)} "
          f"(a 201 here waited in the pool until PostgreSQL came back)")
    print(f"INFO outage: requests overlapping the outage (stop issued .. PG up): {len(overlapping)}, "
          f"histogram {histogram(overlapping)}")
    lat503 = [e["end"] - e["start"] for e in writes if e.get("status") == 503]
    if lat503:
        print(f"INFO outage: latency of the 503 responses: min {min(lat503):.2f} s, median {statistics.median(lat503):.2f} s, "
              f"max {max(lat503):.2f} s")
    waited = [e["end"] - e["start"] for e in started if e.get("status") == 201]
    if waited:
        print(f"INFO outage: 201s for requests sent during the outage took up to {max(waited):.2f} s")
    bad_inside = [e for e in inside if not (e.get("status") == 503 and "problem+json" in e.get("ctype", ""))]
    ok &= verdict(bool(inside) and not bad_inside, "outage/503-problem-json",
                  f"{len(inside) - len(bad_inside)}/{len(inside)} responses completed during the outage were 503 application/problem+json"
                  + (f"; others: {[(e.get('status'), e.get('ctype'), e.get('error'), e.get('body')) for e in bad_inside[:5]]}" if bad_inside else ""))
    unexpected = [e for e in writes if e.get("status") not in (201, 503)]
    ok &= verdict(not unexpected, "outage/no-other-statuses",
                  "every response in the whole run was 201 or 503" if not unexpected else
                  f"{len(unexpected)} other outcomes (time relative to the stop): "
                  f"{[(round(e['start'] - stop_begin, 3), round(e['end'] - stop_begin, 3), e.get('status'), e.get('error'), e.get('body')) for e in unexpected[:5]]}")

    ready_inside = [e for e in ready if down <= e["end"] <= up_begin]
    ready_lat = [e["end"] - e["start"] for e in ready_inside]
    ready_503 = [e for e in ready_inside if e.get("status") == 503]
    ok &= verdict(bool(ready_inside) and len(ready_503) == len(ready_inside), "outage/ready-503",
                  f"/health/ready answered 503 to {len(ready_503)}/{len(ready_inside)} polls during the outage "
                  f"(histogram {histogram(ready_inside)}; each took {min(ready_lat or [0]):.2f}-{max(ready_lat or [0]):.2f} s)")

    after = sorted((e for e in writes if e.get("status") == 201 and e["end"] >= up_begin), key=lambda e: e["end"])
    last = max(e["end"] for e in writes)
    if after:
        rec = after[0]["end"] - up_begin
        ok &= verdict(rec <= args.recovery_limit, "outage/recovery",
                      f"first 201 {rec:.2f} s after `pg_ctl start` was issued ({after[0]['end'] - up:+.2f} s relative to "
                      f"pg_ctl -w reporting PostgreSQL ready; PostgreSQL took {up - up_begin:.2f} s to start; limit {args.recovery_limit:.0f} s)")
    else:
        ok &= verdict(False, "outage/recovery", f"no 201 in the {last - up:.1f} s of load after PostgreSQL came back")
    ready_after = sorted((e for e in ready if e.get("status") == 200 and e["end"] >= up_begin), key=lambda e: e["end"])
    if ready_after:
        print(f"INFO outage: /health/ready back to 200 {ready_after[0]['end'] - up_begin:.2f} s after `pg_ctl start` was issued")
    post = [e for e in writes if e["start"] >= up_begin + args.recovery_limit]
    if post:
        print(f"INFO outage: requests started > {args.recovery_limit:.0f} s after recovery: histogram {histogram(post)}")

    acked = [e["id"] for e in writes if e.get("status") == 201]
    try:
        missing = missing_ids(args.db_url, acked)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return 0 if verdict(False, "outage/acked-writes-durable", f"could not query the database: {exc}") and ok else 1
    ok &= verdict(not missing, "outage/acked-writes-durable",
                  f"{len(acked) - len(missing)}/{len(acked)} acknowledged task ids found in the database"
                  + (f"; missing e.g. {missing[:5]}" if missing else ""))
    return 0 if ok else 1


def cmd_analyze_sigterm(args):
    events = [e for e in load_events(args.events) if e["kind"] == "write"]
    sigterm_at = float(open(args.marks).read().split()[1]) if args.marks else None
    ok = True
    print(f"INFO sigterm: {len(events)} requests, histogram {histogram(events)}")
    if sigterm_at:
        after = [e for e in events if e["start"] >= sigterm_at]
        print(f"INFO sigterm: requests sent after SIGTERM: {len(after)}, histogram {histogram(after)}")
        inflight = [e for e in events if e["start"] < sigterm_at <= e["end"]]
        print(f"INFO sigterm: requests in flight at SIGTERM: {len(inflight)}, histogram {histogram(inflight)}")
        errs = collections.Counter(e["error"].split(":")[0] for e in events if e.get("error"))
        if errs:
            print(f"INFO sigterm: transport errors by kind: {dict(errs)}")
    five = [e for e in events if e.get("status") is not None and e["status"] >= 500]
    ok &= verdict(not five, "sigterm/no-5xx",
                  f"{len([e for e in events if e.get('status') is not None])} responses, none 5xx" if not five else
                  f"{len(five)} 5xx responses, e.g. {[(e['status'], e.get('body')) for e in five[:3]]}")
    acked = [e["id"] for e in events if e.get("status") == 201]
    try:
        missing = missing_ids(args.db_url, acked)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        verdict(False, "sigterm/acked-writes-durable", f"could not query the database: {exc}")
        return 1
    ok &= verdict(bool(acked) and not missing, "sigterm/acked-writes-durable",
                  f"{len(acked) - len(missing)}/{len(acked)} acknowledged task ids found in the database")
    return 0 if ok else 1


# ------------------------------------------------------------------ slowloris
def cmd_slowloris(args):
    seconds = args.seconds
    deadline = time.time() + seconds
    socks = []
    for _ in range(args.conns):
        s = socket.create_connection((HOST, args.port), timeout=2)
        s.setblocking(False)
        socks.append({"sock": s, "opened": time.time(), "closed": None, "sent": 0, "reply": b""})
    header = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
    stop = threading.Event()

    def dribble():
        # One byte per connection per second, never finishing the header block.
        while not stop.is_set() and time.time() < deadline:
            tick = time.time()
            for c in socks:
                if c["closed"] is not None:
                    continue
                s = c["sock"]
                try:
                    data = s.recv(4096)
                    if data:
                        c["reply"] += data  # the server answered (e.g. 408) before we finished
                    else:
                        c["closed"] = time.time()
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    c["closed"] = time.time()
                    continue
                try:
                    i = c["sent"] % len(header)
                    c["sent"] += s.send(header[i:i + 1])
                except BlockingIOError:
                    pass
                except OSError:
                    c["closed"] = time.time()
            stop.wait(max(0.0, 1.0 - (time.time() - tick)))

    latencies, failures = [], collections.Counter()

    def probe():
        time.sleep(1.0)
        while not stop.is_set() and time.time() < deadline - 0.5:
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection(HOST, args.port, timeout=5)
                conn.request("GET", "/health/live")
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    failures[str(resp.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                failures[type(exc).__name__] += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=dribble), threading.Thread(target=probe)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 30)
    stop.set()
    closed = [c["closed"] - c["opened"] for c in socks if c["closed"] is not None]
    replies = collections.Counter(c["reply"].split(b"\r\n", 1)[0].decode("latin-1") for c in socks if c["reply"])
    for c in socks:
        c["sock"].close()
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(f"INFO slowloris: {args.conns} connections dribbling 1 header byte/s for {seconds:.0f} s; "
          f"server closed {len(closed)} of them" + (f" after {statistics.median(closed):.1f} s (median)" if closed else
                                                      " (none within the run: no header-read timeout <= run length)")
          + (f"; replies seen on them: {dict(replies)}" if replies else ""))
    ok = bool(latencies) and not failures and p99 is not None and p99 < args.p99_limit_ms
    verdict(ok, "slowloris/live-stays-fast",
            f"{len(latencies)} probes of /health/live on fresh connections: p50 {p50 or 0:.1f} ms, p99 {p99 or 0:.1f} ms, "
            f"max {max(latencies) if latencies else 0:.1f} ms, failures {dict(failures)} (limit p99 < {args.p99_limit_ms:.0f} ms)")
    return 0 if ok else 1


# ------------------------------------------------------------------ big / nested / malformed bodies
def raw_exchange(port, head, body_iter, read_timeout=10.0):
    """Sends head + body chunks from a thread while reading the response; returns (status, ctype, seconds, note)."""
    s = socket.create_connection((HOST, port), timeout=5)
    t0 = time.perf_counter()
    sent = {"bytes": 0, "error": None}

    def sender():
        try:
            s.sendall(head)
            for chunk in body_iter:
                s.sendall(chunk)
                sent["bytes"] += len(chunk)
        except OSError as exc:
            sent["error"] = type(exc).__name__

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    s.settimeout(read_timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        return None, None, time.perf_counter() - t0, f"read error {type(exc).__name__}; sent {sent['bytes']} body bytes"
    elapsed = time.perf_counter() - t0
    t.join(timeout=2)
    try:
        s.close()
    except OSError:
        pass
    if not data:
        return None, None, elapsed, f"connection closed without a response; sent {sent['bytes']} body bytes"
    head_text = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head_text.split("\r\n")
    status = int(lines[0].split()[1])
    ctype = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("content-type:")), "")
    return status, ctype, elapsed, f"client had sent {sent['bytes']} body bytes when the response arrived"


def cmd_bigbody(args):
    size = 10 * 1024 * 1024
    ok = True
    chunk = b"x" * 65536

    def fixed():
        left = size
        yield b'{"title":"'
        left -= 10
        while left > 0:
            n = min(left, len(chunk))
            yield chunk[:n]
            left -= n

    head = (f"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {args.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    status, ctype, secs, note = raw_exchange(args.port, head, fixed())
    ok &= verdict(status == 413 and secs < args.limit_s, "bigbody/content-length-10MB",
                  f"status {status} ({ctype}) after {secs * 1000:.0f} ms; {note}")

    def chunked():
        yield b"a\r\n" + b'{"title":"' + b"\r\n"
        for _ in range(size // len(chunk)):
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        yield b"0\r\n\r\n"

    head = (f"POST /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {args.token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    status, ctype, secs, note = raw_exchange(args.port, head, chunked())
    ok &= verdict(status == 413 and secs < args.limit_s, "bigbody/chunked-10MB",
                  f"status {status} ({ctype}) after {secs * 1000:.0f} ms; {note}")
    return 0 if ok else 1


def post_json_raw(port, token, body, timeout=10):
    client = Client(port, timeout=timeout)
    t0 = time.perf_counter()
    status, headers, payload = client.request("POST", "/api/v1/tasks", body=body, token=token)
    client.close()
    return status, headers.get("content-type", ""), time.perf_counter() - t0, payload


def cmd_nested(args):
    ok = True
    for depth in (1000, 100_000):
        for label, body in (
            (f"array-depth-{depth}", b"[" * depth + b"]" * depth),
            (f"title-object-depth-{depth}", b'{"title":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"),
        ):
            try:
                status, ctype, secs, _ = post_json_raw(args.port, args.token, body)
            except (OSError, http.client.HTTPException) as exc:
                status, ctype, secs = None, f"transport error {type(exc).__name__}", 0
            ok &= verdict(status in (400, 422) and "problem+json" in ctype, f"nested/{label}",
                          f"{len(body)} bytes -> {status} ({ctype}) in {secs * 1000:.0f} ms")
    return 0 if ok else 1


def cmd_malformed(args):
    ok = True
    status, ctype, _, payload = post_json_raw(args.port, args.token, b'{"title": "unterminated')
    ok &= verdict(status == 400 and "problem+json" in ctype, "malformed/broken-json",
                  f"-> {status} ({ctype}) {payload[:120]!r}")
    status, ctype, _, payload = post_json_raw(args.port, args.token, b"\xff\xfe\x00garbage")
    ok &= verdict(status == 400 and "problem+json" in ctype, "malformed/binary-body",
                  f"-> {status} ({ctype})")
    # A request line that is not HTTP at all: the server should answer 400 or close, and survive.
    s = socket.create_connection((HOST, args.port), timeout=5)
    s.sendall(b"\x16\x03\x01\x02\x00GARBAGE / NOT-HTTP\r\n\r\n")
    try:
        reply = s.recv(4096)
    except OSError as exc:
        reply = type(exc).__name__.encode()
    s.close()
    first = reply.split(b"\r\n", 1)[0].decode("latin-1") if reply else "(closed without reply)"
    ok &= verdict(first.startswith("HTTP/1.1 400") or first == "(closed without reply)" or first.startswith("Connection"),
                  "malformed/not-http", f"reply: {first}")
    # An oversized header block.
    s = socket.create_connection((HOST, args.port), timeout=5)
    try:
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1024 * 1024) + b"\r\n\r\n")
    except OSError:
        pass
    try:
        reply = s.recv(4096)
    except OSError as exc:
        reply = type(exc).__name__.encode()
    s.close()
    first = reply.split(b"\r\n", 1)[0].decode("latin-1") if reply else "(closed without reply)"
    ok &= verdict(not first.startswith("HTTP/1.1 2"), "malformed/1MB-header", f"reply: {first}")
    return 0 if ok else 1


def cmd_healthy(args):
    alive = subprocess.run(["kill", "-0", str(args.pid)]).returncode == 0
    client = Client(args.port, timeout=5)
    live = ready = None
    try:
        live = client.request("GET", "/health/live")[0]
        ready = client.request("GET", "/health/ready")[0]
    except (OSError, http.client.HTTPException) as exc:
        live = live or type(exc).__name__
    ok = alive and live == 200 and ready == 200
    verdict(ok, f"healthy/{args.label}", f"process {'running' if alive else 'GONE'}, /health/live {live}, /health/ready {ready}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("users"); p.add_argument("--port", type=int, required=True); p.add_argument("--count", type=int, default=4); p.add_argument("--out", required=True)
    p = sub.add_parser("writes"); p.add_argument("--port", type=int, required=True); p.add_argument("--tokens", required=True)
    p.add_argument("--seconds", type=float, default=30); p.add_argument("--timeout", type=float, default=15); p.add_argument("--out", required=True)
    p.add_argument("--ready-poll", action="store_true")
    p = sub.add_parser("analyze-outage"); p.add_argument("--events", required=True); p.add_argument("--marks", required=True)
    p.add_argument("--db-url", required=True); p.add_argument("--pid", type=int, required=True); p.add_argument("--recovery-limit", type=float, default=5.0)
    p = sub.add_parser("analyze-sigterm"); p.add_argument("--events", required=True); p.add_argument("--db-url", required=True); p.add_argument("--marks")
    p = sub.add_parser("slowloris"); p.add_argument("--port", type=int, required=True); p.add_argument("--conns", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20); p.add_argument("--p99-limit-ms", type=float, default=100)
    p = sub.add_parser("bigbody"); p.add_argument("--port", type=int, required=True); p.add_argument("--token", required=True); p.add_argument("--limit-s", type=float, default=2.0)
    p = sub.add_parser("nested"); p.add_argument("--port", type=int, required=True); p.add_argument("--token", required=True)
    p = sub.add_parser("malformed"); p.add_argument("--port", type=int, required=True); p.add_argument("--token", required=True)
    p = sub.add_parser("healthy"); p.add_argument("--port", type=int, required=True); p.add_argument("--pid", type=int, required=True); p.add_argument("--label", default="final")
    args = ap.parse_args()
    fn = {"users": cmd_users, "writes": cmd_writes, "analyze-outage": cmd_analyze_outage,
          "analyze-sigterm": cmd_analyze_sigterm, "slowloris": cmd_slowloris, "bigbody": cmd_bigbody,
          "nested": cmd_nested, "malformed": cmd_malformed, "healthy": cmd_healthy}[args.cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
