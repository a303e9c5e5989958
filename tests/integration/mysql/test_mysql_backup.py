"""dr backup run --only mysql / dr restore mysql / dr backup verify|prune|list, end to end:
a real MariaDB (Sakila), KMS and the DR bucket in a moto server, our own encrypted stream."""

from __future__ import annotations

import json

import pytest

from dr.cli import main
from dr.mysql import connect
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration
BUCKET = "acme-dr-backups"


def checksums(spec, db):
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                        "AND TABLE_TYPE='BASE TABLE' ORDER BY TABLE_NAME", (db,))
            names = [r[0] for r in cur.fetchall()]
            cur.execute("CHECKSUM TABLE " + ", ".join(f"`{db}`.`{n}`" for n in names))
            return {r[0].split(".", 1)[1]: r[1] for r in cur.fetchall()}
    finally:
        conn.close()


def drop(spec, db):
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        conn.close()


@pytest.fixture
def setup(endpoint, boto, tmp_path, mariadb, sakila):  # noqa: F811
    kms = boto("kms", "us-west-2")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/dr-backups", TargetKeyId=key)
    boto("s3", "us-west-2").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    path = tmp_path / "dr.yaml"

    def write(destination=f"s3://{BUCKET}/mysql/", extra=""):
        path.write_text(
            "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
            f"aws: {{endpoint_url: '{endpoint}'}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
            f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: '{tmp_path / 'state'}'}}\n"
            f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {mariadb.port}, user: root, "
            f"tls: 'off', databases: [{sakila}], destination: '{destination}', "
            f"schedule: every 1h, retention: {{last: 1}}, "
            f"verify: {{host: 127.0.0.1, port: {mariadb.port}, user: root, tls: 'off'}}{extra}}}\n")
        return path

    write()
    return {"path": path, "write": write, "key": key, "s3": boto("s3", "us-west-2"),
            "spec": mariadb, "db": sakila, "tmp": tmp_path, "endpoint": endpoint}


def objects(s3):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_backup_to_the_dr_bucket_then_restore_elsewhere_matches(setup, capsys):
    p, s3 = str(setup["path"]), setup["s3"]
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    keys = objects(s3)
    assert len(keys) == 2 and keys[0].endswith(".dump.zst.drenc") and keys[1].endswith(".manifest.json")
    head = s3.head_object(Bucket=BUCKET, Key=keys[0])
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == setup["key"]
    body = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert body[:8] == b"\x89DRENC\r\n"  # client-side encrypted before it left
    assert b"INSERT" not in body and b"ACADEMY DINOSAUR" not in body
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[1])["Body"].read())
    assert manifest["encryption"]["kind"] == "kms" and manifest["encryption"]["key_id"] == setup["key"]
    assert manifest["dump"]["databases"][setup["db"]]["tables"]["rental"]["rows"] == 16044

    target = "sakila_restored"
    drop(setup["spec"], target)
    uri = f"mysql://root@127.0.0.1:{setup['spec'].port}/{target}?tls=off"
    capsys.readouterr()
    assert main(["--config", p, "restore", "mysql", "--name", "lamp", "--to", uri]) == 0
    assert "checksums match" in capsys.readouterr().out
    assert checksums(setup["spec"], target) == checksums(setup["spec"], setup["db"])
    # the target now holds data: a second restore is refused unless --force
    assert main(["--config", p, "restore", "mysql", "--name", "lamp", "--to", uri]) == 2
    assert main(["--config", p, "restore", "mysql", "--name", "lamp", "--to", uri, "--force"]) == 0
    drop(setup["spec"], target)


def test_rerun_in_the_same_slot_makes_no_second_backup(setup):
    p = str(setup["path"])
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    assert len(objects(setup["s3"])) == 2


def test_a_tampered_backup_is_refused_and_the_target_is_unchanged(setup, capsys):
    p, s3 = str(setup["path"]), setup["s3"]
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    data_key = objects(s3)[0]
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=data_key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=BUCKET, Key=data_key, Body=bytes(body))
    target = "sakila_tamper"
    drop(setup["spec"], target)
    uri = f"mysql://root@127.0.0.1:{setup['spec'].port}/{target}?tls=off"
    capsys.readouterr()
    assert main(["--config", p, "restore", "mysql", "--name", "lamp", "--to", uri]) == 1
    assert "failed authentication" in capsys.readouterr().err
    conn = connect(setup["spec"])
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            dbs = {r[0] for r in cur.fetchall()}
    finally:
        conn.close()
    assert target not in dbs and not any("staging" in d for d in dbs)


def test_local_key_file_and_file_destination(setup, tmp_path, capsys):
    key = tmp_path / "office.key"
    assert main(["keygen", str(key)]) == 0
    setup["write"](destination=f"file://{tmp_path}/backups", extra=f", key_file: '{key}'")
    p = str(setup["path"])
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    files = sorted(f.name for f in (tmp_path / "backups" / "lamp").iterdir())
    assert len(files) == 2 and not any(".partial-" in f for f in files)
    capsys.readouterr()
    assert main(["--output", "json", "--config", p, "backup", "verify", "--name", "lamp"]) == 0
    found = json.loads(capsys.readouterr().out)["lamp"]
    assert found["ok"] and found["restore_seconds"] > 0
    other = tmp_path / "other.key"
    assert main(["keygen", str(other)]) == 0
    setup["write"](destination=f"file://{tmp_path}/backups", extra=f", key_file: '{other}'")
    assert main(["--config", p, "backup", "verify", "--name", "lamp"]) == 3


def test_list_and_prune(setup, capsys):
    p = str(setup["path"])
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    capsys.readouterr()
    assert main(["--config", p, "backup", "list", "--name", "lamp"]) == 0
    assert "MYSQL" in capsys.readouterr().out
    assert main(["--config", p, "backup", "prune", "--dry-run"]) == 0
    assert "newest available copy" in capsys.readouterr().out
    assert len(objects(setup["s3"])) == 2


def test_wrong_password_is_a_clear_error_and_leaves_nothing(setup, monkeypatch, capsys):
    monkeypatch.setenv("LAMP_PW", "not-the-password")
    setup["write"](extra=", password: {env: LAMP_PW}")
    text = setup["path"].read_text().replace("user: root", "user: nobody", 1)
    setup["path"].write_text(text)
    assert main(["--config", str(setup["path"]), "backup", "run", "--only", "mysql"]) == 1
    out = capsys.readouterr()
    assert "not-the-password" not in out.out + out.err
    assert objects(setup["s3"]) == []
    assert setup["s3"].list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_mysql_restore_step_in_a_runbook_reports_the_recovery_point(setup):
    from dr.aws import AwsSession
    from dr.config import load_config
    from dr.runbook import EngineContext, parse_runbook, run_runbook
    from dr.state.local import LocalStore

    assert main(["--config", str(setup["path"]), "backup", "run", "--only", "mysql"]) == 0
    config = load_config(setup["path"])
    target = "sakila_from_runbook"
    drop(setup["spec"], target)
    book = parse_runbook(f"""\
version: 1
name: data-only
steps:
  - id: data
    type: mysql.restore
    with: {{resource: lamp, to: "mysql://root@127.0.0.1:{setup['spec'].port}/{target}?tls=off"}}
""", config=config)
    ectx = EngineContext(config=config, session=AwsSession(endpoint_url=setup["endpoint"]),
                         store=LocalStore(setup["tmp"] / "state"))
    result = run_runbook(book, ectx)
    assert result.status == "completed", result.error
    out = result.steps["data"].outputs
    assert out["rows"] > 40000 and out["snapshot_time"] and out["databases"] == {setup["db"]: target}
    assert checksums(setup["spec"], target) == checksums(setup["spec"], setup["db"])
    drop(setup["spec"], target)


def test_a_restore_leaves_a_run_record_without_the_password(setup, monkeypatch):
    from dr.state.local import LocalStore
    from dr.state.records import RunStore

    p = str(setup["path"])
    assert main(["--config", p, "backup", "run", "--only", "mysql"]) == 0
    target = "sakila_recorded"
    drop(setup["spec"], target)
    uri = f"mysql://root:s3cret-pw@127.0.0.1:{setup['spec'].port}/{target}?tls=off"
    # root has no password on the throwaway server: the given one is refused, and that is recorded
    assert main(["--config", p, "restore", "mysql", "--name", "lamp", "--to", uri]) == 1
    (record,) = RunStore(LocalStore(setup["tmp"] / "state")).list(kind="restore")
    assert record.status == "failed" and record.results[0].error
    assert "s3cret-pw" not in json.dumps(record.to_dict())
    assert record.plan[0]["to"].endswith(f"/{target}")
