"""Benchmark `dr mongo status`: evaluating a 50-member set, and probing 7 slow members.

Run from the repo root: `python benchmarks/mongo_bench.py`. Targets (issue 5):
  * evaluating a 50-member status (status + config documents + 50 probes): under 50 ms;
  * probing 7 members whose servers each answer after 200 ms: under 600 ms in total.

The probe part needs mockupdb (one fake mongod per member on 127.0.0.1, real pymongo over the
wire). The 200 ms delay applies to every answer but the connection handshake (isMaster/hello,
SASL, endSessions): replSetGetStatus, replSetGetConfig and each oplog find wait 200 ms, so a
sequential probe would take 2 + 2 × 7 = 16 round trips (3.2 s).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.mongo.evaluate import MemberProbe, evaluate  # noqa: E402
from dr.mongo.model import Settings  # noqa: E402
from dr.sandbox.mongo import SimMember, SimSet  # noqa: E402

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=timezone.utc)
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1", "sa-east-1")
REPEAT = 20


def fifty_members() -> list[SimMember]:
    """50 members over 5 regions: 7 voting (MongoDB's limit), a few delayed, hidden, lagging."""
    members = []
    for i in range(50):
        members.append(SimMember(
            REGIONS[i % 5], "PRIMARY" if i == 0 else ("ARBITER" if i == 6 else "SECONDARY"),
            priority=2 if i == 0 else (1 if i < 6 else 0), votes=1 if i < 7 else 0,
            hidden=i >= 45, delay=3600 if i >= 48 else 0, lag=(i % 13) * 3 + (3600 if i >= 48 else 0),
            oplog_window=(20 if i % 11 == 0 else 40) * 3600.0))
    return members


def bench_evaluate() -> float:
    sim = SimSet(fifty_members(), now=NOW)
    status, config = sim.status_doc(), sim.config_doc()
    probes = {m.host: MemberProbe(m.host, True, rtt_ms=1.0,
                                  oplog_first=sim.oplog_entry(m, True)["wall"],
                                  oplog_last=sim.oplog_entry(m, False)["wall"])
              for m in sim.members if not m.arbiter}
    settings = Settings(name="bench", primary_region="us-east-1", dr_region="us-west-2")
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        report = evaluate(status, config, probes, settings, checked_at=NOW)
        times.append(time.perf_counter() - start)
    assert len(report.members) == 50
    print(f"evaluate 50 members: best {min(times) * 1000:.2f} ms, median "
          f"{statistics.median(times) * 1000:.2f} ms over {REPEAT} runs "
          f"({len(report.findings)} findings, worst {report.worst})  [target < 50 ms]")
    return min(times)


def bench_probe(latency: float = 0.2, members: int = 7) -> float | None:
    try:
        import mockupdb  # noqa: F401
    except ImportError:
        print("probe: skipped (pip install mockupdb)")
        return None
    start = time.perf_counter()
    import pymongo  # noqa: F401  (a fresh `dr` process pays this once)

    from dr.config import MongoResource, Secret
    from dr.mongo import probe  # noqa: F401
    from dr.mongo.service import check_replica_set
    from dr.sandbox.mongo import WireReplicaSet

    imports = time.perf_counter() - start

    specs = [SimMember(REGIONS[i % 3], "PRIMARY" if i == 0 else "SECONDARY", latency=latency)
             for i in range(members)]
    times = []
    with WireReplicaSet(specs) as fake:
        resource = MongoResource(name="bench", uri=Secret(literal=fake.uri),
                                 timeout=timedelta(seconds=5))
        start = time.perf_counter()
        check_replica_set(resource, "us-east-1")  # first connections in this process
        cold = time.perf_counter() - start
        for _ in range(5):
            start = time.perf_counter()
            report = check_replica_set(resource, "us-east-1")
            times.append(time.perf_counter() - start)
    assert all(m.oplog_window for m in report.members)
    print(f"probe {members} members answering after {latency * 1000:.0f} ms: best "
          f"{min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms over "
          f"{len(times)} runs; first run {cold * 1000:.0f} ms, after {imports * 1000:.0f} ms of "
          f"imports (sequential would be >= {(2 + 2 * members) * latency * 1000:.0f} ms)"
          "  [target < 600 ms]")
    return statistics.median(times)


if __name__ == "__main__":
    bench_evaluate()
    bench_probe()
