"""`dr schedule` on the command line: usage errors, and --once on a local state directory."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_report_cli import CONFIG, dr_main


@pytest.fixture
def config_path(tmp_path, monkeypatch):
    monkeypatch.setenv("DR_SPOOL_DIR", str(tmp_path / "spool"))
    path = tmp_path / "dr.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("args, message", [
    (["--timezone", "Mars/Olympus"], "--timezone Mars/Olympus: not a known IANA time zone"),
    (["--jitter", "soon"], "--jitter: expected a duration like 30s"),
    (["--max-parallel", "0"], "--max-parallel must be at least 1"),
    (["--port", "70000"], "--port must be from 0 to 65535"),
])
def test_usage_errors_exit_2_before_doing_anything(config_path, capsys, args, message):
    assert dr_main(["--config", str(config_path), "schedule", "--once", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (config_path.parent / "state").exists()


def test_a_config_without_jobs_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "dr.yaml"
    path.write_text(CONFIG.split("rds:")[0])
    assert dr_main(["--config", str(path), "schedule", "--once"]) == 2
    assert "nothing to schedule" in capsys.readouterr().err


MYSQL_ONLY = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
mysql:
  - {name: office-lamp, host: 10.0.0.5, user: backup, password: {env: X}, databases: [app],
     destination: "s3://acme-dr-backups/mysql/", schedule: every 1h}
"""


def test_once_on_a_job_this_version_cannot_run_says_so(config_path, capsys):
    config_path.write_text(MYSQL_ONLY)
    argv = ["--output", "json", "--config", str(config_path), "schedule", "--once",
            "--clock-start", "2026-03-02T13:05:00+00:00"]
    assert dr_main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["jobs"] == [{"job": "office-lamp", "slot": "2026-03-02T13:00:00+00:00", "outcome": "skipped",
                            "run_id": None, "missed_slots": 0}]
    lock = config_path.parent / "state" / "locks" / "schedule" / "office-lamp" / "20260302T130000Z.json"
    assert json.loads(lock.read_text())["status"] == "skipped"
    assert dr_main(argv) == 0  # the same slot again: nothing to do
    assert json.loads(capsys.readouterr().out)["jobs"][0]["outcome"] == "already ran"
