"""Benchmark S3 diff planning at scale: `dr.backup.s3_diff.diff` over two 1,000,000-object listings.

Run from the repo root: `python benchmarks/s3_diff_bench.py [--objects 1000000] [--repeat 3]`.
No server: both listings are generators of synthetic `ObjectInfo` in S3 key order
(`data/000000000.bin`, ...), made lazily as the diff pulls them, like dr's paginated listings:

* 1%   new: in the source only (i % 100 == 0);
* 1%   changed: half with another size (i % 200 == 1), half with the same size, another ETag and a
       source modified after the copy (i % 200 == 101);
* 0.5% extra: only in the destination (`data/<i>.bin.old`, after key i, for i % 200 == 7);
* the rest in sync: half with equal ETags, half with another ETag (what an SSE-KMS copy has) and a
  destination written after the source, so both of `in_sync`'s branches are exercised.

Every measurement runs in a fresh subprocess, so its peak RSS (`ru_maxrss`) is its own: "diff"
pulls every Change and counts it by action and reason (the counts are checked against the
expected ones), "listings only" just drains the two generators (what making the objects costs,
without the diff). The 100,000-object run shows the memory stays flat as the listings grow.
Goal: diff of 1,000,000 per side under 10 s and under 150 MB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.backup.s3_diff import ObjectInfo, diff  # noqa: E402

SOURCE_WRITTEN = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
COPIED = datetime(2026, 11, 1, 13, 0, tzinfo=timezone.utc)  # the destination's copies: later
SOURCE_CHANGED = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)  # modified after the copy


def key(i: int) -> str:
    return f"data/{i:09d}.bin"


def size(i: int) -> int:
    return 1024 + (i * 7919) % 65536


def source(n: int) -> Iterator[ObjectInfo]:
    for i in range(n):
        modified = SOURCE_CHANGED if i % 200 == 101 else SOURCE_WRITTEN
        yield ObjectInfo(key(i), size(i), f'"{i:032x}"', modified)


def destination(n: int) -> Iterator[ObjectInfo]:
    for i in range(n):
        if i % 100 != 0:  # else: new, not copied yet
            k, s, r = key(i), size(i), i % 200
            if r == 1:
                yield ObjectInfo(k, s + 1, f'"{i:032x}"', COPIED)
            elif r == 101 or i % 2:
                yield ObjectInfo(k, s, f'"{i:031x}k"', COPIED)  # SSE-KMS copy: another ETag
            else:
                yield ObjectInfo(k, s, f'"{i:032x}"', COPIED)
        if i % 200 == 7:
            yield ObjectInfo(key(i) + ".old", 10, '"0"', COPIED)


def expected(n: int) -> dict[str, int]:
    new = sum(1 for i in range(n) if i % 100 == 0)
    size_changed = sum(1 for i in range(n) if i % 200 == 1)
    modified = sum(1 for i in range(n) if i % 200 == 101)
    extra = sum(1 for i in range(n) if i % 200 == 7)
    return {"copy new": new, "copy changed size": size_changed, "copy modified": modified,
            "extra": extra, "same": n - new - size_changed - modified,
            "source objects": n, "destination objects": n - new + extra}


def classify(reason: str, action: str) -> str:
    if action != "copy":
        return action
    if reason == "new":
        return "copy new"
    return "copy changed size" if reason.startswith("changed: size") else "copy modified"


def child(mode: str, n: int) -> None:
    """One measurement in this fresh process; prints one JSON line."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts: Counter = Counter()
    start = time.perf_counter()
    if mode == "diff":
        for change in diff(source(n), destination(n)):
            counts[classify(change.reason, change.action)] += 1
    else:  # listings only
        counts["source objects"] = sum(1 for _ in source(n))
        counts["destination objects"] = sum(1 for _ in destination(n))
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_kib": rss, "rss_before_kib": rss_before,
                      "counts": counts}))


def measure(mode: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--objects", str(n)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=("diff", "listings"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.objects)
        return
    n, repeat = args.objects, args.repeat
    want = expected(n)
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, "
          f"{platform.system()} {platform.machine()}")
    print(f"listings: {want['source objects']:,} source objects, {want['destination objects']:,} "
          f"destination objects, generated lazily in key order; each run in a fresh process")
    print(f"  {'run':<34} {'best s':>7} {'median s':>9} {'peak RSS':>9} {'before':>8}  runs")
    rows = [("diff", n, repeat), ("listings", n, repeat)]
    if n > 100_000:
        rows.append(("diff", 100_000, 1))
    diff_best = diff_rss = None
    for mode, size_, times in rows:
        results = [measure(mode, size_) for _ in range(times)]
        if mode == "diff":
            got = dict(results[0]["counts"])
            exp = {k: v for k, v in expected(size_).items() if "objects" not in k}
            if got != exp:
                raise SystemExit(f"diff of {size_:,} counted {got}, expected {exp}")
        secs = [r["seconds"] for r in results]
        peak = max(r["rss_kib"] for r in results) * 1024 / 1e6
        before = max(r["rss_before_kib"] for r in results) * 1024 / 1e6
        label = (f"diff, {size_:,} per side" if mode == "diff"
                 else f"listings only (no diff), {size_:,}")
        print(f"  {label:<34} {min(secs):7.2f} {statistics.median(secs):9.2f} {peak:7.1f} MB "
              f"{before:5.1f} MB  {', '.join(f'{s:.2f}' for s in secs)}")
        if mode == "diff" and size_ == n:
            diff_best, diff_rss, counts = min(secs), peak, got
    print("changes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    print(f"  ({n / diff_best:,.0f} source objects/s; 'peak RSS' is ru_maxrss of the measuring process, "
          f"'before' the same just before the run, after imports)")
    ok_time, ok_rss = diff_best < 10, diff_rss < 150
    print(f"goal: under 10 s: {'yes' if ok_time else 'NO'} ({diff_best:.2f} s); "
          f"peak RSS under 150 MB: {'yes' if ok_rss else 'NO'} ({diff_rss:.1f} MB)")


if __name__ == "__main__":
    main()
