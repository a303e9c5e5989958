"""The report for a terminal: fixed sections, `<none>`/`<never>` for empty values."""

from __future__ import annotations

from dr.config import format_duration
from dr.report.model import DrillReport, Report, human, period, plural, short, stamp


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return lines


def resource_rows(report: Report) -> list[list[str]]:
    return [[r.name, r.kind, r.schedule or "-", stamp(r.newest.point_time) if r.newest else "<never>",
             human(r.rpo), format_duration(r.objective), r.status.upper() if r.over_objective else r.status,
             human(r.worst_rpo), str(r.copies), str(r.failures)] for r in report.resources]


RESOURCE_HEADERS = ["RESOURCE", "KIND", "SCHEDULE", "NEWEST COPY", "RPO NOW", "OBJECTIVE", "STATUS",
                    "WORST RPO", "COPIES", "FAILURES"]
DRILL_HEADERS = ["DATE", "RUN", "OUTCOME", "RTO HEALTHY", "RTO TRAFFIC", "RTO OBJECTIVE", "RPO",
                 "RPO OBJECTIVE"]
STEP_HEADERS = ["STEP", "TYPE", "STATUS", "START", "DURATION"]


VERIFY_HEADERS = ["RESOURCE", "SCHEDULE", "NEWEST BACKUP", "VERIFIED", "NEWEST VERIFIED",
                  "VERIFIED RPO", "LAST VERIFIED", "RESTORE", "TOOK", "RUNS", "FAILED"]


def verify_rows(report: Report) -> list[list[str]]:
    """Per MySQL resource: is the newest backup proven restorable, and what proving it costs."""
    rows = []
    for v in report.verification:
        best, last = v.newest_verified, v.last
        rows.append([v.resource, v.schedule or "manual", v.newest_backup or "<none>",
                     {"verified": "yes", "failed": "FAILED", "unverified": "not yet",
                      "no-backup": "-"}.get(v.newest_status, v.newest_status),
                     best.backup_id if best else "<never>", human(v.verified_rpo),
                     stamp(last.at) if last else "<never>",
                     _secs(last.restore_seconds) if last else "-",
                     _secs(last.verify_seconds) if last else "-",
                     str(v.verifications), str(v.failed)])
    return rows


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def drill_rows(report: Report) -> list[list[str]]:
    return [[stamp(d.started_at), d.run_id, outcome(d), human(d.rto), human(d.rto_traffic),
             format_duration(d.rto_objective), rpo_text(d), format_duration(d.rpo_objective)]
            for d in report.drills]


def step_rows(drill: DrillReport) -> list[list[str]]:
    rows = []
    for s in drill.steps:
        offset = s.started_at - drill.started_at if s.started_at else None
        rows.append([s.name, s.kind, s.status, f"+{short(offset)}" if offset is not None else "<none>",
                     short(s.duration) if s.duration is not None else "<none>"])
    return rows


def outcome(d: DrillReport) -> str:
    return "met" if d.met else f"NOT MET ({d.status})"


def rpo_text(d: DrillReport) -> str:
    """The measured RPO, or why there is none: `n/a` (the drill restores no data), `unknown`."""
    if d.rpo_status == "not applicable":
        return "n/a"
    if d.rpo is None:
        return "unknown"
    return human(d.rpo)


def headline(report: Report) -> str:
    if report.breach:
        return f"Status: OVER OBJECTIVE ({plural(len(report.findings), 'finding')})"
    return "Status: within objectives"


def render_text(report: Report) -> str:
    out = [f"DR report: {period(report.days)} ({stamp(report.period_start)} to "
           f"{stamp(report.generated_at)})",
           f"Objectives: RPO {format_duration(report.rpo_objective)}, RTO "
           f"{format_duration(report.rto_objective)}. Copies from {report.primary_region} to "
           f"{report.dr_region}.", headline(report), "", "Resources (RPO = age of the newest copy in "
           f"{report.dr_region})"]
    out += ["  " + line for line in table(RESOURCE_HEADERS, resource_rows(report))]
    if not report.resources:
        out.append("  <none>: dr.yaml protects no resources")
    out += ["", "Drills"]
    if report.drills:
        out += ["  " + line for line in table(DRILL_HEADERS, drill_rows(report))]
        last = report.drills[0]
        out += ["", f"Last drill, step by step ({last.run_id})"]
        out += ["  " + line for line in table(STEP_HEADERS, step_rows(last))] if last.steps else ["  <none>"]
    else:
        out.append("  <none>")
    if report.verification:
        out += ["", "Verification (MySQL backups restored into a scratch database and compared; "
                "VERIFIED RPO = age of the newest proven backup)"]
        out += ["  " + line for line in table(VERIFY_HEADERS, verify_rows(report))]
    failures = [(r.name, f) for r in report.resources for f in r.recent_failures]
    failures += [("(run)", f) for f in report.run_failures]
    out += ["", f"Failures in the period ({sum(r.failures for r in report.resources)})"]
    out += [f"  {stamp(f.at)}  {name}  {f.run_id}: {first_line(f.error)}" for name, f in failures] or ["  <none>"]
    out += ["", "Findings (over objective)"] + ([f"  - {f}" for f in report.findings] or ["  <none>"])
    if report.notes:
        out += ["", "Notes"] + [f"  - {n}" for n in report.notes]
    if report.warnings:
        out += ["", "Warnings"] + [f"  - {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "failed"
