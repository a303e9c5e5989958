"""The report as one JSON document (also what `dr --output json report` prints)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from dr.report.model import (CopyEvent, DrillReport, Failure, Report, ResourceReport, Verification,
                             VerificationReport)

FORMAT = "dr-report/1"


def report_to_dict(report: Report, *, series: bool = True) -> dict:
    """Times as ISO-8601 UTC, durations in seconds (and `*_human` words next to the big ones)."""
    return {
        "format": FORMAT,
        "generated_at": _t(report.generated_at), "period_start": _t(report.period_start),
        "days": report.days, "breach": report.breach,
        "objectives": {"rpo_seconds": _s(report.rpo_objective), "rto_seconds": _s(report.rto_objective)},
        "regions": {"primary": report.primary_region, "dr": report.dr_region},
        "config": report.config_source,
        "resources": [_resource(r, series) for r in report.resources],
        "drills": [_drill(d) for d in report.drills],
        "run_failures": [_failure(f) for f in report.run_failures],
        "verification": [_verification(v) for v in report.verification],
        "findings": list(report.findings), "notes": list(report.notes),
        "warnings": list(report.warnings), "records_read": report.records_read,
    }


def render_json(report: Report) -> str:
    return json.dumps(report_to_dict(report), indent=2, sort_keys=True) + "\n"


def _resource(r: ResourceReport, series: bool) -> dict:
    d = {"name": r.name, "kind": r.kind, "schedule": r.schedule, "status": r.status,
         "over_objective": r.over_objective, "rpo_objective_seconds": _s(r.objective),
         "rpo_seconds": _s(r.rpo), "newest_copy": _copy(r.newest),
         "worst_rpo_seconds": _s(r.worst_rpo), "worst_rpo_at": _t(r.worst_rpo_at),
         "copies": r.copies, "failures": r.failures,
         "recent_failures": [_failure(f) for f in r.recent_failures],
         "covered_from": _t(r.covered_from)}
    if series:
        d["rpo_series"] = [[_t(t), None if v is None else round(v)] for t, v in r.series]
    return d


def _verification(v: VerificationReport) -> dict:
    return {"resource": v.resource, "schedule": v.schedule or None, "newest_backup": v.newest_backup,
            "newest_status": v.newest_status, "newest_verified": _check(v.newest_verified),
            "verified_rpo_seconds": _s(v.verified_rpo), "last": _check(v.last),
            "verifications": v.verifications, "failed": v.failed}


def _check(c: Verification | None) -> dict | None:
    if c is None:
        return None
    return {"backup_id": c.backup_id, "backup_created": _t(c.backup_created), "status": c.status,
            "at": _t(c.at), "run_id": c.run_id, "restore_seconds": c.restore_seconds,
            "verify_seconds": c.verify_seconds, "error": c.error}


def _copy(e: CopyEvent | None) -> dict | None:
    if e is None:
        return None
    return {"id": e.point_id, "region": e.region, "point_time": _t(e.point_time),
            "available_at": _t(e.available_at), "run_id": e.run_id}


def _drill(d: DrillReport) -> dict:
    return {"run_id": d.run_id, "started_at": _t(d.started_at), "finished_at": _t(d.finished_at),
            "status": d.status, "met": d.met, "rto_seconds": _s(d.rto), "rto_traffic_seconds": _s(d.rto_traffic),
            "rto_objective_seconds": _s(d.rto_objective), "rpo_seconds": _s(d.rpo),
            "rpo_objective_seconds": _s(d.rpo_objective),
            "recovery_point_time": _t(d.recovery_point_time), "error": d.error,
            "steps": [{"name": s.name, "kind": s.kind, "status": s.status,
                       "started_at": _t(s.started_at), "finished_at": _t(s.finished_at),
                       "duration_seconds": _s(s.duration), "error": s.error} for s in d.steps]}


def _failure(f: Failure) -> dict:
    return {"resource": f.resource or None, "at": _t(f.at), "run_id": f.run_id, "error": f.error}


def _t(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _s(td: timedelta | None) -> float | None:
    if td is None:
        return None
    seconds = td.total_seconds()
    return int(seconds) if seconds == int(seconds) else round(seconds, 3)
