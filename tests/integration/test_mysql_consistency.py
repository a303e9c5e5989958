"""Consistency: one snapshot across all dump connections while a writer commits, the binlog
position of that snapshot, and the lock fallbacks for accounts without RELOAD."""

from __future__ import annotations

import io
import threading

import pytest

from dr.mysql import ConnectionSpec, connect, dump, restore
from tests.mariadb import mariadb, mariadb_binlog, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration


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
    assert manifest.consistency == ("snapshot" if threads == 1 else "snapshot+ftwrl")
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db=f"{db}_copy")
    assert result.mismatches == []  # checksums were taken in the same snapshot
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"SELECT (SELECT COUNT(*) FROM {db}_copy.a), (SELECT COUNT(*) FROM {db}_copy.b)")
        a, b = cur.fetchone()
    assert a == b == tables["a"].rows


def test_myisam_takes_the_lock_even_with_one_thread(mariadb):
    make_pair(mariadb, "cons_myisam", engine="MyISAM", rows=100)
    manifest = dump(mariadb, ["cons_myisam"], io.BytesIO(), threads=1)
    assert manifest.consistency == "snapshot+ftwrl" and manifest.warnings == []


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


def test_lock_not_granted_in_time_means_one_connection(mariadb):
    """A long write keeps FLUSH TABLES WITH READ LOCK waiting: InnoDB-only dumps go on with one
    connection (no lock needed) instead of failing; with MyISAM they fail, clearly."""
    import time

    from dr.mysql import DumpError

    for db, engine in (("cons_slow", "InnoDB"), ("cons_slow_m", "MyISAM")):
        make_pair(mariadb, db, engine=engine, rows=100)
        blocker = connect(mariadb)
        t = threading.Thread(target=lambda: blocker.cursor().execute(
            f"UPDATE {db}.b SET pad = SLEEP(3) WHERE id = 1"), daemon=True)
        t.start()
        time.sleep(0.3)
        try:
            if engine == "InnoDB":
                manifest = dump(mariadb, [db], io.BytesIO(), threads=2, lock_timeout=1)
                assert manifest.threads == 1 and manifest.consistency == "snapshot"
                assert any("not granted within 1s" in w for w in manifest.warnings)
                assert manifest.databases[db].tables["a"].rows == 100
            else:
                with pytest.raises(DumpError, match="non-transactional"):
                    dump(mariadb, [db], io.BytesIO(), threads=1, lock_timeout=1)
        finally:
            t.join()
