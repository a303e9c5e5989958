"""`dr report`: RPO and RTO, measured from the copies and drills the run records show."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dr.cli.app import App, Outcome
from dr.errors import EXIT_BREACH, OperationFailed, UsageError
from dr.files import atomic_write

DESCRIPTION = """\
Per protected resource: the newest copy in the DR region, its age (the RPO right now) against
objectives.rpo, the worst RPO of the period (from the gaps between successful copies), and the
failed runs. Per drill: the RTO and RPO it measured, and each step's duration. Exit 3 if anything
is over its objective.

html is one self-contained file (inline CSS and SVG charts, no JavaScript) that prints on A4.

Example:
  dr report                                   # text on the terminal
  dr report --format html --out dr-report.html
  dr report --format md --days 90 > REPORT.md
  dr --output json report                     # the same data as one JSON document
"""


def register(sub) -> None:
    p = sub.add_parser("report", help="RPO/RTO report (text, json, md, html); exit 3 on a breach",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", choices=("text", "json", "md", "html"), default="text",
                   help="text (default), json, md (markdown), or html (one self-contained page)")
    p.add_argument("--out", metavar="PATH", help="write the report to PATH instead of stdout")
    p.add_argument("--days", type=int, default=30, help="the period, in days before now (default 30)")
    p.add_argument("--now", help=argparse.SUPPRESS)  # a fixed "now" (ISO time), for reproducible reports
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.report import compute_report, render
    from dr.report.load import load_records
    from dr.report.render_json import report_to_dict
    from dr.report.render_text import headline

    if not 1 <= args.days <= 3660:
        raise UsageError(f"--days {args.days}: expected 1 to 3660")
    ctx = app.context()
    now = _now(args.now) if args.now else ctx.clock.now()
    loaded = load_records(ctx.store, ctx.config, now, args.days)
    for warning in loaded.warnings:
        print(f"dr: warning: {warning}", file=sys.stderr)
    report = compute_report(loaded.records, ctx.config, now, args.days, warnings=loaded.warnings)
    rendered = render(report, args.format)
    data = report_to_dict(report)
    code = EXIT_BREACH if report.breach else 0
    if not args.out:
        return Outcome(data=data, text=rendered, exit_code=code)
    path = Path(args.out)
    _write_atomically(path, rendered)
    data["out"] = str(path)
    lines = [f"Wrote the {args.format} report to {path}", headline(report)]
    lines += [f"  - {f}" for f in report.findings]
    return Outcome(data=data, text="\n".join(lines), exit_code=code)


def _now(text: str):
    from dr.clock import parse_iso

    try:
        return parse_iso(text)
    except ValueError as exc:
        raise UsageError(f"--now: {exc}") from None


def _write_atomically(path: Path, text: str) -> None:
    """A reader (a web server, a mail job) never sees half a report."""
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path.absolute(), text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise OperationFailed(f"cannot write the report to {path}: {exc.strerror or exc}",
                              hint="check the directory exists and is writable") from None
