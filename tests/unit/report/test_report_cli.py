"""`dr report` through the CLI, on a local state directory (no AWS needed to read records)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.report_history import history
from dr.state.local import LocalStore
from dr.state.records import RunStore

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=timezone.utc)


def dr_main(argv):
    """dr's main with `report` and `schedule` registered (until dr/cli/__init__.py lists them)."""
    import dr.cli as cli
    from dr.cli import report, schedule

    saved = cli.COMMANDS
    cli.COMMANDS = tuple(saved) + tuple(m for m in (report, schedule) if m not in saved)
    try:
        return cli.main(argv)
    finally:
        cli.COMMANDS = saved


CONFIG = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
rds:
  - {name: app-db, instance: acme-prod-db, schedule: every 1h}
s3:
  - {name: assets, source: acme-assets, destination: acme-assets-dr, schedule: every 1h}
"""


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "dr.yaml").write_text(CONFIG)
    runs = RunStore(LocalStore(tmp_path / "state"))
    for record in history([("app-db", "rds-instance"), ("assets", "s3")], NOW, 3, drills=1):
        runs.save(record)
    return tmp_path


def test_report_text_within_objective_exits_0(workdir, capsys):
    now = (NOW - timedelta(minutes=50)).isoformat()
    code = dr_main(["--config", str(workdir / "dr.yaml"), "report", "--now", now, "--days", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("DR report: the last 2 days") and "Status: within objectives" in out


def test_report_over_objective_exits_3(workdir, capsys):
    later = (NOW + timedelta(hours=5)).isoformat()
    assert dr_main(["--config", str(workdir / "dr.yaml"), "report", "--now", later]) == 3
    assert "OVER OBJECTIVE" in capsys.readouterr().out


def test_report_html_to_a_file_and_json_output(workdir, capsys):
    out = workdir / "reports" / "dr.html"
    code = dr_main(["--output", "json", "--config", str(workdir / "dr.yaml"), "report", "--format", "html",
                    "--out", str(out), "--now", NOW.isoformat()])
    doc = json.loads(capsys.readouterr().out)
    assert doc["out"] == str(out) and doc["format"] == "dr-report/1"
    assert code == (3 if doc["breach"] else 0)
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["dr.html"]  # no temp file left behind


def test_report_with_a_malformed_record_still_renders_and_names_it(workdir, capsys):
    (workdir / "state" / "runs" / "backup-20260331T110000Z-0bad.json").write_text("{truncated")
    code = dr_main(["--config", str(workdir / "dr.yaml"), "report", "--format", "md", "--days", "2",
                    "--now", (NOW - timedelta(minutes=50)).isoformat()])
    captured = capsys.readouterr()
    assert code == 0
    assert "backup-20260331T110000Z-0bad.json" in captured.err  # the warning on stderr
    assert "## Warnings" in captured.out and "0bad" in captured.out


def test_report_bad_days_is_a_usage_error(workdir, capsys):
    assert dr_main(["--config", str(workdir / "dr.yaml"), "report", "--days", "0"]) == 2
    assert "--days 0" in capsys.readouterr().err
