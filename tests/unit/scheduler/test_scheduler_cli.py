"""`dr schedule` on the command line: usage errors, and --once on a local state directory."""

from __future__ import annotations

import json

import pytest

from tests.unit.report.test_report_cli import CONFIG, dr_main


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


def mysql_only(port: int, destination: str) -> str:
    return f"""\
version: 1
regions: {{primary: us-east-1, dr: us-west-2}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: alias/dr-backups}}
state: {{path: ./state}}
mysql:
  - {{name: office-lamp, host: 127.0.0.1, port: {port}, user: backup, tls: "off", databases: [app],
     connect_timeout: 1s, key_file: ./no.key, destination: "file://{destination}", schedule: every 1h}}
"""


def test_once_records_a_failing_job_and_does_not_run_the_slot_twice(config_path, capsys):
    from dr.crypto import generate_key_file
    from dr.sandbox.mariadb import free_port

    generate_key_file(config_path.parent / "no.key")
    # nothing listens there: the job fails (and the test leaves nothing outside its tmp dir)
    config_path.write_text(mysql_only(free_port(), str(config_path.parent / "never-written")))
    argv = ["--output", "json", "--config", str(config_path), "schedule", "--once",
            "--clock-start", "2026-03-02T13:05:00+00:00"]
    assert dr_main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    (job,) = doc["jobs"]
    assert (job["job"], job["slot"], job["outcome"]) == ("office-lamp", "2026-03-02T13:00:00+00:00",
                                                         "failed")
    lock = config_path.parent / "state" / "locks" / "schedule" / "office-lamp" / "20260302T130000Z.json"
    assert json.loads(lock.read_text())["status"] == "failed"
    assert dr_main(argv) == 0  # the same slot again: not run a second time
    (again,) = json.loads(capsys.readouterr().out)["jobs"]
    assert again["outcome"] == "already ran" and again["run_id"] is None
