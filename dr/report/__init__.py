"""The RPO/RTO report: pure computation from run records (compute.py) and renderers.

    from dr.report import compute_report, render
    report = compute_report(records, config, now, days=30)
    html = render(report, "html")
"""

from __future__ import annotations

from dr.report.compute import compute_report
from dr.report.model import Report

FORMATS = ("text", "json", "md", "html")


def render(report: Report, fmt: str) -> str:
    """The report in one of FORMATS."""
    if fmt == "text":
        from dr.report.render_text import render_text
        return render_text(report)
    if fmt == "json":
        from dr.report.render_json import render_json
        return render_json(report)
    if fmt == "md":
        from dr.report.render_md import render_md
        return render_md(report)
    if fmt == "html":
        from dr.report.render_html import render_html
        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "Report", "compute_report", "render"]
