"""How a dump starts while the server is busy: DDL committing in a loop, a long write holding
off the read lock, writers that must not be frozen. Every backup that reports success must
restore with matching row counts and checksums; one that cannot be made consistent must fail,
saying why. Each mode is exercised: one connection, several connections under BACKUP STAGE, under
FLUSH TABLES WITH READ LOCK (BACKUP STAGE switched off, as on MySQL), and under LOCK TABLES (an
account without RELOAD)."""

from __future__ import annotations

import importlib
import io
import threading
import time

import pymysql
import pytest

from dr.mysql import ConnectionSpec, DumpError, MysqlError, connect, dump, restore
from tests.support.mariadb import mariadb, mariadb_binlog, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration
dump_module = importlib.import_module("dr.mysql.dump")  # the package's `dump` is the function
consistency_module = importlib.import_module("dr.mysql.dump_consistency")

BACKUPS = 10


def make_db(spec, db: str, rows: int = 3000) -> None:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        for t in ("a", "b", "x"):
            cur.execute(f"CREATE TABLE {db}.{t} (id INT AUTO_INCREMENT PRIMARY KEY, "
                        "pad VARCHAR(200)) ENGINE=InnoDB")
            cur.executemany(f"INSERT INTO {db}.{t} (pad) VALUES (%s)", [("p" * 100,)] * rows)
    conn.close()


def drop(spec, db: str) -> None:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
    conn.close()


def account(admin: ConnectionSpec, kind: str) -> ConnectionSpec:
    """root (RELOAD: BACKUP STAGE / FTWRL), or an account without RELOAD (LOCK TABLES, and
    PROCESS so the long-query guard sees other accounts' statements)."""
    if kind == "root":
        return admin
    conn = connect(admin)
    with conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'dr_noreload'@'%'")
        cur.execute("CREATE USER 'dr_noreload'@'%' IDENTIFIED BY 'pw'")
        cur.execute("GRANT SELECT, LOCK TABLES, PROCESS, BINLOG MONITOR, SHOW VIEW, TRIGGER, EVENT "
                    "ON *.* TO 'dr_noreload'@'%'")
    conn.close()
    return ConnectionSpec(host=admin.host, port=admin.port, user="dr_noreload", password="pw",
                          tls="off")


class Loop(threading.Thread):
    """Runs statements over and over on its own connection until stopped."""

    def __init__(self, spec, statements):
        super().__init__(daemon=True)
        self.conn = connect(spec)
        self.statements = statements
        self.stop = threading.Event()
        self.runs = 0
        self.errors: list[BaseException] = []

    def run(self):
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                for sql in self.statements:
                    try:
                        cur.execute(sql)
                    except pymysql.MySQLError as e:  # e.g. interrupted at the end of the test
                        self.errors.append(e)
                self.runs += 1

    def finish(self):
        self.stop.set()
        self.join(60)
        self.conn.close()


def ddl_loop(spec, db):
    return Loop(spec, [
        f"ALTER TABLE {db}.a ADD COLUMN c INT NOT NULL DEFAULT 7, ALGORITHM=INSTANT",
        f"ALTER TABLE {db}.a DROP COLUMN c, ALGORITHM=INSTANT",
    ])


def backups_restore(spec, admin, db, *, threads, lock_timeout=None, n=BACKUPS):
    """n dumps; each one that succeeds is restored (row counts and checksums checked).
    Returns ([manifests of the dumps that succeeded], [errors of those that failed]); a
    completed dump that does not restore fails the test."""
    ok, failed = [], []
    kwargs = {} if lock_timeout is None else {"lock_timeout": lock_timeout}
    for i in range(n):
        buf = io.BytesIO()
        try:
            manifest = dump(spec, [db], buf, threads=threads, **kwargs)
        except DumpError as e:  # failing clearly is allowed; a bad "complete" backup is not
            failed.append(e)
            continue
        target = f"{db}_r{i}"
        try:
            result = restore(io.BytesIO(buf.getvalue()), admin, target_db=target)
        except MysqlError as e:  # VerificationFailed, or the stream does not even load
            pytest.fail(f"backup {i} reported success ({manifest.consistency}, "
                        f"{manifest.threads} connection(s), warnings {manifest.warnings}) "
                        f"but does not restore: {e}")
        finally:
            drop(admin, target)
        assert result.mismatches == []
        ok.append(manifest)
    return ok, failed


@pytest.mark.parametrize("case", ["no-binlog", "binlog", "binlog-noreload"])
def test_ddl_loop_during_one_connection_dumps(request, case):
    """threads: 1 needs no read lock for the rows, but the metadata locks must be held from
    before the snapshot opens and the schema is read, or an ALTER slips in between. They are
    taken first; with the binlog on and RELOAD, BACKUP STAGE BLOCK_COMMIT is then held while
    the snapshot opens, for the exact binlog position."""
    admin = request.getfixturevalue("mariadb" if case == "no-binlog" else "mariadb_binlog")
    db = f"lk_ddl1_{case.replace('-', '_')}"
    make_db(admin, db)
    spec = account(admin, "noreload" if case == "binlog-noreload" else "root")
    loop = ddl_loop(admin, db)
    loop.start()
    try:
        ok, failed = backups_restore(spec, admin, db, threads=1)
    finally:
        loop.finish()
    assert len(ok) == BACKUPS, failed
    expected = "snapshot+backup-stage" if case == "binlog" else "snapshot"
    assert {m.consistency for m in ok} == {expected}
    assert all((m.binlog is None) == (case == "no-binlog") for m in ok)
    if case == "binlog-noreload":
        assert all(any("approximate" in w for w in m.warnings) for m in ok)
    else:
        assert all(m.warnings == [] for m in ok)
    assert loop.runs >= BACKUPS // 2  # the ALTERs ran between (and waited for) the dumps


@pytest.mark.parametrize("mode", ["backup-stage", "ftwrl", "lock-tables"])
def test_ddl_loop_while_a_long_write_holds_off_the_lock(mariadb, monkeypatch, mode):
    """Several connections, a long UPDATE always running (FLUSH TABLES WITH READ LOCK and
    LOCK TABLES cannot be had), an ALTER loop on another table: every completed backup is
    consistent."""
    db = f"lk_ddl2_{mode.replace('-', '_')}"
    make_db(mariadb, db, rows=2000)
    if mode == "ftwrl":  # as on MySQL, or MariaDB < 10.4: no BACKUP STAGE
        monkeypatch.setattr(consistency_module, "USE_BACKUP_STAGE", False, raising=False)
    spec = account(mariadb, "noreload" if mode == "lock-tables" else "root")
    writer = Loop(mariadb, [f"UPDATE {db}.x SET pad = CONCAT('u', SLEEP(3)) WHERE id = 1"])
    writer.start()
    time.sleep(0.5)
    loop = ddl_loop(mariadb, db)
    loop.start()
    try:
        ok, failed = backups_restore(spec, mariadb, db, threads=2, lock_timeout=1, n=6)
    finally:
        loop.finish()
        writer.finish()
    assert len(ok) + len(failed) == 6
    assert len(ok) >= 1, failed  # InnoDB only: one consistent connection is always possible
    if mode == "backup-stage":  # waits for no write: several connections every time
        assert all(m.consistency == "snapshot+backup-stage" and m.threads == 2 for m in ok)
    else:  # the read lock cannot be had (but for a lucky moment between two UPDATEs): one
        # connection, consistent, and it says why
        assert all(m.threads == 1 and any("one connection" in w for w in m.warnings) or
                   m.consistency == f"snapshot+{mode}" for m in ok), [m.warnings for m in ok]
    assert loop.runs >= 2


class Inserter(threading.Thread):
    """Single-row INSERTs (autocommit) in a loop; records the slowest one."""

    def __init__(self, spec, db):
        super().__init__(daemon=True)
        self.conn = connect(spec)
        self.db = db
        self.stop = threading.Event()
        self.worst = 0.0
        self.count = 0

    def run(self):
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                t = time.monotonic()
                cur.execute(f"INSERT INTO {self.db}.a (pad) VALUES ('ins')")
                self.worst = max(self.worst, time.monotonic() - t)
                self.count += 1
                time.sleep(0.005)


@pytest.mark.parametrize("mode", ["backup-stage", "ftwrl", "lock-tables"])
def test_long_write_at_backup_start_does_not_freeze_writers(mariadb, monkeypatch, mode):
    """A long UPDATE runs when the backup starts; another session inserts rows one by one. Its
    slowest INSERT must stay well under the lock timeout (2 s): the backup never queues every
    writer behind a read lock that waits for the long write. The backup completes consistently
    or fails clearly."""
    db = f"lk_long_{mode.replace('-', '_')}"
    make_db(mariadb, db, rows=2000)
    if mode == "ftwrl":
        monkeypatch.setattr(consistency_module, "USE_BACKUP_STAGE", False, raising=False)
    spec = account(mariadb, "noreload" if mode == "lock-tables" else "root")
    blocker = connect(mariadb)
    long_write = threading.Thread(target=lambda: blocker.cursor().execute(
        f"UPDATE {db}.x SET pad = CONCAT('u', SLEEP(6)) WHERE id = 1"), daemon=True)
    long_write.start()
    time.sleep(1.2)
    inserter = Inserter(mariadb, db)
    inserter.start()
    time.sleep(0.3)
    buf = io.BytesIO()
    manifest = error = None
    try:
        manifest = dump(spec, [db], buf, threads=2, lock_timeout=2)
    except DumpError as e:
        error = e
    finally:
        time.sleep(0.3)
        inserter.stop.set()
        inserter.join()
        long_write.join()
    assert inserter.count > 20
    assert inserter.worst < 1.0, f"an INSERT waited {inserter.worst:.2f}s"
    if error is not None:
        assert "consistent" in str(error) or "lock" in str(error)
        return
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db=f"{db}_copy")
    assert result.mismatches == []
    assert manifest.databases[db].tables["a"].rows >= 2000


def test_lock_timeout_from_the_config_reaches_the_dump(mariadb, monkeypatch, tmp_path):
    """mysql[].lock_timeout is what `dr backup run` passes to the dump."""
    from dr.cli import main

    make_db(mariadb, "lk_cfg", rows=10)
    seen = {}
    real = dump_module.dump

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(dump_module, "dump", spy)
    key = tmp_path / "office.key"
    assert main(["keygen", str(key)]) == 0
    path = tmp_path / "dr.yaml"
    path.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
        f"state: {{path: '{tmp_path / 'state'}'}}\n"
        f"mysql:\n  - {{name: lk, host: 127.0.0.1, port: {mariadb.port}, user: root, tls: 'off', "
        f"databases: [lk_cfg], destination: 'file://{tmp_path}/backups', key_file: '{key}', "
        "schedule: every 1h, lock_timeout: 5s}\n")
    assert main(["--config", str(path), "backup", "run", "--only", "mysql"]) == 0
    assert seen["lock_timeout"] == 5
