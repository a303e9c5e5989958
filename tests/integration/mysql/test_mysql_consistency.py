"""Consistency: one snapshot across all dump connections while a writer commits, checksums taken
in that snapshot, the binlog position of that snapshot, the locks per mode and their fallbacks
(accounts without RELOAD, servers without BACKUP STAGE, a long write at the start), and the
server behaviours the dump's start relies on. DDL and writer-freeze races: test_mysql_locking.py.
"""

from __future__ import annotations

import importlib
import io
import threading
import time

import pytest

from dr.mysql import ConnectionSpec, DumpError, connect, dump, restore
from tests.support.mariadb import mariadb, mariadb_binlog, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration
consistency_module = importlib.import_module("dr.mysql.dump_consistency")


def make_pair(spec, db: str, engine: str = "InnoDB", rows: int = 20000) -> None:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        for t in ("a", "b"):
            cur.execute(f"CREATE TABLE {db}.{t} (id INT AUTO_INCREMENT PRIMARY KEY, "
                        f"pad VARCHAR(200)) ENGINE={engine}")
            cur.executemany(f"INSERT INTO {db}.{t} (pad) VALUES (%s)",
                            [("x" * 150,)] * rows)
    conn.close()


class Writer(threading.Thread):
    """Commits one row to a and one to b per transaction, as fast as it can."""

    def __init__(self, spec, db):
        super().__init__(daemon=True)
        self.conn = connect(spec)
        self.db = db
        self.stop = threading.Event()
        self.commits = 0

    def run(self):
        with self.conn.cursor() as cur:
            while not self.stop.is_set():
                cur.execute("BEGIN")
                cur.execute(f"INSERT INTO {self.db}.a (pad) VALUES ('w')")
                cur.execute(f"INSERT INTO {self.db}.b (pad) VALUES ('w')")
                cur.execute("COMMIT")
                self.commits += 1


@pytest.mark.parametrize("threads", [1, 3])
def test_one_snapshot_while_a_writer_commits(mariadb, threads):
    db = f"cons_{threads}"
    make_pair(mariadb, db)
    writer = Writer(mariadb, db)
    writer.start()
    try:
        while writer.commits < 50:
            pass
        buf = io.BytesIO()
        manifest = dump(mariadb, [db], buf, threads=threads, chunk_bytes=32 << 10)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.commits > 50
    tables = manifest.databases[db].tables
    assert tables["a"].rows == tables["b"].rows > 20000
    assert tables["a"].chunks > 10
    assert manifest.consistency == ("snapshot" if threads == 1 else "snapshot+backup-stage")
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db=f"{db}_copy")
    assert result.mismatches == []  # checksums were taken in the same snapshot
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"SELECT (SELECT COUNT(*) FROM {db}_copy.a), (SELECT COUNT(*) FROM {db}_copy.b)")
        a, b = cur.fetchone()
    assert a == b == tables["a"].rows


@pytest.mark.parametrize("backup_stage", [True, False])
def test_myisam_takes_the_lock_even_with_one_thread(mariadb, monkeypatch, backup_stage):
    monkeypatch.setattr(consistency_module, "USE_BACKUP_STAGE", backup_stage, raising=False)
    make_pair(mariadb, "cons_myisam", engine="MyISAM", rows=100)
    manifest = dump(mariadb, ["cons_myisam"], io.BytesIO(), threads=1)
    assert manifest.consistency == ("snapshot+backup-stage" if backup_stage else
                                    "snapshot+ftwrl") and manifest.warnings == []


def test_checksum_table_reads_the_dump_snapshot(mariadb):
    """The manifest's CHECKSUM TABLE values come from the workers' transactions: InnoDB runs
    CHECKSUM TABLE as a consistent read, so rows committed after the snapshot do not count."""
    make_pair(mariadb, "cons_ck", rows=100)
    conn, other = connect(mariadb), connect(mariadb)
    with conn.cursor() as cur, other.cursor() as cur2:
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("CHECKSUM TABLE cons_ck.a")
        before = cur.fetchone()[1]
        cur2.execute("INSERT INTO cons_ck.a (pad) VALUES ('later')")
        cur.execute("CHECKSUM TABLE cons_ck.a")
        assert cur.fetchone()[1] == before
        cur.execute("SELECT COUNT(*) FROM cons_ck.a")  # still the same transaction
        assert cur.fetchone()[0] == 100
        cur.execute("COMMIT")
        cur.execute("CHECKSUM TABLE cons_ck.a")
        assert cur.fetchone()[1] != before


def test_limit_0_takes_metadata_locks_without_opening_the_snapshot(mariadb):
    """The one-connection start relies on it: SELECT ... LIMIT 0 in a plain transaction holds the
    table's metadata lock (DDL waits) but reads nothing, so the snapshot opens later."""
    make_pair(mariadb, "cons_mdl", rows=10)
    conn, other, ddl = connect(mariadb), connect(mariadb), connect(mariadb)
    with conn.cursor() as cur, other.cursor() as cur2:
        cur.execute("START TRANSACTION READ ONLY")
        cur.execute("(SELECT 1 FROM cons_mdl.a LIMIT 0) UNION ALL "
                    "(SELECT 1 FROM cons_mdl.b LIMIT 0)")
        cur2.execute("INSERT INTO cons_mdl.a (pad) VALUES ('after the locks')")
        with ddl.cursor() as cur3:
            cur3.execute("SET SESSION lock_wait_timeout = 1")
            with pytest.raises(Exception, match="Lock wait timeout"):
                cur3.execute("ALTER TABLE cons_mdl.a ADD COLUMN c INT, ALGORITHM=INSTANT")
        cur.execute("SELECT COUNT(*) FROM cons_mdl.a")  # the snapshot opens here
        assert cur.fetchone()[0] == 11
        cur.execute("COMMIT")


def test_backup_stage_block_commit_waits_for_no_running_write(mariadb):
    """Why BACKUP STAGE comes first on MariaDB: unlike FLUSH TABLES WITH READ LOCK it is granted
    while a long UPDATE runs, so writers never queue behind it."""
    make_pair(mariadb, "cons_bs", rows=10)
    blocker, coord = connect(mariadb), connect(mariadb)
    t = threading.Thread(target=lambda: blocker.cursor().execute(
        "UPDATE cons_bs.b SET pad = SLEEP(2) WHERE id = 1"), daemon=True)
    t.start()
    time.sleep(0.3)
    try:
        with coord.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 1")
            started = time.monotonic()
            for stage in ("START", "BLOCK_DDL", "BLOCK_COMMIT"):
                cur.execute(f"BACKUP STAGE {stage}")
            assert time.monotonic() - started < 0.5
            cur.execute("BACKUP STAGE END")
            with pytest.raises(Exception, match="Lock wait timeout"):
                cur.execute("FLUSH TABLES WITH READ LOCK")
    finally:
        t.join()


def test_binlog_position_of_the_snapshot(mariadb_binlog):
    spec = mariadb_binlog
    make_pair(spec, "binlogged", rows=100)
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        file, pos = cur.fetchone()[:2]
        cur.execute("SELECT @@gtid_binlog_pos")
        gtid = cur.fetchone()[0]
    for threads in (1, 2):
        manifest = dump(spec, ["binlogged"], io.BytesIO(), threads=threads)
        assert manifest.binlog is not None
        assert (manifest.binlog.file, manifest.binlog.position) == (file, pos)
        assert manifest.binlog.gtid == gtid and gtid.startswith("0-1-")
        assert manifest.to_dict()["binlog"] == {"file": file, "position": pos, "gtid": gtid}
    with conn.cursor() as cur:
        cur.execute("INSERT INTO binlogged.a (pad) VALUES ('after')")
        cur.execute("SHOW MASTER STATUS")
        assert cur.fetchone()[1] > pos


def test_no_binlog_means_none(mariadb):
    make_pair(mariadb, "nobinlog", rows=10)
    assert dump(mariadb, ["nobinlog"], io.BytesIO()).binlog is None


def _user(admin_spec, name: str, grants: str) -> ConnectionSpec:
    conn = connect(admin_spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw'")
        cur.execute(f"GRANT {grants} ON *.* TO '{name}'@'%'")
    return ConnectionSpec(host=admin_spec.host, port=admin_spec.port, user=name, password="pw",
                          tls="off")


def test_without_reload_lock_tables_is_used(mariadb):
    make_pair(mariadb, "cons_priv", rows=500)
    spec = _user(mariadb, "dr_locker", "SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT")
    manifest = dump(spec, ["cons_priv"], io.BytesIO(), threads=2)
    assert manifest.consistency == "snapshot+lock-tables"
    assert manifest.databases["cons_priv"].tables["a"].rows == 500


def test_without_any_lock_privilege_one_connection(mariadb):
    make_pair(mariadb, "cons_priv2", rows=500)
    spec = _user(mariadb, "dr_reader", "SELECT, SHOW VIEW, TRIGGER, EVENT")
    buf = io.BytesIO()
    manifest = dump(spec, ["cons_priv2"], buf, threads=2)
    assert manifest.consistency == "snapshot" and manifest.threads == 1
    assert any("one connection" in w for w in manifest.warnings)
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db="cons_priv2_copy")
    assert result.rows == 1000


@pytest.mark.parametrize("backup_stage", [True, False])
def test_long_write_at_the_start(mariadb, monkeypatch, backup_stage):
    """A long write at the start: BACKUP STAGE does not wait for it (several connections, no
    warning); FLUSH TABLES WITH READ LOCK is not even asked for while it runs (the long-query
    guard), so an InnoDB-only dump goes on with one connection, consistently, and says so."""
    monkeypatch.setattr(consistency_module, "USE_BACKUP_STAGE", backup_stage, raising=False)
    monkeypatch.setattr(consistency_module, "LOCK_PAUSES", (0.2, 0.2), raising=False)
    db = f"cons_slow_{int(backup_stage)}"
    make_pair(mariadb, db, rows=100)
    blocker = connect(mariadb)
    t = threading.Thread(target=lambda: blocker.cursor().execute(
        f"UPDATE {db}.b SET pad = SLEEP(4) WHERE id = 1"), daemon=True)
    t.start()
    time.sleep(0.6)
    try:
        buf = io.BytesIO()
        manifest = dump(mariadb, [db], buf, threads=2, lock_timeout=1)
        if backup_stage:
            assert manifest.threads == 2 and manifest.consistency == "snapshot+backup-stage"
            assert manifest.warnings == []
        else:
            assert manifest.threads == 1 and manifest.consistency == "snapshot"
            assert any("running for over 0.5s would hold the read lock off" in w and
                       "one connection" in w for w in manifest.warnings), manifest.warnings
        assert manifest.databases[db].tables["a"].rows == 100
    finally:
        t.join()
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db=f"{db}_copy")
    assert result.mismatches == []


def test_myisam_that_cannot_be_locked_fails_clearly(mariadb, monkeypatch):
    """A long write to a MyISAM table holds off every lock (BACKUP STAGE BLOCK_DDL waits for it):
    after the tries, the dump fails and says why, instead of dumping it unlocked."""
    monkeypatch.setattr(consistency_module, "LOCK_PAUSES", (0.2, 0.2), raising=False)
    db = "cons_slow_m"
    make_pair(mariadb, db, engine="MyISAM", rows=100)
    blocker = connect(mariadb)
    t = threading.Thread(target=lambda: blocker.cursor().execute(
        f"UPDATE {db}.b SET pad = SLEEP(6) WHERE id = 1"), daemon=True)
    t.start()
    time.sleep(0.3)
    try:
        with pytest.raises(DumpError, match="3 tries, 1s each.*non-transactional") as e:
            dump(mariadb, [db], io.BytesIO(), threads=1, lock_timeout=1)
        assert "lock_timeout" in e.value.hint
    finally:
        t.join()
