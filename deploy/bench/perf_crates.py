#!/usr/bin/env python3
"""Aggregates a `perf report` of taskapi by Rust crate (first path segment of the symbol),
with kernel and libc as their own buckets.

  perf_crates.py perf.data [top_n]
"""
import collections
import re
import subprocess
import sys


def crate_of(dso, sym):
    if "kernel" in dso:
        return "[kernel]"
    if dso.startswith("libc"):
        return "[libc] " + ("malloc/free" if re.search(r"malloc|free|_int_|unlink_chunk|consolidate|tcache", sym) else
                            "memmove/memcpy/memcmp" if re.search(r"mem(move|cpy|cmp|set)", sym) else "other")
    if not dso.startswith("taskapi"):
        return f"[{dso}]"
    s = sym.strip()
    s = re.sub(r"^<", "", s)
    s = re.sub(r"^(core::ptr::drop_in_place<|alloc::sync::Arc<[^>]*>::drop_slow|)", "", s)
    m = re.match(r"&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)::", s)
    return m.group(1) if m else s[:40]


def main():
    data = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso,symbol", "--percent-limit", "0",
                          "-g", "none"], capture_output=True, text=True).stdout
    buckets = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)\s*(?:-\s+-\s*)?$", line)
        if m:
            buckets[crate_of(m.group(2), m.group(3))] += float(m.group(1))
    for name, pct in buckets.most_common(top):
        print(f"{pct:6.2f}%  {name}")


if __name__ == "__main__":
    main()
