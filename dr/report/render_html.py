"""The report as one self-contained HTML file: inline CSS and SVG, no JavaScript, no external
assets (it opens offline, attaches to an email, and prints on A4 without losing a chart)."""

from __future__ import annotations

from html import escape

import dr
from dr.config import format_duration
from dr.report.model import Report, ResourceReport, human, period, plural, stamp
from dr.report.render_text import (VERIFY_HEADERS, first_line, headline, outcome, rpo_text,
                                   verify_rows)
from dr.report.svg import STATUS_COLOR, gantt, gantt_legend, rpo_chart

CSS = """
:root{--ok:#2e7d32;--bad:#c62828;--warn:#ef6c00;--ink:#1f2933;--mute:#616e7c;--line:#d9e2ec;--bg:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;-webkit-print-color-adjust:exact;print-color-adjust:exact}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}h3{font-size:15px;margin:0 0 6px}
.sub{color:var(--mute);margin:0}
.banner{margin:16px 0;padding:12px 16px;border-radius:6px;color:#fff;font-weight:600}
.banner.ok{background:var(--ok)}.banner.bad{background:var(--bad)}
.banner ul{margin:6px 0 0;padding-left:20px;font-weight:400}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:14px 16px;margin:0 0 14px;
break-inside:avoid;page-break-inside:avoid}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff}
.pill.ok,.pill.met,.pill.completed{background:var(--ok)}
.pill.breach,.pill.no-copy,.pill.failed,.pill.not-met{background:var(--bad)}
.pill.unmeasured,.pill.interrupted,.pill.skipped{background:#9aa5b1}
.meta{color:var(--mute);font-size:12px;margin:0 0 6px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#eef2f6;stroke-width:1}svg .axis,svg .tick{stroke:#9aa5b1;stroke-width:1}
svg text{font:11px -apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:var(--mute)}
svg .ylab{text-anchor:end}svg .xlab{text-anchor:middle}
svg .over{fill:#fdecea}svg .nocopy{fill:#eceff1}
svg .area{fill:#bbdefb;opacity:.75}svg .line{fill:none;stroke:#1565c0;stroke-width:1.6}
svg .objective{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:6 4}
svg .measured{stroke:var(--ink);stroke-width:1.5;stroke-dasharray:2 3}
svg .objlab{fill:var(--bad);font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
svg .objlab.end{text-anchor:end}
svg .empty{text-anchor:middle;font-size:13px}
svg .glab{text-anchor:end;fill:var(--ink);font-size:12px}svg .gkind{fill:var(--mute);font-size:11px}
svg .gdur{font-size:11px}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:var(--mute)}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:-1px;border-radius:2px}
ul.plain{margin:0;padding-left:18px}
footer{color:var(--mute);font-size:12px;margin-top:28px}
@page{size:A4;margin:12mm}
@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}
.card{border-color:#bbb}h2{break-after:avoid;page-break-after:avoid}tr{break-inside:avoid}}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _pill(status: str, text: str | None = None) -> str:
    return f'<span class="pill {_e(status)}">{_e(text or status)}</span>'


def _table(headers: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _resources(report: Report) -> str:
    rows = [[f"<b>{_e(r.name)}</b>", _e(r.kind), _e(r.schedule or "-"),
             _e(stamp(r.newest.point_time)) if r.newest else "&lt;never&gt;", _e(human(r.rpo)),
             _e(format_duration(r.objective)), _pill(r.status), _e(human(r.worst_rpo)), str(r.copies),
             str(r.failures)] for r in report.resources]
    return _table(["Resource", "Kind", "Schedule", f"Newest copy in {report.dr_region}", "RPO now",
                   "Objective", "Status", f"Worst RPO ({report.days}d)", "Copies", "Failures"],
                  rows, numeric=(7, 8, 9))


def _chart_card(r: ResourceReport, report: Report) -> str:
    meta = (f"RPO now {_e(human(r.rpo))} · worst {_e(human(r.worst_rpo))}"
            + (f" on {_e(stamp(r.worst_rpo_at))}" if r.worst_rpo_at else "")
            + f" · {plural(r.copies, 'copy', 'copies')}, {plural(r.failures, 'failed run')}")
    if r.covered_from:
        meta += f" · first copy {_e(stamp(r.covered_from))}"
    failures = ""
    if r.recent_failures:
        failures = "<ul class=\"plain\">" + "".join(
            f"<li>{_e(stamp(f.at))} <code>{_e(f.run_id)}</code>: {_e(first_line(f.error))}</li>"
            for f in r.recent_failures) + "</ul>"
    return (f'<section class="card"><h3>{_e(r.name)} {_pill(r.status)}</h3><p class="meta">{meta}</p>'
            f"{rpo_chart(r, report.period_start, report.generated_at)}{failures}</section>")


def _drills(report: Report) -> str:
    if not report.drills:
        return '<div class="card"><p class="meta">No drill recorded. Run <code>dr drill</code> to measure ' \
               "the RTO.</p></div>"
    rows = [[_e(stamp(d.started_at)), f"<code>{_e(d.run_id)}</code>",
             _pill("met" if d.met else "not-met", outcome(d)), _e(human(d.rto)), _e(human(d.rto_traffic)),
             _e(format_duration(d.rto_objective)), _e(rpo_text(d)), _e(format_duration(d.rpo_objective)),
             _e(stamp(d.recovery_point_time))] for d in report.drills]
    last = report.drills[0]
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(s)}</span>' for s, c in STATUS_COLOR.items()
                     if any(st.status == s for st in last.steps))
    return (_table(["Date", "Run", "Outcome", "RTO healthy", "RTO traffic moved", "RTO objective", "RPO",
                    "RPO objective", "Recovery point"], rows)
            + f'<section class="card" style="margin-top:14px"><h3>Last drill, step by step</h3>'
              f'<p class="meta"><code>{_e(last.run_id)}</code> · started {_e(stamp(last.started_at))} · '
              f"RTO healthy {_e(human(last.rto))}, traffic moved {_e(human(last.rto_traffic))} "
              f"(objective {_e(format_duration(last.rto_objective))})"
              + (f" · {_e(first_line(last.error))}" if last.error else "")
            + f'</p>{gantt(last)}<p class="legend">{legend}<span>{_e(gantt_legend(last))}</span></p></section>')


def _code(text: str) -> str:
    """Escaped text with `backticked` commands shown as code, not as literal backticks."""
    parts = _e(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: leave it as it is
        return _e(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _list(title: str, items, klass: str = "card") -> str:
    if not items:
        return ""
    return f'<h2>{_e(title)}</h2><div class="{klass}"><ul class="plain">' + \
        "".join(f"<li>{_code(i)}</li>" for i in items) + "</ul></div>"


def render_html(report: Report) -> str:
    status = "bad" if report.breach else "ok"
    findings = "".join(f"<li>{_code(f)}</li>" for f in report.findings)
    banner = (f'<div class="banner {status}">{_e(headline(report))}'
              + (f"<ul>{findings}</ul>" if findings else "") + "</div>")
    run_failures = [f"{stamp(f.at)} {f.run_id}: {first_line(f.error)}" for f in report.run_failures]
    body = [
        "<header><h1>Disaster recovery report</h1>",
        f'<p class="sub">{period(report.days).capitalize()}: {_e(stamp(report.period_start))} to '
        f"{_e(stamp(report.generated_at))}. Objectives: RPO <b>{_e(format_duration(report.rpo_objective))}"
        f"</b>, RTO <b>{_e(format_duration(report.rto_objective))}</b>. Copies from "
        f"<b>{_e(report.primary_region)}</b> to <b>{_e(report.dr_region)}</b>.</p></header>",
        banner,
        "<h2>Resources</h2>",
        f'<p class="meta">RPO now: the age of the newest copy in {_e(report.dr_region)}. Worst RPO: the '
        "largest it got in the period, from the gaps between successful copies.</p>",
        _resources(report) if report.resources else '<p class="meta">No resources in dr.yaml.</p>',
        "<h2>RPO over time</h2>",
        '<p class="meta">Worst RPO in each interval (blue); the objective (red dashes); over it, red. '
        "Grey: no copy existed yet.</p>",
        *[_chart_card(r, report) for r in report.resources if r.kind != "mongo" or r.newest],
        *([("<h2>Verification</h2><p class=\"meta\">MySQL backups restored into a scratch database "
            "and compared with their manifest. Verified RPO: the age of the newest proven backup.</p>"
            + _table(VERIFY_HEADERS, [[_e(c) for c in row] for row in verify_rows(report)],
                     numeric=(7, 8, 9, 10)))] if report.verification else []),
        "<h2>Drills</h2>", _drills(report),
        _list("Failed runs that reached no resource", run_failures),
        _list("Notes", report.notes),
        _list("Warnings", report.warnings),
        f"<footer>Generated by dr {_e(dr.__version__)} from {_e(report.config_source)} "
        f"({report.records_read} run records read) at {_e(stamp(report.generated_at))}.</footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>DR report {_e(stamp(report.generated_at))}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")
