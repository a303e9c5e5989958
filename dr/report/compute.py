"""The RPO/RTO report, computed from run records alone. Pure: no I/O, no clock.

RPO is measured from the copies that exist: a copy in the DR region holds data as of its
*point time* (an RDS snapshot's creation time; for S3, when a complete sync began listing the
source) and is usable from its *available* time (when its run finished). At any moment t the
RPO is t minus the newest point time available at t; it grows until the next copy lands, so the
worst RPO of a period is found just before each copy arrives, and at `now`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta, timezone

from dr.config import Config, format_duration
from dr.config import advice as config_warnings
from dr.report.model import (
    STATUS_BREACH,
    STATUS_NO_COPY,
    STATUS_OK,
    STATUS_UNMEASURED,
    CopyEvent,
    DrillReport,
    DrillStep,
    Failure,
    Report,
    ResourceReport,
    Verification,
    VerificationReport,
    human,
    stamp,
)
from dr.clock import parse_iso_or_none as _ts
from dr.state.records import RunRecord

UTC = timezone.utc
SERIES_POINTS = 240  # intervals per RPO chart
RECENT_FAILURES = 5
NO_DRILL_NOTE_AFTER = timedelta(days=90)


def compute_report(records: Iterable[RunRecord], config: Config, now: datetime, days: int = 30,
                   *, warnings: Iterable[str] = (), series_points: int = SERIES_POINTS) -> Report:
    """The report for the `days` before `now`, from backup and drill run records (any order).

    Records of other kinds are ignored. Records older than the period still count for the RPO
    (the newest copy may be older than the period); pass them when you have them.
    """
    if now.tzinfo is None:
        raise ValueError("compute_report needs an aware `now`")
    start = now - timedelta(days=days)
    dr_region = config.regions.dr
    events: dict[str, list[CopyEvent]] = defaultdict(list)
    failures: dict[str, list[Failure]] = defaultdict(list)
    run_failures: list[Failure] = []
    drills: list[RunRecord] = []
    checks: dict[str, list[Verification]] = defaultdict(list)
    made: dict[str, list[tuple[datetime, str]]] = defaultdict(list)  # (created, backup id)
    verifying, verified_resources = _verified_kinds(config)
    count = 0
    for record in records:
        count += 1
        if record.kind == "drill":
            drills.append(record)
        elif record.kind == "backup":
            _collect(record, dr_region, events, failures, run_failures, start, now)
            for result in record.results:  # verified backups wherever they are (file:// too)
                s = result.summary if isinstance(result.summary, dict) else {}
                created = _ts(s.get("created"))
                if result.kind in verifying and result.status == "completed" and created \
                        and created <= now and isinstance(s.get("backup_id"), str):
                    made[result.name].append((created, s["backup_id"]))
        elif record.kind == "verify":
            for v in verifications(record, verifying):
                if v.at <= now:
                    checks[v.resource].append(v)

    resources = [_resource(name, kind, schedule, config.objectives.rpo, events.get(name, []),
                           failures.get(name, []), start, now, series_points)
                 for name, kind, schedule in _configured(config)]
    by_name = {r.name: r for r in resources}
    verification = [_verification(m, max(made[m.name], default=(None, None))[1]
                                  or (by_name[m.name].newest.point_id if by_name[m.name].newest
                                      else None), checks.get(m.name, []), start, now)
                    for m in verified_resources]
    drill_reports = _drills(drills, config, start)
    findings, notes = _findings(resources, drill_reports, config, now)
    _verification_findings(verification, config, now, findings, notes)
    return Report(
        generated_at=now, period_start=start, days=days, rpo_objective=config.objectives.rpo,
        rto_objective=config.objectives.rto, primary_region=config.regions.primary,
        dr_region=dr_region, config_source=config.source, resources=tuple(resources),
        drills=tuple(drill_reports), findings=tuple(findings), notes=tuple(notes),
        run_failures=tuple(sorted(run_failures, key=lambda f: f.at, reverse=True)[:RECENT_FAILURES]),
        warnings=tuple(warnings), records_read=count, verification=tuple(verification))


# --- copies and failures from backup records ------------------------------------------------------


def copy_events(record: RunRecord, dr_region: str) -> list[CopyEvent]:
    """The successful copies a backup record holds in the DR region (malformed points skipped)."""
    out = []
    for result in record.results:
        if result.status != "completed":
            continue
        points = result.recovery_points or ()
        copies = [p for p in points if isinstance(p, dict) and p.get("region") == dr_region
                  and p.get("role") != "source"]
        if not copies:
            continue
        finished = _ts(result.finished_at) or _ts(record.finished_at)
        summary = result.summary if isinstance(result.summary, dict) else {}
        in_sync = _ts(summary.get("in_sync_as_of"))  # a copy whose kind tracks it (S3)
        for point in copies:
            point_time = in_sync or _first_created(point, points)
            if point_time is None:
                continue
            available = finished if finished is not None and finished > point_time else point_time
            out.append(CopyEvent(result.name, point_time, available, str(point.get("id") or record.run_id),
                                 dr_region, record.run_id))
    return out


def _first_created(point: dict, points) -> datetime | None:
    """When this recovery point's data was taken. A copied RDS snapshot's creation time is when
    the copy was made; the data is as old as the source snapshot of the same id, recorded next
    to it, so the earliest time among points with this id is the one that counts."""
    own = _ts(point.get("created"))
    pid = point.get("id")
    if pid is None:
        return own
    for other in points:
        if other is not point and isinstance(other, dict) and other.get("id") == pid:
            created = _ts(other.get("created"))
            if created is not None and (own is None or created < own):
                own = created
    return own


def _collect(record: RunRecord, dr_region: str, events, failures, run_failures, start, now) -> None:
    for event in copy_events(record, dr_region):
        if event.available_at <= now:
            events[event.resource].append(event)
    if record.status == "completed":
        return
    abandoned = isinstance(record.summary, dict) and bool(record.summary.get("abandoned"))
    for result in record.results:
        # a run whose process died (marked by dr.backup.cleanup) failed as surely as one that erred
        if result.status == "failed" or (abandoned and result.status == "interrupted"):
            at = _ts(result.finished_at) or _ts(result.started_at) or _ts(record.started_at)
            if at is not None and start <= at <= now:
                failures[result.name].append(Failure(result.name, at, record.run_id,
                                                     result.error or record.error or "failed"))
    started = _ts(record.started_at)
    if record.status == "failed" and not record.results and started and start <= started <= now:
        run_failures.append(Failure("", _ts(record.finished_at) or started, record.run_id,
                                    record.error or "failed"))


def _configured(config: Config) -> list[tuple[str, str, str]]:
    from dr.backup.kinds import KINDS

    out = [(r.name, kind.name, kind.schedule_text(r)) for kind in KINDS.values()
           for r in kind.resources(config)]
    out += [(r.name, "mongo", "") for r in config.mongo]  # watched, not backed up: no RPO measured
    return out


def _verified_kinds(config: Config) -> tuple[set[str], list]:
    """The kinds their results record (e.g. mysql) and the resources, of the backups that are
    restored and compared (`dr backup verify`)."""
    from dr.backup.kinds import KINDS

    resources = [(kind, r) for kind in KINDS.values() if kind.verifies_backups
                 for r in kind.resources(config)]
    return {kind.record_kind(r) for kind, r in resources}, [r for _, r in resources]


# --- one resource ---------------------------------------------------------------------------------


def _resource(name: str, kind: str, schedule: str, objective: timedelta, events: list[CopyEvent],
              failures: list[Failure], start: datetime, now: datetime, points: int) -> ResourceReport:
    events = sorted(events, key=lambda e: (e.available_at, e.point_time))
    newest = max(events, key=lambda e: e.point_time) if events else None
    rpo = now - newest.point_time if newest else None
    worst, worst_at, covered_from = worst_rpo(events, start, now)
    if newest is None:
        status = STATUS_UNMEASURED if kind == "mongo" else STATUS_NO_COPY
    else:
        status = STATUS_OK if rpo <= objective else STATUS_BREACH
    failures = sorted(failures, key=lambda f: f.at, reverse=True)
    return ResourceReport(
        name=name, kind=kind, schedule=schedule, objective=objective, status=status, newest=newest,
        rpo=rpo, worst_rpo=worst, worst_rpo_at=worst_at,
        copies=len({e.point_id for e in events if start <= e.available_at <= now}),  # points, not runs
        failures=len(failures), recent_failures=tuple(failures[:RECENT_FAILURES]),
        series=tuple(rpo_series(events, start, now, points)), covered_from=covered_from)


def worst_rpo(events: list[CopyEvent], start: datetime, now: datetime
              ) -> tuple[timedelta | None, datetime | None, datetime | None]:
    """(worst RPO in [start, now], when it peaked, first copy if none existed at `start`).

    `events` sorted by available_at. Before the first copy ever, the RPO is undefined (there
    was nothing to restore): the period is measured from that first copy.
    """
    best: datetime | None = None
    worst: timedelta | None = None
    worst_at: datetime | None = None
    covered_from: datetime | None = None
    for e in events:
        if e.available_at <= start:
            best = e.point_time if best is None else max(best, e.point_time)
            continue
        if best is None:
            covered_from = covered_from or e.available_at
        elif worst is None or e.available_at - best > worst:
            worst, worst_at = e.available_at - best, e.available_at
        best = e.point_time if best is None else max(best, e.point_time)
    if best is not None and (worst is None or now - best > worst):
        worst, worst_at = now - best, now
    return worst, worst_at, covered_from


def rpo_series(events: list[CopyEvent], start: datetime, now: datetime, points: int
               ) -> list[tuple[datetime, float | None]]:
    """The worst RPO (seconds) in each of `points` equal intervals of [start, now]; None where no
    copy existed yet. `events` sorted by available_at."""
    if points <= 0 or now <= start:
        return []
    width = (now - start) / points
    keys = [e.available_at for e in events]
    i = bisect_right(keys, start)
    best = max((e.point_time for e in events[:i]), default=None)
    out = []
    for k in range(points):
        end = now if k == points - 1 else start + width * (k + 1)
        peak: float | None = None
        while i < len(events) and events[i].available_at <= end:
            e = events[i]
            if best is not None:
                peak = max(peak or 0.0, (e.available_at - best).total_seconds())
            best = e.point_time if best is None else max(best, e.point_time)
            i += 1
        if best is not None:
            peak = max(peak or 0.0, (end - best).total_seconds())
        out.append((end, peak))
    return out


# --- verification of MySQL backups ----------------------------------------------------------------


def verifications(record: RunRecord, kinds: Collection[str] | None = None) -> list[Verification]:
    """The per-backup outcomes a `verify` run record holds (attempts that could not judge the
    backup, e.g. the verify server unreachable, hold none); `kinds`: only results of these."""
    out = []
    for result in record.results:
        s = result.summary if isinstance(result.summary, dict) else {}
        backup = s.get("backup_id")
        at = _ts(result.finished_at) or _ts(record.finished_at)
        if (kinds is not None and result.kind not in kinds) or not isinstance(backup, str) \
                or at is None:
            continue
        status = s.get("verdict")
        if "verdict" not in s:  # recorded before verdicts: judge from the comparison
            status = ("verified" if s.get("ok") else "failed") if "databases" in s else None
        if status not in ("verified", "failed"):
            continue
        out.append(Verification(result.name, backup, _ts(s.get("created")), status, at,
                                record.run_id, _num(s.get("restore_seconds")),
                                _num(s.get("verify_seconds")),
                                None if status == "verified" else (result.error or "failed")))
    return out


def _verification(resource, newest_id: str | None, found: list[Verification], start: datetime,
                  now: datetime) -> VerificationReport:
    latest: dict[str, Verification] = {}
    for v in sorted(found, key=lambda v: v.at):
        latest[v.backup_id] = v  # a backup's newest verification decides
    if newest_id is None:
        status = "no-backup"
    else:
        status = latest[newest_id].status if newest_id in latest else "unverified"
    good = [v for v in latest.values() if v.status == "verified" and v.backup_created]
    best = max(good, key=lambda v: v.backup_created, default=None)
    in_period = [v for v in found if v.at >= start]
    return VerificationReport(
        resource=resource.name, schedule=str(resource.verify_every or ""),
        newest_backup=newest_id, newest_status=status, newest_verified=best,
        verified_rpo=now - best.backup_created if best else None,
        last=max(found, key=lambda v: v.at, default=None),
        verifications=len(in_period), failed=sum(1 for v in in_period if v.status == "failed"))


def _verification_findings(reports: list[VerificationReport], config: Config, now: datetime,
                           findings: list[str], notes: list[str]) -> None:
    """A newest backup that failed its verification is a finding: the newest recovery point is
    not one. Never verified, or verification that stopped, are notes."""
    every = {m.name: m.verify_every for m in config.mysql}
    for v in reports:
        if v.newest_status == "failed":
            bad = v.last if v.last and v.last.backup_id == v.newest_backup else None
            findings.append(f"{v.resource}: the newest backup {v.newest_backup} failed its "
                            "verification" + (f" on {stamp(bad.at)}: {bad.error}" if bad else "")
                            + (f"; the newest verified backup is {human(v.verified_rpo)} old"
                               if v.verified_rpo is not None else "; no backup is verified"))
        elif v.newest_verified is None and v.newest_status != "no-backup":
            notes.append(f"{v.resource}: no backup was restored and compared in the period, so none "
                         "is proven restorable (mysql[].verify.every schedules it)")
        elif v.newest_verified is not None and every.get(v.resource) is not None:
            age = now - v.newest_verified.at
            if age > 2 * every[v.resource].nominal_interval():
                notes.append(f"{v.resource}: the last successful verification was {human(age)} ago, "
                             f"though it is scheduled {every[v.resource]}: has it stopped?")


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- drills ---------------------------------------------------------------------------------------


def _drills(records: list[RunRecord], config: Config, start: datetime) -> list[DrillReport]:
    """Drills in the period, newest first; the newest drill overall even if older than that."""
    parsed = [d for d in (_drill(r, config) for r in records) if d is not None]
    parsed.sort(key=lambda d: d.started_at, reverse=True)
    in_period = [d for d in parsed if d.started_at >= start]
    return in_period or parsed[:1]


def _drill(record: RunRecord, config: Config) -> DrillReport | None:
    started = _ts(record.started_at)
    if started is None:
        return None
    s = record.summary if isinstance(record.summary, dict) else {}
    rto, rpo = _seconds(s.get("rto_seconds")), _seconds(s.get("rpo_seconds"))
    traffic = _seconds(s.get("rto_traffic_seconds"))
    rto_obj = _seconds(s.get("rto_objective_seconds")) or config.objectives.rto
    rpo_obj = _seconds(s.get("rpo_objective_seconds")) or config.objectives.rpo
    rpo_status = s.get("rpo_status") or ("measured" if rpo is not None else "unknown")
    met = s.get("met")
    if not isinstance(met, bool):
        judged = traffic if traffic is not None else rto  # traffic moved, when a DNS step ran
        met = (record.status == "completed" and judged is not None and judged <= rto_obj
               and (rpo is None or rpo <= rpo_obj))
    steps = tuple(DrillStep(name=r.name, kind=r.kind, status=r.status, started_at=_ts(r.started_at),
                            finished_at=_ts(r.finished_at), error=r.error) for r in record.results)
    return DrillReport(run_id=record.run_id, started_at=started, finished_at=_ts(record.finished_at),
                       status=record.status, met=met, rto=rto, rto_objective=rto_obj, rpo=rpo,
                       rpo_objective=rpo_obj, recovery_point_time=_ts(s.get("recovery_point_time")),
                       steps=steps, error=record.error, rto_traffic=traffic, rpo_status=rpo_status,
                       rpo_note=str(s.get("rpo_note") or ""))


# --- findings -------------------------------------------------------------------------------------


def _findings(resources: list[ResourceReport], drills: list[DrillReport], config: Config,
              now: datetime) -> tuple[list[str], list[str]]:
    findings, notes = [], []
    for r in resources:
        if r.status == STATUS_NO_COPY:
            findings.append(f"{r.name}: no copy in {config.regions.dr} (objective "
                            f"{format_duration(r.objective)})")
        elif r.status == STATUS_BREACH:
            findings.append(f"{r.name}: newest copy in {config.regions.dr} is {human(r.rpo)} old, over "
                            f"the RPO objective {format_duration(r.objective)}")
        elif r.status == STATUS_UNMEASURED:
            notes.append(f"{r.name}: replicated, not copied by dr; `dr mongo status` shows its lag")
        if r.worst_rpo is not None and r.worst_rpo > r.objective and r.status == STATUS_OK:
            notes.append(f"{r.name}: within objective now, but the RPO reached {human(r.worst_rpo)} "
                         f"on {stamp(r.worst_rpo_at)}")
    last = drills[0] if drills else None
    if last is None:
        notes.append("no drill recorded: run `dr drill` to measure the RTO")
    else:
        if not last.met:
            findings.append(f"last drill {last.run_id} ({stamp(last.started_at)}) did not meet the "
                            f"objectives: {'; '.join(_drill_misses(last)) or f'status {last.status}'}")
        if now - last.started_at > NO_DRILL_NOTE_AFTER:
            notes.append(f"last drill was {human(now - last.started_at)} ago: drill at least quarterly")
    notes += [w for w in config_warnings(config) if "RPO" in w]  # schedules slower than the RPO
    return findings, notes


def _drill_misses(drill: DrillReport) -> list[str]:
    """What a drill missed, each objective on its own: never blame the RTO for the RPO."""
    out = []
    if drill.status != "completed":
        out.append(f"status {drill.status}")
    rto = drill.rto_traffic if drill.rto_traffic is not None else drill.rto
    if rto is None:
        out.append("RTO not reached")
    elif rto > drill.rto_objective:
        out.append(f"RTO {human(rto)} vs objective {format_duration(drill.rto_objective)}")
    if drill.rpo_status == "unknown":
        out.append(f"RPO unknown ({drill.rpo_note or 'not measured'})")
    elif drill.rpo is not None and drill.rpo > drill.rpo_objective:
        out.append(f"RPO {human(drill.rpo)} vs objective {format_duration(drill.rpo_objective)}")
    return out


# --- helpers --------------------------------------------------------------------------------------


def _seconds(value) -> timedelta | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return timedelta(seconds=value)
