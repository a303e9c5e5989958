"""Benchmark the runbook engine: its overhead, and whether parallel steps really overlap.

Run from the repo root: `python benchmarks/runbook_bench.py`.

1. Overhead: a 20-step runbook of `noop` steps (a chain, and a fan-out of 20 independent steps),
   best of 5, with the journal in a LocalStore (every transition fsynced: the durable setting)
   and in an in-memory store (the engine alone). Goal: under 1 s.
2. Overlap: a DAG of `sleep` steps with parallel branches (simulated latencies). The measured
   RTO (run start to the `rto_end` step) against the critical-path length (the longest chain of
   planned sleeps, what a perfect scheduler with unlimited parallelism would take) and against
   the sum of all sleeps (what running them one by one would take). Goal: within 5%.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import dr  # noqa: F401
except ImportError:  # not installed: run against the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.config import parse_config  # noqa: E402
from dr.runbook import EngineContext, parse_runbook, run_runbook  # noqa: E402
from dr.runbook.dag import critical_path  # noqa: E402
from dr.state.local import LocalStore  # noqa: E402

CONFIG = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
"""
REPEAT = 5

# A failover-shaped DAG: readiness, then database, files and network in parallel, then the stack,
# health, DNS; a report branch off the database. Sleeps are the simulated latencies (seconds).
DAG = {
    "ready": ((), 0.30),
    "db": (("ready",), 1.50),
    "files": (("ready",), 0.90),
    "network": (("ready",), 0.60),
    "cache": (("network",), 0.70),
    "stack": (("db", "files", "cache"), 1.00),
    "health": (("stack",), 0.50),
    "dns": (("health",), 0.30),
    "report": (("db",), 0.40),
}


class MemoryStore:
    """The state-store contract in a dict (no I/O): measures the engine, not the disk."""

    description = "memory"

    def __init__(self) -> None:
        self.docs: dict[str, dict] = {}
        self.versions: dict[str, str] = {}
        self.writes = 0
        self.lock = threading.Lock()

    def put_json(self, key, document):
        with self.lock:
            self._write(key, document)

    def _write(self, key, document) -> str:
        self.writes += 1
        self.docs[key], self.versions[key] = dict(document), str(self.writes)
        return self.versions[key]

    def get_json(self, key):
        return self.docs.get(key)

    def get_json_versioned(self, key):
        with self.lock:
            return (dict(self.docs[key]), self.versions[key]) if key in self.docs else None

    def put_json_if(self, key, document, version):
        with self.lock:
            if self.versions.get(key) != version:
                return None
            return self._write(key, document)

    def create_json(self, key, document):
        return self.put_json_if(key, document, None) is not None

    def list_keys(self, prefix):
        return sorted(k for k in self.docs if k.startswith(prefix))

    def delete(self, key):
        self.docs.pop(key, None)


def _config(tmp: Path):
    return parse_config(CONFIG, str(tmp / "dr.yaml"), base_dir=tmp)


def _run(text: str, store, tmp: Path):
    config = _config(tmp)
    runbook = parse_runbook(text, "bench.yaml", config)
    ectx = EngineContext(config=config, session=None, store=store, log=lambda m: None, max_parallel=32)
    t0 = time.perf_counter()
    result = run_runbook(runbook, ectx)
    wall = time.perf_counter() - t0
    assert result.status == "completed", result.error
    return result, wall


def noop_runbook(chain: bool) -> str:
    lines = ["version: 1", "name: noops", "steps:"]
    for i in range(20):
        needs = f", needs: [s{i - 1}]" if chain and i else ""
        lines.append(f"  - {{id: s{i}, type: noop{needs}}}")
    return "\n".join(lines) + "\n"


def sleep_runbook() -> str:
    lines = ["version: 1", "name: sleeps", "steps:"]
    for step, (needs, seconds) in DAG.items():
        extra = ", rto_end: true" if step == "dns" else ""
        lines.append(f"  - {{id: {step}, type: sleep, needs: [{', '.join(needs)}], "
                     f"with: {{seconds: {seconds}}}{extra}}}")
    return "\n".join(lines) + "\n"


def bench_overhead() -> None:
    print("1. Engine overhead: 20 noop steps, best of", REPEAT)
    for chain in (True, False):
        for name, make_store in (("LocalStore (fsync)", None), ("in-memory store", MemoryStore)):
            best, events = float("inf"), 0
            for _ in range(REPEAT):
                with tempfile.TemporaryDirectory() as d:
                    tmp = Path(d)
                    store = make_store() if make_store else LocalStore(tmp / "state")
                    result, wall = _run(noop_runbook(chain), store, tmp)
                    best = min(best, wall)
                    events = len(store.get_json(f"journals/{result.run_id}.json")["events"])
            shape = "chain  " if chain else "fan-out"
            verdict = "ok" if best < 1.0 else "OVER the 1 s goal"
            print(f"   {shape}  {name:<19} {best * 1000:7.1f} ms   ({events} journal events; {verdict})")


def bench_overlap() -> None:
    graph = {k: v[0] for k, v in DAG.items()}
    planned = {k: v[1] for k, v in DAG.items()}
    path_len, path = critical_path(graph, planned)
    gate_len, gate_path = critical_path({k: v for k, v in graph.items() if k != "report"}, planned)
    serial = sum(planned.values())
    print(f"\n2. Overlap: {len(DAG)} sleep steps, {serial:.2f} s of sleeps in all")
    print(f"   critical path to the RTO gate (dns): {gate_len:.3f} s  ({' -> '.join(gate_path)})")
    worst = 0.0
    for store_name, make_store in (("LocalStore (fsync)", None), ("in-memory store", MemoryStore)):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            result, wall = _run(sleep_runbook(), make_store() if make_store else LocalStore(tmp / "state"), tmp)
        measured_path = result.critical_path_seconds  # from the steps' measured durations
        over = (result.rto_seconds - gate_len) / gate_len * 100
        worst = max(worst, over)
        print(f"   {store_name:<19} measured RTO {result.rto_seconds:.3f} s ({over:+.1f}% vs the critical path)"
              f"; wall {wall:.3f} s vs whole-DAG critical path {path_len:.3f} s; measured step critical path "
              f"{measured_path:.3f} s; serial would be {serial:.2f} s")
    print(f"   goal: RTO within 5% of the critical path: {'ok' if worst <= 5 else 'MISSED'} (worst {worst:+.1f}%)")


if __name__ == "__main__":
    bench_overhead()
    bench_overlap()
