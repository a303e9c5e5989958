"""Scheduled verification (`mysql[].verify.every` through `dr schedule`): the newest backup not
verified yet is restored into a scratch database, compared and dropped; the outcome is recorded
per backup and shown by `dr backup list`, `dr validate --readiness` and `dr report`."""

from __future__ import annotations

import json

import pytest

from dr.cli import main
from dr.mysql import connect
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(endpoint, boto, tmp_path, mariadb, sakila, monkeypatch):  # noqa: F811
    kms = boto("kms", "us-west-2")
    kms.create_alias(AliasName="alias/dr-backups",
                     TargetKeyId=kms.create_key()["KeyMetadata"]["Arn"])
    monkeypatch.setenv("DR_SPOOL_DIR", str(tmp_path / "spool"))
    key = tmp_path / "office.key"
    assert main(["keygen", str(key)]) == 0
    path = tmp_path / "dr.yaml"
    path.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        f"aws: {{endpoint_url: '{endpoint}'}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
        f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: '{tmp_path / 'state'}'}}\n"
        f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {mariadb.port}, user: root, "
        f"tls: 'off', databases: [{sakila}], destination: 'file://{tmp_path}/backups', "
        f"schedule: every 1h, retention: {{last: 3}}, key_file: '{key}', "
        f"verify: {{host: 127.0.0.1, port: {mariadb.port}, user: root, tls: 'off', every: 1d}}}}\n")
    return {"config": str(path), "state": tmp_path / "state", "tmp": tmp_path, "spec": mariadb}


def run_json(capsys, *argv) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--output", "json", *argv])
    return code, json.loads(capsys.readouterr().out)


def verify_records(state) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "runs").glob("verify-*.json"))]


def scratch_databases(spec) -> list[str]:
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME "
                        "LIKE 'dr\\_verify\\_%'")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def readiness_check(capsys, config) -> dict:
    _, data = run_json(capsys, "--config", config, "validate", "--readiness")
    return next(c for c in data["readiness"] if c["name"] == "mysql:lamp:verified")


def test_scheduled_verification_proves_the_newest_backup(setup, capsys):
    config = setup["config"]
    assert main(["--config", config, "backup", "run", "--only", "mysql"]) == 0
    _, listed = run_json(capsys, "--config", config, "backup", "list", "--name", "lamp")
    [backup] = listed["mysql_backups"]
    assert backup["verification"] is None
    check = readiness_check(capsys, config)
    assert not check["ok"] and "proven restorable" in check["detail"]

    code, once = run_json(capsys, "--config", config, "schedule", "--once", "--no-http")
    assert code == 0, once
    [record] = verify_records(setup["state"])
    assert record["status"] == "completed" and record["command"].startswith("dr schedule (job lamp.verify")
    summary = record["results"][0]["summary"]
    assert summary["backup_id"] == backup["id"] and summary["verdict"] == "verified"
    assert 0 < summary["restore_seconds"] <= summary["verify_seconds"]
    assert scratch_databases(setup["spec"]) == []  # the scratch database was dropped

    _, listed = run_json(capsys, "--config", config, "backup", "list", "--name", "lamp")
    assert listed["mysql_backups"][0]["verification"]["status"] == "verified"
    assert listed["mysql_backups"][0]["verification"]["run_id"] == record["run_id"]
    capsys.readouterr()
    assert main(["--config", config, "backup", "list", "--name", "lamp"]) == 0
    text = capsys.readouterr().out
    assert "VERIFIED" in text.splitlines()[0] and " yes " in text

    check = readiness_check(capsys, config)
    assert check["ok"] and f"the newest backup {backup['id']} was verified" in check["detail"]

    _, report = run_json(capsys, "--config", config, "report")
    [v] = report["verification"]
    assert v["newest_status"] == "verified" and v["newest_verified"]["backup_id"] == backup["id"]
    assert v["schedule"] == "every 1d" and v["verifications"] == 1 and v["failed"] == 0
    assert v["last"]["verify_seconds"] == summary["verify_seconds"]
    capsys.readouterr()
    main(["--config", config, "report"])
    assert "Verification (MySQL backups restored" in capsys.readouterr().out

    # the slot ran: a second --once verifies nothing again
    code, again = run_json(capsys, "--config", config, "schedule", "--once", "--no-http")
    assert code == 0 and len(verify_records(setup["state"])) == 1


def test_a_backup_that_does_not_restore_is_marked_failed_everywhere(setup, capsys):
    config = setup["config"]
    assert main(["--config", config, "backup", "run", "--only", "mysql"]) == 0
    [data] = (setup["tmp"] / "backups" / "lamp").glob("*.drenc")
    body = bytearray(data.read_bytes())
    body[len(body) // 2] ^= 0x01
    data.write_bytes(bytes(body))

    code, once = run_json(capsys, "--config", config, "schedule", "--once", "--no-http")
    assert code == 1, once  # the verification job failed
    [record] = verify_records(setup["state"])
    assert record["status"] == "failed"
    assert record["results"][0]["summary"]["verdict"] == "failed"
    assert scratch_databases(setup["spec"]) == []

    _, listed = run_json(capsys, "--config", config, "backup", "list", "--name", "lamp")
    assert listed["mysql_backups"][0]["verification"]["status"] == "failed"
    capsys.readouterr()
    main(["--config", config, "backup", "list", "--name", "lamp"])
    assert " FAILED " in capsys.readouterr().out

    check = readiness_check(capsys, config)
    assert not check["ok"] and "FAILED its verification" in check["detail"]

    code, report = run_json(capsys, "--config", config, "report")
    assert code == 3
    assert report["verification"][0]["newest_status"] == "failed"
    assert any("failed its verification" in f for f in report["findings"])


def test_the_verify_server_down_leaves_the_backup_unverified(setup, capsys):
    """An attempt that cannot judge the backup is the verify server's failure, not the backup's."""
    from tests.support.mariadb import free_port

    config = setup["config"]
    assert main(["--config", config, "backup", "run", "--only", "mysql"]) == 0
    text = open(config).read()
    port = setup["spec"].port
    down = text.replace(f"verify: {{host: 127.0.0.1, port: {port}",
                        f"verify: {{host: 127.0.0.1, port: {free_port()}, connect_timeout: 1s")
    assert down != text
    open(config, "w").write(down)
    code, _ = run_json(capsys, "--config", config, "backup", "verify", "--name", "lamp")
    assert code != 0
    [record] = verify_records(setup["state"])
    assert record["status"] == "failed" and record["results"][0]["summary"]["verdict"] is None
    _, listed = run_json(capsys, "--config", config, "backup", "list", "--name", "lamp")
    assert listed["mysql_backups"][0]["verification"] is None  # still unverified, not FAILED
