"""Benchmark retention planning: 1k / 10k / 100k recovery points, best of 3.

Run from the repo root: `python benchmarks/retention_bench.py` (or `make bench`).
One point every 7 minutes backwards from a fixed `now`, with a few in-progress and failed
points sprinkled in, planned against {last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.backup.retention import Candidate, apply_policy, summarize  # noqa: E402

try:
    from dr.config import RetentionPolicy
except ImportError:  # dr.config not written yet: same shape, retention reads only these

    @dataclass(frozen=True)
    class RetentionPolicy:  # type: ignore[no-redef]
        last: int = 0
        hourly: int = 0
        daily: int = 0
        weekly: int = 0
        monthly: int = 0


NOW = datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc)
POLICY = RetentionPolicy(last=3, hourly=24, daily=7, weekly=4, monthly=12)
SIZES = (1_000, 10_000, 100_000)
REPEAT = 3


def synthetic_points(n: int) -> list[Candidate]:
    """n points, one every 7 minutes back from NOW; ~1% in progress, ~0.5% failed."""
    points = []
    for i in range(n):
        status = "creating" if i % 101 == 0 else "failed" if i % 199 == 0 else "available"
        points.append(Candidate(f"rp-{i:07d}", NOW - timedelta(minutes=7 * i), status))
    return points


def main() -> None:
    print(f"policy: {POLICY}")
    print(f"{'n':>9}  {'seconds':>9}  {'points/s':>12}  {'kept':>6}  {'deleted':>8}")
    for n in SIZES:
        points = synthetic_points(n)
        best = float("inf")
        for _ in range(REPEAT):
            start = time.perf_counter()
            plan = apply_policy(points, POLICY, NOW)
            best = min(best, time.perf_counter() - start)
        kept, deleted = summarize(plan)
        print(f"{n:>9,}  {best:>9.4f}  {n / best:>12,.0f}  {kept:>6,}  {deleted:>8,}")


if __name__ == "__main__":
    main()
