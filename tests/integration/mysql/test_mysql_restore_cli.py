"""`dr restore mysql` end to end on a real MariaDB, with a key file and a file destination:
definers (warned about, or kept with --keep-definers), --allow-mismatch TABLE, database names
outside [A-Za-z0-9_$-], and a manifest whose `created` was edited (never trusted)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zstandard

from dr.cli import main
from dr.mysql import connect
from dr.mysql.frames import END, MANIFEST, FrameReader, FrameWriter
from tests.support.mariadb import mariadb, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration

SRC = "defs"


def sql(spec, *statements, db=None):
    conn = connect(spec, db) if db else connect(spec)
    try:
        with conn.cursor() as cur:
            out = None
            for s in statements:
                cur.execute(s)
                out = cur.fetchall()
            return out
    finally:
        conn.close()


def drop(spec, *dbs):
    sql(spec, *[f"DROP DATABASE IF EXISTS `{db.replace('`', '``')}`" for db in dbs])


class World:
    def __init__(self, spec, tmp: Path, databases: list[str]):
        self.spec, self.tmp = spec, tmp
        self.key = tmp / "office.key"
        assert main(["keygen", str(self.key)]) == 0
        self.backups = tmp / "backups"
        self.path = tmp / "dr.yaml"
        names = ", ".join("'" + d.replace("'", "''") + "'" for d in databases)
        self.path.write_text(
            "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
            "aws: {endpoint_url: 'http://127.0.0.1:9'}\nobjectives: {rpo: 1h, rto: 30m}\n"
            f"kms: {{dr_key: alias/dr-backups}}\nstate: {{path: '{tmp / 'state'}'}}\n"
            f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {spec.port}, user: root, "
            f"tls: 'off', databases: [{names}], destination: 'file://{self.backups}', "
            f"schedule: every 1h, retention: {{last: 9}}, key_file: '{self.key}'}}\n")

    def dr(self, *args: str, json_output: bool = False) -> int:
        out = ["--output", "json"] if json_output else []
        return main([*out, "--config", str(self.path), *args])

    def uri(self, db: str) -> str:
        from urllib.parse import quote

        return f"mysql://root@127.0.0.1:{self.spec.port}/{quote(db)}?tls=off"

    def restore(self, target: str, *extra: str, json_output: bool = False) -> int:
        return self.dr("restore", "mysql", "--name", "lamp", "--to", self.uri(target), *extra,
                       json_output=json_output)

    def context(self, now: datetime):
        from dr.clock import FixedClock
        from dr.config import load_config
        from dr.context import make_context

        return make_context(load_config(self.path), clock=FixedClock(now))

    def backup_at(self, now: datetime) -> str:
        from dr.backup import mysql

        ctx = self.context(now)
        return mysql.run_backup(ctx, ctx.config.mysql[0], None, now)["backup_id"]

    def records(self):
        from dr.state.local import LocalStore
        from dr.state.records import RunStore

        return RunStore(LocalStore(self.tmp / "state")).list(kind="restore")


# -- definers ------------------------------------------------------------------------------------

DEFINER = "DEFINER=`dr_app`@`%`"


@pytest.fixture
def defs(mariadb, tmp_path):
    drop(mariadb, SRC, "defs_a", "defs_b", "defs_c")
    sql(mariadb, "CREATE USER IF NOT EXISTS 'dr_app'@'%'",
        f"CREATE DATABASE {SRC}", "GRANT ALL ON `defs%`.* TO 'dr_app'@'%'", db=None)
    sql(mariadb,
        "CREATE TABLE t (id INT PRIMARY KEY, n INT)",
        "CREATE TABLE pay (id INT PRIMARY KEY, amount DECIMAL(10,2))",
        "INSERT INTO t VALUES (1, 1), (2, 2)",
        "INSERT INTO pay VALUES (1, 9.99), (2, 0.01)",
        f"CREATE {DEFINER} SQL SECURITY DEFINER VIEW v_def AS SELECT id FROM pay",
        f"CREATE {DEFINER} SQL SECURITY INVOKER VIEW v_inv AS SELECT id FROM t",
        f"CREATE {DEFINER} PROCEDURE p_def() SELECT COUNT(*) FROM pay",
        f"CREATE {DEFINER} FUNCTION f_inv() RETURNS INT SQL SECURITY INVOKER RETURN 1",
        f"CREATE {DEFINER} TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.n = NEW.id",
        f"CREATE {DEFINER} EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM t",
        db=SRC)
    world = World(mariadb, tmp_path, [SRC])
    assert world.dr("backup", "run", "--only", "mysql") == 0
    yield world
    drop(mariadb, SRC, "defs_a", "defs_b", "defs_c")
    sql(mariadb, "DROP USER IF EXISTS 'dr_app'@'%'")


def definers(spec, db):
    return dict(sql(spec, f"""
        SELECT CONCAT('view ', TABLE_NAME), DEFINER FROM information_schema.VIEWS
            WHERE TABLE_SCHEMA='{db}'
        UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME), DEFINER
            FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{db}'
        UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME), DEFINER FROM information_schema.TRIGGERS
            WHERE TRIGGER_SCHEMA='{db}'
        UNION ALL SELECT CONCAT('event ', EVENT_NAME), DEFINER FROM information_schema.EVENTS
            WHERE EVENT_SCHEMA='{db}'"""))


def test_a_restore_names_each_definer_security_object_whose_definer_changes(defs, capsys):
    me = sql(defs.spec, "SELECT CURRENT_USER()")[0][0]
    capsys.readouterr()
    assert defs.restore("defs_a", json_output=True) == 0
    out = json.loads(capsys.readouterr().out)
    (warning,) = [w for w in out["warnings"] if "definer" in w]
    assert warning.startswith(f"defs_a: 4 objects that run with their definer's privileges "
                              f"changed definer from dr_app@% to {me}, so they now run as {me}: ")
    for label in ("procedure p_def", "view v_def", "trigger tr", "event ev"):
        assert label in warning
    assert "v_inv" not in warning and "f_inv" not in warning  # SQL SECURITY INVOKER: no change
    assert set(definers(defs.spec, "defs_a").values()) == {me}
    (record,) = defs.records()
    assert record.status == "completed" and record.results[0].summary["warnings"] == \
        out["warnings"]
    capsys.readouterr()
    assert defs.restore("defs_a", "--force") == 0  # text output says it too
    assert "WARNING: defs_a: 4 objects that run with their definer's privileges changed " \
           "definer from dr_app@%" in capsys.readouterr().out


def test_keep_definers_restores_the_original_definers(defs, capsys):
    capsys.readouterr()
    assert defs.restore("defs_b", "--keep-definers", json_output=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keep_definers"] is True and out["warnings"] == []
    assert definers(defs.spec, "defs_b") == definers(defs.spec, SRC)
    assert set(definers(defs.spec, "defs_b").values()) == {"dr_app@%"}
    # the objects work as before with their definer
    assert sql(defs.spec, "CALL p_def()", db="defs_b") == ((2,),)
    # the definer's account gone from the server: said, not silently broken
    sql(defs.spec, "DROP USER 'dr_app'@'%'")
    capsys.readouterr()
    assert defs.restore("defs_c", "--keep-definers", json_output=True) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert warning.startswith("defs_c: the definer dr_app@% does not exist on this server, so ")
    assert "view v_def" in warning and "trigger tr" in warning and "v_inv" not in warning


# -- --allow-mismatch ----------------------------------------------------------------------------

def retamper(world: World, change_checksums: dict[str, int]) -> None:
    """Re-encrypt the one backup's dump with a manifest whose checksums are changed: an
    authentic backup (same key and context) that disagrees with what the restore loads."""
    from dr.backup.mysql import DATA_SUFFIX, context_for
    from dr.config import load_config
    from dr.crypto import LocalKeyProvider, decrypt_from, encrypt_to

    resource = load_config(world.path).mysql[0]
    (data,) = list((world.backups / "lamp").glob(f"*{DATA_SUFFIX}"))
    bid = data.name[:-len(DATA_SUFFIX)]
    provider = LocalKeyProvider(world.key)
    with open(data, "rb") as f:
        plain = zstandard.ZstdDecompressor().stream_reader(
            decrypt_from(f, provider, context_for(resource, bid))).read()
    out = io.BytesIO()
    writer = FrameWriter(out)
    for kind, payload in FrameReader(io.BytesIO(plain)):
        if kind == MANIFEST:
            doc = json.loads(payload)
            for table, delta in change_checksums.items():
                doc["databases"][SRC]["tables"][table]["checksum"] += delta
            payload = json.dumps(doc).encode()
        if kind != END:
            writer.frame(kind, payload)
    writer.end()
    sink = io.BytesIO()
    enc = encrypt_to(sink, provider, context_for(resource, bid))
    enc.write(zstandard.ZstdCompressor().compress(out.getvalue()))
    enc.close()
    data.write_bytes(sink.getvalue())


def test_allow_mismatch_lets_only_the_named_table_through_and_says_so(defs, capsys):
    retamper(defs, {"pay": 1})
    capsys.readouterr()
    assert defs.restore("defs_a") == 3  # refused: nothing swapped
    assert "defs.pay: checksum" in capsys.readouterr().err
    assert sql(defs.spec, "SHOW DATABASES LIKE 'defs\\_a%'") == ()
    assert defs.restore("defs_a", "--allow-mismatch", "nosuch") == 2
    assert "--allow-mismatch names nosuch, which the backup does not hold" in \
        capsys.readouterr().err
    assert defs.restore("defs_a", "--allow-mismatch", "pay") == 0
    text = capsys.readouterr().out
    assert "; except 1 allowed mismatch (--allow-mismatch)" in text
    assert "WARNING: restored although 1 check(s) failed, allowed with --allow-mismatch; these " \
           "tables do NOT match the backup:\n  MISMATCH defs.pay: checksum " in text
    assert sql(defs.spec, "SELECT COUNT(*) FROM defs_a.pay") == ((2,),)
    assert defs.restore("defs_a", "--force", "--allow-mismatch", "defs.pay",
                        json_output=True) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["allowed_mismatches"]) == 1 and \
        out["allowed_mismatches"][0].startswith("defs.pay: checksum ")
    completed = [r for r in defs.records() if r.status == "completed"]
    assert len(completed) == 2 and all(
        r.results[0].summary["allowed_mismatches"] == out["allowed_mismatches"]
        for r in completed)
    # a mismatch that is not allowed still stops everything
    retamper(defs, {"t": 1})
    assert defs.restore("defs_b", "--allow-mismatch", "pay") == 3
    err = capsys.readouterr().err
    assert "defs.t: checksum" in err and "1 other mismatch(es) were allowed" in err
    assert sql(defs.spec, "SHOW DATABASES LIKE 'defs\\_b%'") == ()


# -- database names --------------------------------------------------------------------------------

NAMES = ["café", "my db"]


def test_database_names_outside_letters_digits_and_underscore(mariadb, tmp_path, capsys):
    drop(mariadb, *NAMES, "café copy", "my.db 2")
    for name in NAMES:
        q = f"`{name}`"
        sql(mariadb, f"CREATE DATABASE {q} CHARACTER SET utf8mb4",
            f"CREATE TABLE {q}.t (id INT PRIMARY KEY, s VARCHAR(10))",
            f"INSERT INTO {q}.t VALUES (1, 'é'), (2, '{name}')",
            f"CREATE VIEW {q}.v AS SELECT {q}.t.s FROM {q}.t WHERE {q}.t.id = 2")
    world = World(mariadb, tmp_path, NAMES)
    assert world.dr("backup", "run", "--only", "mysql") == 0
    for source, target in zip(NAMES, ["café copy", "my.db 2"]):
        assert world.restore(target, "--database", source) == 0
        assert sql(mariadb, f"SELECT s FROM `{target}`.v") == ((source,),)
        assert sql(mariadb, f"SELECT COUNT(*) FROM `{target}`.t") == ((2,),)
    drop(mariadb, *NAMES, "café copy", "my.db 2")


# -- the manifest's `created` ----------------------------------------------------------------------

T1 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 3, 1, 11, 0, tzinfo=timezone.utc)


def test_an_edited_created_never_makes_an_old_backup_the_newest(mariadb, tmp_path, capsys):
    from dr.backup import mysql

    drop(mariadb, "aged", "aged_copy")
    sql(mariadb, "CREATE DATABASE aged", "CREATE TABLE aged.t (id INT PRIMARY KEY)",
        "INSERT INTO aged.t VALUES (1)")
    world = World(mariadb, tmp_path, ["aged"])
    old = world.backup_at(T1)
    sql(mariadb, "INSERT INTO aged.t VALUES (2)")
    new = world.backup_at(T2)
    sidecar = world.backups / "lamp" / f"{old}{mysql.MANIFEST_SUFFIX}"
    doc = json.loads(sidecar.read_text())
    doc["created"] = "2026-03-02T00:00:00+00:00"  # "newer" than the real newest
    sidecar.write_text(json.dumps(doc))
    capsys.readouterr()
    assert world.restore("aged_copy") == 0
    out = capsys.readouterr().out
    assert sql(mariadb, "SELECT COUNT(*) FROM aged_copy.t") == ((2,),)  # the real newest
    assert f"Restored backup {new} " in out
    assert doc["auth"]["alg"] == "HMAC-SHA256"
    assert f"ignored a backup whose manifest does not authenticate: {sidecar} fails " \
           "authentication" in out
    # asked for by id, the edited manifest is refused outright
    assert world.restore("aged_copy", "--force", "--backup", old) == 1
    assert "fails authentication" in capsys.readouterr().err
    # a manifest from before manifests had a MAC: its time is checked against the dump
    del doc["auth"]
    sidecar.write_text(json.dumps(doc))
    ctx = world.context(T2)
    chosen = mysql.open_backup(ctx, ctx.config.mysql[0], None)[0]
    assert chosen.id == new and "the manifest was changed" in chosen.warnings[0]
    doc["created"] = mysql.iso(T1)  # as it was written: believed, and older
    sidecar.write_text(json.dumps(doc))
    backups, problems = mysql.authenticated_backups(mysql.destination(ctx, ctx.config.mysql[0],
                                                                      None),
                                                    ctx.config.mysql[0],
                                                    mysql.key_provider(ctx, ctx.config.mysql[0]))
    assert [b.id for b in backups] == [new, old] and problems == []
    drop(mariadb, "aged", "aged_copy")


def test_an_edited_created_never_makes_prune_delete_the_newest_nor_readiness_pass(mariadb, tmp_path,
                                                                                 capsys):
    """With `last: 1`, an old backup's manifest edited to look newest would make prune delete the
    real newest, and readiness call a stale destination fresh: only authenticated manifests count."""
    from dr.backup import mysql
    from dr.failover.readiness import check_readiness

    drop(mariadb, "aged2")
    sql(mariadb, "CREATE DATABASE aged2", "CREATE TABLE aged2.t (id INT PRIMARY KEY)")
    world = World(mariadb, tmp_path, ["aged2"])
    world.path.write_text(world.path.read_text().replace("retention: {last: 9}", "retention: {last: 1}"))
    old, new = world.backup_at(T1), world.backup_at(T2)
    sidecar = world.backups / "lamp" / f"{old}{mysql.MANIFEST_SUFFIX}"
    doc = json.loads(sidecar.read_text())
    doc["created"] = "2026-03-02T00:00:00+00:00"  # "newer" than the real newest
    sidecar.write_text(json.dumps(doc))
    capsys.readouterr()
    assert world.dr("backup", "prune") == 0
    out = capsys.readouterr().out
    assert "not deleted: its manifest does not authenticate" in out
    left = sorted(p.name for p in (world.backups / "lamp").iterdir())
    assert f"{new}{mysql.MANIFEST_SUFFIX}" in left  # the real newest is kept
    assert f"{old}{mysql.MANIFEST_SUFFIX}" in left  # and what cannot be proven is not deleted
    checks = {c.name: c for c in check_readiness(world.context(T2 + timedelta(hours=3)))}
    assert not checks["mysql:lamp:manifests"].ok and "fails authentication" in \
        checks["mysql:lamp:manifests"].detail
    backup = checks["mysql:lamp:backup"]
    assert not backup.ok  # the newest proven backup is 3h old, over the 1h RPO (not "fresh")
    drop(mariadb, "aged2")

