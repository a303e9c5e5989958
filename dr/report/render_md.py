"""The report as Markdown (GitHub-flavoured tables): for a wiki, a ticket or an audit folder."""

from __future__ import annotations

from dr.config import format_duration
from dr.report.model import Report, period, stamp
from dr.report.render_text import (
    DRILL_HEADERS,
    RESOURCE_HEADERS,
    STEP_HEADERS,
    VERIFY_HEADERS,
    drill_rows,
    first_line,
    headline,
    resource_rows,
    step_rows,
    verify_rows,
)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_md(report: Report) -> str:
    out = [f"# DR report: {period(report.days)}", "",
           f"{stamp(report.period_start)} to {stamp(report.generated_at)}. Objectives: RPO "
           f"**{format_duration(report.rpo_objective)}**, RTO **{format_duration(report.rto_objective)}**. "
           f"Copies from `{report.primary_region}` to `{report.dr_region}`.", "",
           f"**{headline(report)}**", ""]
    if report.findings:
        out += [f"- {_cell(f)}" for f in report.findings] + [""]
    out += ["## Resources", "", f"RPO = the age of the newest copy in `{report.dr_region}`; worst RPO "
            f"over the period, from the gaps between successful copies.", ""]
    out += md_table(RESOURCE_HEADERS, resource_rows(report)) if report.resources else ["_none_"]
    if report.verification:
        out += ["", "## Verification", "", "MySQL backups restored into a scratch database and "
                "compared with their manifest; verified RPO = the age of the newest proven backup.", ""]
        out += md_table(VERIFY_HEADERS, verify_rows(report))
    out += ["", "## Drills", ""]
    if report.drills:
        out += md_table(DRILL_HEADERS, drill_rows(report))
        last = report.drills[0]
        out += ["", f"### Last drill, step by step (`{last.run_id}`)", ""]
        out += md_table(STEP_HEADERS, step_rows(last)) if last.steps else ["_none_"]
    else:
        out.append("_none_")
    failures = [(r.name, f) for r in report.resources for f in r.recent_failures]
    failures += [("(run)", f) for f in report.run_failures]
    out += ["", "## Failures in the period", ""]
    out += (md_table(["TIME", "RESOURCE", "RUN", "ERROR"],
                     [[stamp(f.at), n, f.run_id, first_line(f.error)] for n, f in failures])
            if failures else ["_none_"])
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {_cell(n)}" for n in report.notes]
    if report.warnings:
        out += ["", "## Warnings", ""] + [f"- {_cell(w)}" for w in report.warnings]
    return "\n".join(out) + "\n"
