"""A synthetic run history, for the report's benchmark, tests and previews (no AWS needed).

`history(...)` returns backup records (one per resource per slot, as `dr schedule` writes them)
with a few failures and one outage, plus drill records, all deterministic for a given seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from dr.clock import iso
from dr.state.records import ResourceResult, RunRecord

DRILL_STEPS = (("check-readiness", "readiness"), ("restore-db", "rds-restore"),
               ("launch-stack", "cloudformation"), ("wait-healthy", "health-check"),
               ("switch-dns", "dns"), ("verify-app", "http-check"), ("teardown", "cleanup"))


def backup_record(name: str, kind: str, slot: datetime, *, primary: str, dr: str, ok: bool = True,
                  copy_minutes: float = 8.0, rng: random.Random | None = None) -> RunRecord:
    """One scheduled backup of one resource: snapshot at `slot`, copy in `dr` ~copy_minutes later."""
    rng = rng or random.Random(0)
    started = slot + timedelta(seconds=rng.randint(0, 40))
    finished = started + timedelta(minutes=copy_minutes * (0.6 + 0.8 * rng.random()))
    run_id = f"backup-{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(16):04x}"
    result = ResourceResult(name=name, kind=kind, status="completed" if ok else "failed",
                            started_at=iso(started), finished_at=iso(finished))
    if ok:
        snap = f"dr-{name}-{slot:%Y%m%d-%H%M}"
        result.recovery_points = [
            {"id": snap, "region": primary, "role": "source", "created": iso(started)},
            {"id": snap, "region": dr, "role": "copy", "created": iso(started)}]
        if kind == "s3":
            result.summary = {"copied": rng.randint(0, 50), "in_sync_as_of": iso(started)}
    else:
        result.error = rng.choice(["copy to us-west-2 failed: KMSKeyNotAccessibleFault",
                                   "snapshot quota exceeded (SnapshotQuotaExceeded) after 8 attempts",
                                   "cannot reach the AWS endpoint (EndpointConnectionError)"])
    return RunRecord(run_id=run_id, kind="backup", status=result.status, started_at=iso(started),
                     finished_at=iso(finished), command=f"dr schedule (job {name})", results=[result],
                     error=result.error)


def drill_record(started: datetime, *, rto_objective: timedelta, rpo_objective: timedelta,
                 met: bool = True, rng: random.Random | None = None) -> RunRecord:
    rng = rng or random.Random(1)
    t, results = started, []
    minutes = (0.5, 6, 7, 4, 0.5, 1, 3) if met else (0.5, 9, 14, 11, 0.5, 1.5, 3)
    for (step, kind), m in zip(DRILL_STEPS, minutes):
        end = t + timedelta(minutes=m * (0.8 + 0.4 * rng.random()))
        results.append(ResourceResult(name=step, kind=kind, status="completed", started_at=iso(t),
                                      finished_at=iso(end)))
        if step != "restore-db":  # the stack launch waits for the restore, the rest is serial
            t = end
        else:
            t = t + timedelta(minutes=1)
    finished = max(r.finished_at for r in results)
    rto = (datetime.fromisoformat(finished) - started).total_seconds() - minutes[-1] * 60
    rpo = rng.randint(600, 3000)
    return RunRecord(
        run_id=f"drill-{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(16):04x}", kind="drill",
        status="completed", started_at=iso(started), finished_at=finished, command="dr drill",
        results=results, summary={"rto_seconds": round(rto), "rpo_seconds": rpo,
                                  "rto_objective_seconds": rto_objective.total_seconds(),
                                  "rpo_objective_seconds": rpo_objective.total_seconds(),
                                  "recovery_point_time": iso(started - timedelta(seconds=rpo)),
                                  "met": met and rto <= rto_objective.total_seconds()})


def history(resources: list[tuple[str, str]], now: datetime, days: int, *, every: timedelta =
            timedelta(hours=1), primary: str = "us-east-1", dr: str = "us-west-2",
            failure_rate: float = 0.01, outage: tuple[str, timedelta, timedelta] | None = None,
            drills: int = 3, rto_objective: timedelta = timedelta(minutes=30),
            rpo_objective: timedelta = timedelta(hours=1), seed: int = 7) -> list[RunRecord]:
    """Backups of `resources` [(name, record kind)] every `every` for `days` before `now`.

    `outage` = (name, starts this long before now, lasts this long): that resource's runs fail.
    """
    rng = random.Random(seed)
    records = []
    first = now - timedelta(days=days)
    slot = first - (first - datetime(1970, 1, 1, tzinfo=now.tzinfo)) % every
    while slot + timedelta(minutes=15) < now:
        for name, kind in resources:
            down = outage and outage[0] == name and now - outage[1] <= slot < now - outage[1] + outage[2]
            ok = not down and rng.random() >= failure_rate
            records.append(backup_record(name, kind, slot, primary=primary, dr=dr, ok=ok, rng=rng))
        slot += every
    for i in range(drills):
        start = now - timedelta(days=days) + timedelta(days=days * (i + 1) / (drills + 1), hours=3)
        records.append(drill_record(start, rto_objective=rto_objective, rpo_objective=rpo_objective,
                                    met=i != drills - 2, rng=rng))
    return records
