#!/usr/bin/env python3
"""Per-request figures from the callgrind dumps instructions.py recorded.

  callgrind_totals.py DIR            # reads DIR/phases.json, prints a markdown table
  callgrind_totals.py DIR --json     # the same figures as JSON

For each phase: instructions (Ir) per request over every thread of the process, and the
calls into the allocator (malloc, calloc, realloc; `free` separately) per request, summed
over all call sites in the dump. The idle phase is reported per second instead.
"""

import json
import os
import re
import sys

ALLOC = {"malloc", "calloc", "realloc", "aligned_alloc", "posix_memalign", "memalign"}


def parse(path):
    total = None
    names = {}
    calls = {}
    current = None
    name_re = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif line.startswith("cfn="):
                m = name_re.match(line.rstrip("\n"))
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    current = names.get(m.group(1))
                else:
                    current = line[4:].strip()
            elif line.startswith("fn="):
                m = name_re.match(line.rstrip("\n"))
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
            elif line.startswith("calls=") and current is not None:
                calls[current] = calls.get(current, 0) + int(line[6:].split()[0])
                current = None
    allocs = sum(n for f, n in calls.items() if f in ALLOC)
    frees = calls.get("free", 0)
    return total or 0, allocs, frees


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "phases.json")) as fh:
        phases = json.load(fh)
    rows = []
    for p in phases:
        if not p.get("dump"):
            continue
        ir, allocs, frees = parse(p["dump"])
        n = p["requests"]
        if n:
            rows.append({"phase": p["phase"], "requests": n, "ir_per_request": round(ir / n),
                         "allocs_per_request": round(allocs / n, 1), "frees_per_request": round(frees / n, 1)})
        else:
            secs = p.get("seconds") or 1
            rows.append({"phase": p["phase"], "requests": 0, "ir_per_second": round(ir / secs),
                         "allocs_per_second": round(allocs / secs, 1)})
    if "--json" in sys.argv:
        print(json.dumps(rows, indent=1))
        return
    labels = {"get": "GET /tasks/{id}", "list": "GET /tasks?limit=20", "create": "POST /tasks",
              "patch": "PATCH /tasks/{id}", "live": "(info) GET /health/live", "idle": "(info) idle"}
    print("| request | requests | instructions/request | allocations/request | frees/request |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        label = labels.get(r["phase"], r["phase"])
        if r["requests"]:
            print(f"| {label} | {r['requests']} | {r['ir_per_request']:,} | {r['allocs_per_request']} | {r['frees_per_request']} |")
        else:
            print(f"| {label} | per second | {r['ir_per_second']:,} /s | {r['allocs_per_second']} /s | |")


if __name__ == "__main__":
    main()
