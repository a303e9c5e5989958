"""The renderers: text (exact), markdown, JSON, and a self-contained, escaped HTML file."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from dr.config import parse_config
from dr.report import FORMATS, compute_report, render
from tests.support.report_history import drill_record, history
from dr.clock import iso
from dr.state.records import RunRecord
from tests.unit.report.test_report_compute import CONFIG_TEXT, copy

UTC = timezone.utc
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def small_report():
    config = parse_config(CONFIG_TEXT, source="dr.yaml")
    records = [copy("app-db", NOW - 3 * H), copy("app-db", NOW - 25 * M),
               copy("assets", NOW - 2 * H, kind="s3"), copy("app-db", NOW - 2 * H, status="failed")]
    drill = drill_record(NOW - 2 * 24 * H, rto_objective=30 * M, rpo_objective=H)
    return compute_report(records + [drill], config, NOW, 30, warnings=["skipped malformed run record runs/x.json"])


EXPECTED_TEXT_HEAD = """\
DR report: the last 30 days (2026-03-01 12:00:00 UTC to 2026-03-31 12:00:00 UTC)
Objectives: RPO 1h, RTO 30m. Copies from us-east-1 to us-west-2.
Status: OVER OBJECTIVE (2 findings)

Resources (RPO = age of the newest copy in us-west-2)
  RESOURCE     KIND   SCHEDULE   NEWEST COPY              RPO NOW  OBJECTIVE  STATUS      WORST RPO  COPIES  FAILURES
  app-db       rds    every 1h   2026-03-31 11:35:00 UTC  25m      1h         ok          2h45m      2       1
  assets       s3     every 15m  2026-03-31 10:00:00 UTC  2h       1h         BREACH      2h         1       0
  office-lamp  mysql  every 1h   <never>                  <never>  1h         NO-COPY     <never>    0       0
  app-rs       mongo  -          <never>                  <never>  1h         unmeasured  <never>    0       0

Drills
  DATE                     RUN                          OUTCOME  RTO HEALTHY  RTO TRAFFIC  RTO OBJECTIVE  RPO     RPO OBJECTIVE
"""


def test_text_is_exact():
    text = render(small_report(), "text")
    assert text.startswith(EXPECTED_TEXT_HEAD), text
    assert "Findings (over objective)\n  - assets: newest copy in us-west-2 is 2h old" in text
    assert "  - office-lamp: no copy in us-west-2 (objective 1h)\n" in text
    assert "Failures in the period (1)\n  2026-03-31 10:10:00 UTC  app-db  backup-" in text
    assert "Warnings\n  - skipped malformed run record runs/x.json\n" in text
    assert "Last drill, step by step" in text and "restore-db" in text


def test_markdown_tables():
    md = render(small_report(), "md")
    assert md.startswith("# DR report: the last 30 days\n")
    assert "| RESOURCE | KIND | SCHEDULE |" in md and "|---|---|" in md
    assert "| assets | s3 | every 15m | 2026-03-31 10:00:00 UTC | 2h | 1h | BREACH |" in md
    assert "## Drills" in md and "### Last drill, step by step" in md


def test_json_document():
    doc = json.loads(render(small_report(), "json"))
    assert doc["format"] == "dr-report/1" and doc["breach"] is True
    app = next(r for r in doc["resources"] if r["name"] == "app-db")
    assert app["rpo_seconds"] == 1500 and app["rpo_objective_seconds"] == 3600
    assert app["newest_copy"]["region"] == "us-west-2" and len(app["rpo_series"]) == 240
    assert doc["drills"][0]["steps"][0]["duration_seconds"] > 0
    assert doc["objectives"] == {"rpo_seconds": 3600, "rto_seconds": 1800}


def test_html_is_self_contained_and_printable():
    page = render(small_report(), "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    lowered = page.lower()
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "url(", " src=", " href=", "javascript:"):
        assert banned not in lowered, banned
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg")
    assert page.count("<svg") == 4  # three charts (mongo has none) and one Gantt
    assert "@media print" in page and "break-inside:avoid" in page
    assert 'class="objective"' in page and "Last drill, step by step" in page


def test_html_escapes_everything_from_records():
    config = parse_config(CONFIG_TEXT, source="dr.yaml")
    rec = copy("app-db", NOW - 2 * H, status="failed")
    rec.results[0].error = "<script>alert('x')</script> & more"
    drill = RunRecord(run_id="drill-20260330T000000Z-0001", kind="drill", status="failed",
                      started_at=iso(NOW - 30 * H), error="<b>boom</b>")
    page = render(compute_report([rec, drill], config, NOW, 30), "html")
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert "<b>boom</b>" not in page


def test_every_format_renders_an_empty_history():
    config = parse_config(CONFIG_TEXT, source="dr.yaml")
    report = compute_report([], config, NOW, 7)
    for fmt in FORMATS:
        assert render(report, fmt)
    assert "no copy in the period" in render(report, "html")


def test_a_year_of_history_renders_a_bounded_html_file():
    config = parse_config(CONFIG_TEXT, source="dr.yaml")
    records = history([("app-db", "rds-instance"), ("assets", "s3")], NOW, 365, every=6 * H)
    page = render(compute_report(records, config, NOW, 365), "html")
    assert len(page) < 400_000


def test_words_fit_their_numbers_and_notes_show_commands_as_code():
    from datetime import timedelta as td

    from dr.report.model import period, plural, short

    assert plural(1, "copy", "copies") == "1 copy" and plural(2, "copy", "copies") == "2 copies"
    assert period(1) == "the last day" and period(30) == "the last 30 days"
    assert short(td(seconds=0.3)) == "0.3s" and short(td(seconds=42)) == "42s"
    from dr.report.render_html import _code

    assert _code("run `dr drill` <now>") == "run <code>dr drill</code> &lt;now&gt;"


def test_a_new_install_s_rpo_chart_fits_its_data_and_the_gantt_says_only_what_it_draws():
    from datetime import datetime, timedelta, timezone

    from dr.report.model import DrillReport, DrillStep, ResourceReport
    from dr.report.svg import chart_start, gantt, gantt_legend

    now = datetime(2026, 3, 31, 12, tzinfo=timezone.utc)
    start, first = now - timedelta(days=30), now - timedelta(hours=2)
    r = ResourceReport(name="app-db", kind="rds", schedule="every 1h", objective=timedelta(hours=1),
                       status="ok", newest=None, rpo=timedelta(minutes=5), worst_rpo=None, worst_rpo_at=None,
                       copies=2, failures=0, recent_failures=(), series=(), covered_from=first)
    assert first - timedelta(minutes=13) < chart_start(r, start, now) < first  # not 30 days of grey
    began = now - timedelta(seconds=4)
    steps = (DrillStep("ready", "readiness", "completed", began, began + timedelta(seconds=0.4), None),
             DrillStep("flip", "dns.flip", "completed", began + timedelta(seconds=1), now, None))
    d = DrillReport(run_id="drill-x", started_at=began, finished_at=now, status="completed", met=True,
                    rto=timedelta(seconds=3), rto_objective=timedelta(minutes=30), rpo=None,
                    rpo_objective=timedelta(hours=1), recovery_point_time=None, steps=steps)
    svg = gantt(d)
    assert "+1s" in svg and "+2s" in svg and ">0.4s<" in svg  # axis labels under a minute; 0.4s, not 0s
    assert 'class="objective"' not in svg
    assert gantt_legend(d).startswith("the RTO objective (30m) is beyond the right edge")
