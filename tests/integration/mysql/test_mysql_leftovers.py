"""Leftovers of runs killed with kill -9: partial files, unfinished S3 multipart uploads, scratch
and staging databases, run records stuck at `running`. The next run (or `dr backup prune`)
removes them and says so, and never touches what a live run is still writing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dr.cli import main
from dr.mysql import connect
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration
BUCKET = "acme-dr-backups"
REPO = Path(__file__).resolve().parents[3]

# The backup (or verify) in a child process, held at a known point mid-stream: after the first
# bytes are written to the destination (the restore: after its first rows) it waits while the
# gate file exists, or forever without one. Then the test kills it with SIGKILL.
CHILD = r"""
import os, sys, time
gate = os.environ.get("DR_TEST_GATE")

def hold():
    while gate is None or os.path.exists(gate):
        time.sleep(0.05)

from dr.backup import destination as d
for cls in (d._FileWriter, d._S3Writer):
    def make(orig):
        def write(self, data):
            if self.bytes_written and self.path_or_key().endswith(".drenc"):
                hold()
            return orig(self, data)
        return write
    cls.write = make(cls.write)
d._FileWriter.path_or_key = lambda self: str(self.path)
d._S3Writer.path_or_key = lambda self: self.key

from dr.mysql import load
orig_put = load.Loaders.put
def put(self, *a, **k):
    hold()
    return orig_put(self, *a, **k)
load.Loaders.put = put

from dr.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def setup(endpoint, boto, tmp_path, mariadb, sakila):  # noqa: F811
    kms = boto("kms", "us-west-2")
    kms.create_alias(AliasName="alias/dr-backups",
                     TargetKeyId=kms.create_key()["KeyMetadata"]["Arn"])
    boto("s3", "us-west-2").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    key = tmp_path / "office.key"
    assert main(["keygen", str(key)]) == 0
    path = tmp_path / "dr.yaml"

    def write(destination):
        path.write_text(
            "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
            f"aws: {{endpoint_url: '{endpoint}'}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
            f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: '{tmp_path / 'state'}'}}\n"
            f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {mariadb.port}, user: root, "
            f"tls: 'off', databases: [{sakila}], destination: '{destination}', "
            f"schedule: every 1h, retention: {{last: 3}}, key_file: '{key}', "
            f"verify: {{host: 127.0.0.1, port: {mariadb.port}, user: root, tls: 'off'}}}}\n")
        return str(path)

    return {"write": write, "s3": boto("s3", "us-west-2"), "spec": mariadb, "tmp": tmp_path,
            "state": tmp_path / "state", "file": f"file://{tmp_path}/backups",
            "s3url": f"s3://{BUCKET}/mysql/"}


def start(config: str, *args: str, gate: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if gate is not None:
        gate.touch()
        env["DR_TEST_GATE"] = str(gate)
    return subprocess.Popen([sys.executable, "-c", CHILD, "--config", config, *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(what, check, proc: subprocess.Popen, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the child ended ({proc.returncode}) before {what}: {out!r} {err!r}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def partials(tmp: Path) -> list[Path]:
    return sorted((tmp / "backups").rglob("*.partial-*"))


def uploads(s3) -> list[dict]:
    return s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def records(state: Path, kind: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((state / "runs").glob(f"{kind}-*.json"))]


def leases(state: Path) -> list[str]:
    folder = state / "leases" / "runs"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("where,then", [("file", "run"), ("file", "prune"),
                                        ("s3", "run"), ("s3", "prune")])
def test_a_backup_killed_mid_stream_is_cleaned_up(setup, capsys, where, then):
    config = setup["write"](setup[where if where == "file" else "s3url"])
    proc = start(config, "backup", "run", "--only", "mysql")
    if where == "file":
        wait_for("a partial file", lambda: partials(setup["tmp"]), proc)
    else:
        wait_for("a multipart upload", lambda: uploads(setup["s3"]), proc)
    wait_for("the run record", lambda: records(setup["state"], "backup"), proc)
    kill9(proc)
    [stuck] = records(setup["state"], "backup")
    assert stuck["status"] == "running"
    capsys.readouterr()
    if then == "run":
        assert main(["--config", config, "backup", "run", "--only", "mysql"]) == 0
    else:
        assert main(["--config", config, "backup", "prune"]) == 0
    text = capsys.readouterr().out
    if where == "file":
        assert partials(setup["tmp"]) == []
    else:
        assert uploads(setup["s3"]) == []
    marked = json.loads((setup["state"] / "runs" / f"{stuck['run_id']}.json").read_text())
    assert marked["status"] == "interrupted"
    assert "stopped without finishing" in marked["error"] and "is gone" in marked["error"]
    assert [r["status"] for r in marked["results"]] == ["interrupted"]
    assert "Leftovers of interrupted runs:" in text
    assert ("removed partial file" if where == "file" else "removed unfinished upload") in text
    assert f"marked interrupted run record {stuck['run_id']}" in text
    assert "is gone" in text  # the proof: its process is gone
    assert leases(setup["state"]) == []
    capsys.readouterr()
    assert main(["--config", config, "runs", "list", "--kind", "backup"]) == 0
    listed = capsys.readouterr().out
    assert stuck["run_id"] in listed and "running" not in listed.split(stuck["run_id"])[1].split("\n")[0]
    # the record in the state says what cleaned it, for `dr runs show`
    newest = [r for r in records(setup["state"], "backup" if then == "run" else "prune") if r["run_id"] != stuck["run_id"]][-1]
    assert any(c["what"] == "run record" for c in newest["summary"]["cleanup"])


@pytest.mark.parametrize("where", ["file", "s3"])
def test_a_live_backup_is_never_touched(setup, capsys, where):
    config = setup["write"](setup[where if where == "file" else "s3url"])
    gate = setup["tmp"] / "gate"
    proc = start(config, "backup", "run", "--only", "mysql", gate=gate)
    if where == "file":
        wait_for("a partial file", lambda: partials(setup["tmp"]), proc)
    else:
        wait_for("a multipart upload", lambda: uploads(setup["s3"]), proc)
    [child] = wait_for("the run record", lambda: records(setup["state"], "backup"), proc)
    before = partials(setup["tmp"]) if where == "file" else uploads(setup["s3"])
    capsys.readouterr()
    assert main(["--config", config, "backup", "prune"]) == 0  # another process, meanwhile
    assert "Leftovers" not in capsys.readouterr().out
    assert main(["--config", config, "backup", "run", "--only", "mysql"]) in (0, 1)
    after = partials(setup["tmp"]) if where == "file" else uploads(setup["s3"])
    assert [str(x) if where == "file" else x["UploadId"] for x in after] == \
        [str(x) if where == "file" else x["UploadId"] for x in before]
    def child_status():
        return json.loads((setup["state"] / "runs" / f"{child['run_id']}.json").read_text())["status"]

    assert child_status() == "running"
    gate.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert child_status() == "completed"
    assert partials(setup["tmp"]) == [] and (where == "file" or uploads(setup["s3"]) == [])
    assert leases(setup["state"]) == []


def databases(spec, like: str) -> list[str]:
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME "
                        "LIKE %s ORDER BY 1", (like,))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_a_verify_killed_mid_restore_leaves_nothing_after_prune(setup, capsys):
    config = setup["write"](setup["file"])
    assert main(["--config", config, "backup", "run", "--only", "mysql"]) == 0
    proc = start(config, "backup", "verify", "--name", "lamp")
    wait_for("the staging database", lambda: [d for d in databases(
        setup["spec"], "dr\\_verify\\_%") if "__dr_staging_" in d], proc)
    kill9(proc)
    stuck = records(setup["state"], "verify")
    capsys.readouterr()
    assert main(["--config", config, "backup", "prune"]) == 0
    text = capsys.readouterr().out
    assert databases(setup["spec"], "dr\\_verify\\_%") == []
    assert "removed staging database" in text and "is gone" in text
    assert [r["status"] for r in stuck] == ["running"]  # a killed verify leaves a trace
    [marked] = records(setup["state"], "verify")
    assert marked["status"] == "interrupted" and "is gone" in marked["error"]


def test_a_killed_verifys_swap_journal_goes_but_a_real_targets_journal_stays(setup, capsys):
    """A verify killed during its swap leaves `dr_verify_<hex>__dr_swap_<hex>`: throwaway like
    its scratch database. A real target's journal may be all that can settle it: never touched."""
    config = setup["write"](setup["file"])
    spec = setup["spec"]
    conn = connect(spec)
    with conn.cursor() as cur:
        for db in ("dr_verify_abc123", "dr_verify_abc123__dr_swap_0123abcd", "app__dr_swap_89abcdef"):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"CREATE TABLE `{db}`.journal (id INT PRIMARY KEY)")
    conn.close()
    capsys.readouterr()
    assert main(["--config", config, "backup", "prune"]) == 0
    text = capsys.readouterr().out
    assert "removed swap journal of a scratch database dr_verify_abc123__dr_swap_0123abcd on " in text
    assert databases(spec, "dr\\_verify\\_%") == []
    assert databases(spec, "app\\_\\_dr\\_%") == ["app__dr_swap_89abcdef"]
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE `app__dr_swap_89abcdef`")
    conn.close()


def test_a_restores_staging_database_is_dropped_only_when_unused_and_old(setup, capsys, monkeypatch):
    from dr.backup import cleanup

    config = setup["write"](setup["file"])
    spec = setup["spec"]
    conn = connect(spec)
    with conn.cursor() as cur:
        for db in ("app__dr_staging_0123abcd", "app__dr_staging_4567cdef", "app__dr_old_89ab"):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"CREATE TABLE `{db}`.t (id INT PRIMARY KEY)")
    conn.close()
    busy = connect(spec)  # a restore still working in this one
    with busy.cursor() as cur:
        cur.execute("USE `app__dr_staging_4567cdef`")
    try:
        capsys.readouterr()
        assert main(["--config", config, "backup", "prune"]) == 0
        text = capsys.readouterr().out
        assert "removed staging database" not in text  # changed just now: maybe a live restore
        assert databases(spec, "app\\_\\_dr\\_%") == [
            "app__dr_old_89ab", "app__dr_staging_0123abcd", "app__dr_staging_4567cdef"]
        monkeypatch.setattr(cleanup, "STAGING_STALE_AFTER", timedelta(0))
        assert main(["--config", config, "backup", "prune"]) == 0
        text = capsys.readouterr().out
        assert "removed staging database app__dr_staging_0123abcd" in text
        assert "kept staging database app__dr_staging_4567cdef" in text and "session" in text
        assert "kept previous tables of a restored database app__dr_old_89ab" in text
        assert databases(spec, "app\\_\\_dr\\_%") == ["app__dr_old_89ab", "app__dr_staging_4567cdef"]
    finally:
        busy.close()
        conn = connect(spec)
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS `app__dr_staging_4567cdef`")
            cur.execute("DROP DATABASE IF EXISTS `app__dr_old_89ab`")
        conn.close()


def test_prune_marks_an_old_record_stuck_without_a_lease(setup, capsys):
    config = setup["write"](setup["file"])
    started = datetime.now(timezone.utc) - timedelta(hours=30)
    run_id = f"backup-{started:%Y%m%dT%H%M%SZ}-abcd"
    recent = datetime.now(timezone.utc) - timedelta(hours=1)
    young = f"restore-{recent:%Y%m%dT%H%M%SZ}-abcd"
    runs = setup["state"] / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for rid, when in ((run_id, started), (young, recent)):
        (runs / f"{rid}.json").write_text(json.dumps({
            "run_id": rid, "kind": rid.split("-")[0], "status": "running",
            "started_at": when.isoformat(), "results": [{"name": "lamp", "kind": "mysql",
                                                          "status": "running",
                                                          "started_at": when.isoformat()}]}))
    capsys.readouterr()
    assert main(["--config", config, "backup", "prune"]) == 0
    text = capsys.readouterr().out
    assert f"marked interrupted run record {run_id}" in text and young not in text
    doc = json.loads((runs / f"{run_id}.json").read_text())
    assert doc["status"] == "interrupted" and "more than 24 h" in doc["error"]
    assert json.loads((runs / f"{young}.json").read_text())["status"] == "running"
