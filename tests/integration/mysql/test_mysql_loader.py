"""The restore's loader pool ends deterministically on its first error, and every restore and
verification connection is bounded by timeouts.

The failing restores are run many times, each in a thread with a bound: the old pool could
hang forever (a failing loader emptied the other loaders' queues, stop sentinels included).
The streams are arranged so that the failure comes at the end, while another loader still
builds a big table's indexes, which is where the old pool lost its sentinels.
"""

from __future__ import annotations

import importlib
import io
import json
import threading
import time

import pytest

from dr.mysql import MysqlError, RestoreError, connect, dump, restore, verify
from dr.mysql import conn as conn_mod
from dr.mysql import load as load_mod
from dr.mysql import restore_verify as restore_verify_mod
from dr.mysql.conn import Timeouts
from dr.mysql.frames import DONE, MANIFEST, ROWS, SCHEMA, TABLE_ID, FrameReader, FrameWriter
from dr.mysql.indexes import MIN_ROWS
from tests.support.mariadb import mariadb, mariadb_server, start_or_skip  # noqa: F401

restore_mod = importlib.import_module("dr.mysql.restore")  # dr.mysql.restore is the function

pytestmark = pytest.mark.integration

ROUNDS = 20
BOUND = 60.0  # seconds a failing restore may take (the old pool: forever)
BIG_ROW = 3_000_000  # bytes: more than the small server's max_allowed_packet (1 MB)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server with local_infile OFF and max_allowed_packet = 1 MB."""
    server = start_or_skip(tmp_path_factory.mktemp("mariadb-small"),
                           extra_args=("--local-infile=0", "--max-allowed-packet=1M"))
    yield server.spec
    server.stop()


def _make_slow(cur, db: str) -> None:
    """A table above the deferral threshold whose deferred indexes take a moment to build."""
    cur.execute(f"CREATE TABLE {db}.slow (id INT PRIMARY KEY, v VARCHAR(40), w INT, "
                "KEY kv (v), KEY kw (w, v)) ENGINE=InnoDB")
    cur.execute(f"INSERT INTO {db}.slow SELECT seq, CONCAT('v', seq * 7919 MOD 100003), "
                f"seq MOD 1000 FROM {db}.seq_1_to_150000")
    cur.execute(f"ANALYZE TABLE {db}.slow")
    cur.fetchall()


@pytest.fixture(scope="module")
def streams(mariadb) -> dict[str, bytes]:
    """Two dumps: `dup` (its table `bad` has a KEY over duplicates that the stream turns into a
    UNIQUE KEY: the deferred ALTER TABLE fails), `big` (a 3 MB row)."""
    conn = connect(mariadb)
    with conn.cursor() as cur:
        for db in ("ldr_dup", "ldr_big"):
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
            cur.execute(f"CREATE DATABASE {db}")
            _make_slow(cur, db)
        cur.execute("CREATE TABLE ldr_dup.bad (id INT PRIMARY KEY, g INT, KEY kg (g)) "
                    "ENGINE=InnoDB")
        cur.execute(f"INSERT INTO ldr_dup.bad SELECT seq, seq MOD 100 FROM ldr_dup."
                    f"seq_1_to_{MIN_ROWS + 5000}")
        cur.execute("ANALYZE TABLE ldr_dup.bad")
        cur.fetchall()
        cur.execute("CREATE TABLE ldr_big.huge (id INT PRIMARY KEY, b LONGBLOB)")
        cur.execute("INSERT INTO ldr_big.huge VALUES (1, REPEAT('x', %s))", (BIG_ROW,))
    conn.close()
    out = {}
    for name, db, last in (("dup", "ldr_dup", "bad"), ("big", "ldr_big", "huge")):
        buf = io.BytesIO()
        dump(mariadb, [db], buf, chunk_bytes=64 << 10)
        out[name] = rearrange(buf.getvalue(), ["slow", last], unique=(name == "dup"))
    return out


def rearrange(data: bytes, last: list[str], unique: bool = False) -> bytes:
    """The same stream with the tables named in `last` at its end, in that order (their rows,
    then their DONE frames), and, with `unique`, `bad`'s KEY `kg` made a UNIQUE KEY."""
    frames = list(FrameReader(io.BytesIO(data)))
    ids = {}
    for i, (kind, payload) in enumerate(frames):
        if kind == SCHEMA:
            doc = json.loads(payload)
            for t in doc["tables"]:
                ids[t["id"]] = t["name"]
                if unique and t["name"] == "bad":
                    assert "  KEY `kg` (`g`)" in t["create"]
                    t["create"] = t["create"].replace("  KEY `kg`", "  UNIQUE KEY `kg`")
            frames[i] = (kind, json.dumps(doc).encode("ascii"))

    def table_of(kind, payload):
        if kind == ROWS:
            return ids[TABLE_ID.unpack_from(payload)[0]]
        if kind == DONE:
            return ids[json.loads(payload)["id"]]
        return None

    head = [f for f in frames if f[0] != MANIFEST and table_of(*f) not in last and
            f[0] != b"E"]
    rows = [f for name in last for f in frames if f[0] == ROWS and table_of(*f) == name]
    done = [f for name in last for f in frames if f[0] == DONE and table_of(*f) == name]
    manifest = [f for f in frames if f[0] == MANIFEST]
    out = io.BytesIO()
    w = FrameWriter(out)
    for kind, payload in head + rows + done + manifest:
        w.frame(kind, payload)
    w.end()
    return out.getvalue()


def bounded(fn, what: str, bound: float = BOUND):
    """Run fn() in a thread; fail the test if it has not returned within `bound` seconds.
    Returns (result or None, exception or None, seconds)."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t0 = time.monotonic()
    t = threading.Thread(target=target, daemon=True, name="bounded-restore")
    t.start()
    t.join(bound)
    assert not t.is_alive(), f"{what}: the restore hung, still running after {bound:g}s"
    return box.get("result"), box.get("error"), time.monotonic() - t0


def databases_like(spec, prefix: str) -> list[str]:
    conn = connect(spec)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE %s", (prefix.replace("_", "\\_") + "%",))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("use_load_data", [True, False], ids=["load-data", "insert"])
def test_a_loader_error_ends_the_restore_with_that_error(mariadb, streams, use_load_data):
    """`bad`'s deferred UNIQUE KEY cannot be built (duplicates) while the other loader still
    builds `slow`'s indexes: every round ends within the bound, with the duplicate-key error,
    the staging database dropped and no target created."""
    times = []
    for rnd in range(ROUNDS):
        target = "ldr_dup_copy"
        _, error, seconds = bounded(lambda: restore(
            io.BytesIO(streams["dup"]), mariadb, target_db=target, threads=2 + rnd % 2,
            use_load_data=use_load_data), f"round {rnd}")
        times.append(seconds)
        assert isinstance(error, RestoreError), f"round {rnd}: {error!r}"
        assert "Duplicate entry" in str(error) and "(1062)" in str(error), f"round {rnd}: {error}"
        assert "the target was left as it was" in str(error)
        assert databases_like(mariadb, target) == [], f"round {rnd}: staging left behind"
    print(f"{ROUNDS} failing restores, slowest {max(times):.2f}s")


def test_an_oversized_row_without_local_infile_says_how_to_fix_it(small_server, streams):
    """A 3 MB row, a target with local_infile OFF and max_allowed_packet 1 MB: every round ends
    with the documented error (raise max_allowed_packet or enable local_infile), never with a
    bare "connection reset" or a hang, and leaves nothing behind."""
    for rnd in range(ROUNDS):
        target = "ldr_big_copy"
        _, error, _ = bounded(lambda: restore(io.BytesIO(streams["big"]), small_server,
                                              target_db=target, threads=2 + rnd % 2),
                              f"round {rnd}")
        assert isinstance(error, RestoreError), f"round {rnd}: {error!r}"
        assert "max_allowed_packet" in (error.hint or "") and "local_infile" in error.hint, \
            f"round {rnd}: {error}"
        assert databases_like(small_server, target) == [], f"round {rnd}: staging left behind"
        assert "(1153)" in str(error) and "table huge" in str(error), f"round {rnd}: {error}"


def test_the_same_streams_restore_where_they_fit(mariadb, streams, small_server):
    """The control: the big row loads where it fits (LOAD DATA on the shared server)."""
    result = restore(io.BytesIO(streams["big"]), mariadb, target_db="ldr_big_ok", threads=2)
    assert result.mismatches == [] and result.rows == 150_001


def test_every_restore_and_verify_connection_is_bounded(mariadb, streams, monkeypatch):
    """Each connection a restore or a verify opens has read and write timeouts and a
    server-side statement timeout: the defaults, or the caller's."""
    opened = []
    real = conn_mod.connect

    def spy(spec, database=None, **kw):
        c = real(spec, database, **kw)
        with c.cursor() as cur:
            cur.execute("SELECT @@SESSION.max_statement_time")
            statement = float(cur.fetchone()[0])
        opened.append((c._read_timeout, c._write_timeout, statement))
        return c

    for module in (restore_mod, restore_verify_mod, load_mod):
        monkeypatch.setattr(module, "connect", spy)
    manifest = restore(io.BytesIO(streams["big"]), mariadb, target_db="ldr_bounded",
                       threads=2).manifest
    assert len(opened) == 3  # the coordinator and two loaders
    default = Timeouts()
    assert set(opened) == {(default.read, default.write, default.statement)}
    assert (default.statement, default.read) == (3600.0, 3660.0)
    opened.clear()
    mine = Timeouts.for_statements(120)
    assert verify(mariadb, "ldr_bounded", manifest.databases["ldr_big"].tables,
                  timeouts=mine) == []
    assert opened == [(180.0, 180.0, 120.0)]
    opened.clear()
    with pytest.raises(RestoreError):
        restore(io.BytesIO(streams["big"]), mariadb, target_db="ldr_bounded", timeouts=mine)
    assert opened and set(opened) == {(180.0, 180.0, 120.0)}


@pytest.fixture
def locked(mariadb):
    """ldr_lock.t, write-locked by another session for the test's duration."""
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS ldr_lock")
        cur.execute("CREATE DATABASE ldr_lock")
        cur.execute("CREATE TABLE ldr_lock.t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO ldr_lock.t VALUES (1)")
        cur.execute("LOCK TABLES ldr_lock.t WRITE")
    yield "ldr_lock"
    conn.close()  # releases the lock


def test_a_statement_longer_than_the_statement_timeout_fails_with_a_hint(mariadb, locked):
    from dr.mysql.manifest import TableInfo

    info = {"t": TableInfo(rows=1, checksum=None, bytes=0, engine="InnoDB")}
    t0 = time.monotonic()
    with pytest.raises(MysqlError, match="max_statement_time") as e:
        verify(mariadb, locked, info, timeouts=Timeouts(statement=1, read=30, write=30))
    assert time.monotonic() - t0 < 10
    assert "statement timeout" in e.value.hint


def test_no_answer_within_the_read_timeout_fails(mariadb, locked):
    from dr.mysql.manifest import TableInfo

    info = {"t": TableInfo(rows=1, checksum=None, bytes=0, engine="InnoDB")}
    t0 = time.monotonic()
    with pytest.raises(MysqlError, match="did not answer in time"):
        verify(mariadb, locked, info, timeouts=Timeouts(statement=None, read=1, write=1))
    assert time.monotonic() - t0 < 10


class _LockWhenRowsStart:
    """A stream that takes FLUSH TABLES WITH READ LOCK on another session as soon as the restore
    reads past the schema frames (the staging tables exist, the loaders are about to write),
    and releases it `hold` seconds later."""

    def __init__(self, data: bytes, spec, after: int, hold: float):
        self._buf = io.BytesIO(data)
        self._spec, self._after, self._hold = spec, after, hold
        self.locker = None

    def read(self, n=-1):
        if self.locker is None and self._buf.tell() >= self._after:
            self.locker = connect(self._spec)
            with self.locker.cursor() as cur:
                cur.execute("FLUSH TABLES WITH READ LOCK")
            threading.Timer(self._hold, self.locker.close).start()
        return self._buf.read(n)


def test_a_loader_stuck_on_the_server_fails_within_the_statement_timeout(mariadb, streams):
    """Loaders blocked by a global read lock are stopped by the statement timeout: the restore
    fails with that error and its hint, and drops its staging database once the lock is gone."""
    data = streams["dup"]
    reader = FrameReader(io.BytesIO(data))
    after = 0
    for kind, _ in reader:
        if kind == SCHEMA:
            after = reader.bytes_read
            break
    stream = _LockWhenRowsStart(data, mariadb, after, hold=3.0)
    _, error, seconds = bounded(lambda: restore(stream, mariadb, target_db="ldr_stuck",
                                                timeouts=Timeouts(statement=2, read=30,
                                                                  write=30)), "stuck")
    assert stream.locker is not None
    assert isinstance(error, RestoreError), repr(error)
    assert "max_statement_time" in str(error) and "statement timeout" in error.hint
    assert seconds < 20
    assert databases_like(mariadb, "ldr_stuck") == []
