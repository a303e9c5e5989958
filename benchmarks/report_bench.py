"""Report and scheduler figures: prints them, asserts nothing.

1. A report over one year of hourly backup records for 20 resources (~175,000 records): time to
   compute it and render each format (goal: under 3 s), for a 30-day and a 365-day period.
2. With --store: the same records as files in a local state directory, and the time to load
   them as `dr report` does (reading the period's records, skipping the rest by key).
3. An idle scheduler's CPU use over --idle-seconds (goal: under 1% of a core), measured with
   resource.getrusage around a running `Scheduler.run_forever` with 20 jobs and /metrics served.

    python benchmarks/report_bench.py [--store] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dr.config import parse_config  # noqa: E402
from dr.report import FORMATS, compute_report, render  # noqa: E402
from tests.support.report_history import history  # noqa: E402

RESOURCES = 20
NOW = datetime(2026, 11, 26, 12, 30, tzinfo=timezone.utc)


def config_text(state: Path) -> str:
    rds = "".join(f"  - {{name: db-{i:02d}, instance: prod-db-{i:02d}, schedule: every 1h}}\n"
                  for i in range(RESOURCES // 2))
    s3 = "".join(f"  - {{name: bucket-{i:02d}, source: src-{i:02d}, destination: dst-{i:02d}, "
                 f"schedule: every 1h}}\n" for i in range(RESOURCES - RESOURCES // 2))
    return (f"version: 1\nregions: {{primary: us-east-1, dr: us-west-2}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
            f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: \"{state}\"}}\nrds:\n{rds}s3:\n{s3}")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_report(config, records) -> None:
    print(f"records: {len(records):,} ({RESOURCES} resources, hourly, one year, 12 drills)")
    for days in (30, 365):
        report, compute_s = timed(lambda: compute_report(records, config, NOW, days))
        line = [f"compute {compute_s:.2f}s"]
        total = compute_s
        for fmt in FORMATS:
            text, render_s = timed(lambda: render(report, fmt))
            total += render_s
            line.append(f"{fmt} {render_s:.3f}s ({len(text) / 1024:.0f} KiB)")
        worst = compute_s + max(timed(lambda: render(report, f))[1] for f in FORMATS)
        print(f"  --days {days:>3}: " + ", ".join(line))
        print(f"             compute + slowest render: {worst:.2f}s (goal < 3 s); all formats: {total:.2f}s")


def bench_store(config, records, state: Path) -> None:
    from dr.report.load import load_records
    from dr.state.local import LocalStore

    runs = state / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _, write_s = timed(lambda: [(runs / f"{r.run_id}.json").write_text(json.dumps(r.to_dict()))
                                for r in records])
    print(f"store: wrote {len(records):,} record files in {write_s:.1f}s")
    store = LocalStore(state)
    for days in (30, 365):
        loaded, load_s = timed(lambda: load_records(store, config, NOW, days))
        report, compute_s = timed(lambda: compute_report(loaded.records, config, NOW, days))
        _, html_s = timed(lambda: render(report, "html"))
        print(f"  --days {days:>3}: load {load_s:.2f}s ({loaded.read:,} records read), compute "
              f"{compute_s:.2f}s, html {html_s:.2f}s: `dr report` end to end {load_s + compute_s + html_s:.2f}s")


def bench_idle(config, state: Path, seconds: float) -> None:
    from dr.clock import Clock
    from dr.context import make_context
    from dr.scheduler import jobs as J
    from dr.scheduler.daemon import JobOutcome, Options, Scheduler
    from dr.obs.http import HealthServer
    from dr.scheduler.spool import SpoolingStore
    from dr.state.local import LocalStore

    ctx = make_context(config, clock=Clock())
    store = LocalStore(state / "idle")
    ctx._store = SpoolingStore(lambda: store, state / "spool")
    jobs = J.jobs_from_config(config)
    now = ctx.clock.now()
    for job in jobs:  # this slot already ran: the scheduler has nothing to do but wait
        store.create_json(J.lock_key(job.name, J.slot_start(job.schedule, now)), {"status": "completed"})
    scheduler = Scheduler(ctx, jobs, options=Options(owner="bench"),
                          runner=lambda c, j, s: JobOutcome("completed"), publisher=None)
    server = HealthServer("127.0.0.1", 0, scheduler.health, scheduler.render_metrics).start()
    thread = threading.Thread(target=scheduler.run_forever, daemon=True)
    thread.start()
    time.sleep(2.0)  # past start-up (state loading, first RPO refresh)
    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(seconds)
    after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.monotonic() - wall
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    scheduler.stop()
    thread.join(10)
    server.stop()
    ran = [e for e in scheduler.events if e["event"] == "started"]
    print(f"idle scheduler: {len(jobs)} jobs, /metrics served, {elapsed:.1f}s: CPU {cpu * 1000:.1f} ms "
          f"= {100 * cpu / elapsed:.3f}% of a core (goal < 1%){'; jobs ran: ' + str(len(ran)) if ran else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", action="store_true", help="also time loading the records from files")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dr-report-bench-") as tmp:
        state = Path(tmp)
        config = parse_config(config_text(state / "state"), source="bench.yaml")
        names = [(r.name, "rds-instance") for r in config.rds] + [(r.name, "s3") for r in config.s3]
        records, gen_s = timed(lambda: history(names, NOW, 365, failure_rate=0.01, drills=12,
                                               outage=(names[3][0], timedelta(days=40), timedelta(hours=7))))
        print(f"(generated the history in {gen_s:.1f}s)")
        bench_report(config, records)
        if args.store:
            bench_store(config, records, state / "state")
        if args.idle_seconds > 0:
            bench_idle(config, state, args.idle_seconds)


if __name__ == "__main__":
    main()
