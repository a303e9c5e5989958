"""Faults: a stream that fails mid-read, truncation, damage, SQL errors, mismatches, a failing
swap, a server killed mid-dump, wrong passwords, unreachable servers, TLS required but absent.
After every failed restore the target must be exactly as before and no staging database left."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import pytest

from dr.errors import EXIT_USAGE, DrError
from dr.mysql import (
    ConnectionSpec,
    DumpError,
    MysqlAuthError,
    MysqlError,
    MysqlTlsError,
    MysqlUnreachable,
    RestoreError,
    StreamFormatError,
    TargetNotEmpty,
    VerificationFailed,
    connect,
    dump,
    restore,
)
from dr.mysql.frames import MANIFEST, ROWS, SCHEMA, FrameReader, FrameWriter
from tests.support.mariadb import free_port, mariadb, mariadb_server, start_or_skip  # noqa: F401

pytestmark = pytest.mark.integration


class FakeAuthError(DrError):
    """What the crypto layer raises when a chunk fails authentication."""


def make_source(spec, db: str, rows: int = 5000) -> None:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(100), b BLOB)")
        cur.executemany(f"INSERT INTO {db}.t VALUES (%s, %s, %s)",
                        [(i, f"value {i} 'quoted'", bytes([i % 256]) * 20) for i in range(rows)])
        cur.execute(f"CREATE TABLE {db}.u (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {db}.u VALUES (1), (2)")
        cur.execute(f"CREATE VIEW {db}.vt AS SELECT COUNT(*) AS n FROM {db}.t")
    conn.close()


def make_target(spec, db: str) -> dict:
    """A target that already holds things, and a snapshot of them to compare with later."""
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.keep (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"INSERT INTO {db}.keep VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")  # same name as the dump's
        cur.execute(f"INSERT INTO {db}.t VALUES (42)")
        cur.execute(f"CREATE VIEW {db}.keep_v AS SELECT id FROM {db}.keep")
        cur.execute(f"CREATE TRIGGER {db}.keep_tr BEFORE INSERT ON {db}.keep FOR EACH ROW "
                    "SET NEW.v = UPPER(NEW.v)")
        cur.execute(f"CREATE PROCEDURE {db}.keep_p() SELECT 1")
        cur.execute(f"CREATE EVENT {db}.keep_e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1")
    conn.close()
    return state(spec, db)


def state(spec, db: str) -> dict:
    conn = connect(spec)
    with conn.cursor() as cur:
        out = {}
        for key, sql in {
            "tables": "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                      "WHERE TABLE_SCHEMA=%s ORDER BY 1",
            "triggers": "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS "
                        "WHERE TRIGGER_SCHEMA=%s ORDER BY 1",
            "routines": "SELECT ROUTINE_NAME FROM information_schema.ROUTINES "
                        "WHERE ROUTINE_SCHEMA=%s ORDER BY 1",
            "events": "SELECT EVENT_NAME FROM information_schema.EVENTS "
                      "WHERE EVENT_SCHEMA=%s ORDER BY 1",
        }.items():
            cur.execute(sql, (db,))
            out[key] = cur.fetchall()
        for name, kind in out["tables"]:
            if kind == "BASE TABLE":
                cur.execute(f"SELECT * FROM `{db}`.`{name}` ORDER BY 1")
                out[f"rows:{name}"] = cur.fetchall()
    conn.close()
    return out


def leftovers(spec) -> list[str]:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                    "'%\\_\\_dr\\_staging\\_%' OR SCHEMA_NAME LIKE '%\\_\\_dr\\_old\\_%'")
        names = [r[0] for r in cur.fetchall()]
    conn.close()
    return names


def database_exists(spec, db: str) -> bool:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
        found = cur.fetchone() is not None
    conn.close()
    return found


class FailingStream(io.RawIOBase):
    """Serves `data`, then raises `error` once `fail_at` bytes have been read."""

    def __init__(self, data: bytes, fail_at: int, error: BaseException):
        self.data, self.fail_at, self.error, self.pos = data, fail_at, error, 0

    def readable(self):
        return True

    def read(self, n=-1):
        if self.pos >= self.fail_at:
            raise self.error
        n = len(self.data) - self.pos if n is None or n < 0 else n
        n = min(n, self.fail_at - self.pos, 8192)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def reframe(data: bytes, change) -> bytes:
    """Rewrite a valid dump frame by frame: change(kind, payload) → payload or None to drop."""
    out = io.BytesIO()
    writer = FrameWriter(out)
    for kind, payload in FrameReader(io.BytesIO(data)):
        if kind == b"E":
            writer.end()
            break
        new = change(kind, payload)
        if new is not None:
            writer.frame(kind, new)
    return out.getvalue()


@pytest.fixture(scope="module")
def source(mariadb):
    make_source(mariadb, "fault_src")
    buf = io.BytesIO()
    manifest = dump(mariadb, ["fault_src"], buf, threads=2, chunk_bytes=16 << 10)
    assert manifest.databases["fault_src"].tables["t"].chunks > 10
    return buf.getvalue()


# -- restore faults ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_stream_error_mid_read_leaves_target_intact(mariadb, source, where):
    before = make_target(mariadb, "fault_tgt")
    stream = FailingStream(source, int(len(source) * where),
                           FakeAuthError("chunk 7 failed authentication"))
    with pytest.raises(FakeAuthError, match="chunk 7 failed authentication"):
        restore(stream, mariadb, target_db="fault_tgt", force=True)
    assert state(mariadb, "fault_tgt") == before
    assert leftovers(mariadb) == []


def test_non_drerror_from_stream_is_wrapped(mariadb, source):
    stream = FailingStream(source, len(source) // 2, OSError("network down"))
    with pytest.raises(RestoreError, match="reading the dump stream failed: OSError: network down"):
        restore(stream, mariadb, target_db="fault_never")
    assert not database_exists(mariadb, "fault_never") and leftovers(mariadb) == []


@pytest.mark.parametrize("cut", [5, 11, 40, 0.5, -40, -1])
def test_truncated_dump_is_rejected(mariadb, source, cut):
    end = cut if isinstance(cut, int) and cut > 0 else len(source) + cut if isinstance(cut, int) \
        else int(len(source) * cut)
    with pytest.raises(StreamFormatError, match="truncated|not a dr MySQL dump|end frame"):
        restore(io.BytesIO(source[:end]), mariadb, target_db="fault_never")
    assert not database_exists(mariadb, "fault_never") and leftovers(mariadb) == []


def test_empty_stream(mariadb):
    with pytest.raises(StreamFormatError, match="empty"):
        restore(io.BytesIO(b""), mariadb, target_db="fault_never")


def test_damaged_byte_is_detected(mariadb, source):
    bad = bytearray(source)
    bad[len(bad) // 2] ^= 0x01
    with pytest.raises(StreamFormatError, match="damaged|CRC"):
        restore(io.BytesIO(bytes(bad)), mariadb, target_db="fault_never")
    assert not database_exists(mariadb, "fault_never") and leftovers(mariadb) == []


def test_dropped_frame_is_detected(mariadb, source):
    dropped = []

    def drop_one(kind, payload):
        if kind == ROWS and not dropped:
            dropped.append(1)
            return None
        return payload

    data = reframe(source, drop_one)
    # reframing rewrote a consistent end frame: the manifest's row counts catch it
    with pytest.raises(VerificationFailed, match="rows loaded"):
        restore(io.BytesIO(data), mariadb, target_db="fault_never")
    assert not database_exists(mariadb, "fault_never") and leftovers(mariadb) == []


def test_non_empty_target_without_force(mariadb, source):
    before = make_target(mariadb, "fault_tgt")
    with pytest.raises(TargetNotEmpty) as e:
        restore(io.BytesIO(source), mariadb, target_db="fault_tgt")
    assert e.value.exit_code == EXIT_USAGE
    assert "fault_tgt" in str(e.value) and "--force" in str(e.value)
    assert state(mariadb, "fault_tgt") == before and leftovers(mariadb) == []


def test_target_with_only_a_routine_is_not_empty(mariadb, source):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS fault_r")
        cur.execute("CREATE DATABASE fault_r")
        cur.execute("CREATE FUNCTION fault_r.f() RETURNS INT RETURN 1")
    with pytest.raises(TargetNotEmpty, match="1 routine"):
        restore(io.BytesIO(source), mariadb, target_db="fault_r")


def test_empty_existing_target_is_fine(mariadb, source):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS fault_empty")
        cur.execute("CREATE DATABASE fault_empty")
    result = restore(io.BytesIO(source), mariadb, target_db="fault_empty")
    assert result.databases == {"fault_src": "fault_empty"} and result.rows == 5002


def test_force_replaces_target(mariadb, source):
    make_target(mariadb, "fault_tgt")
    result = restore(io.BytesIO(source), mariadb, target_db="fault_tgt", force=True)
    after = state(mariadb, "fault_tgt")
    assert after["tables"] == (("t", "BASE TABLE"), ("u", "BASE TABLE"), ("vt", "VIEW"))
    assert after["triggers"] == () and after["routines"] == () and after["events"] == ()
    assert len(after["rows:t"]) == 5000 and result.mismatches == []
    assert leftovers(mariadb) == []


def test_sql_error_in_stream_leaves_target_intact(mariadb, source):
    before = make_target(mariadb, "fault_tgt")
    hit = []

    def corrupt(kind, payload):  # every row chunk after the third, whichever tables they hold
        if kind == ROWS:
            hit.append(1)
            if len(hit) > 3:
                return payload[:4] + b"(1,'unterminated"
        return payload

    # INSERT rejects the chunk (SQL syntax); LOAD DATA may load it leniently, and then the
    # row/checksum comparison rejects the result. Either way: an error, and the target as it was.
    with pytest.raises(RestoreError, match="SQL syntax|left as it was|expected|checksum|rows"):
        restore(io.BytesIO(reframe(source, corrupt)), mariadb, target_db="fault_tgt", force=True)
    assert state(mariadb, "fault_tgt") == before and leftovers(mariadb) == []
    with pytest.raises(RestoreError, match="SQL syntax"):
        hit.clear()
        restore(io.BytesIO(reframe(source, corrupt)), mariadb, target_db="fault_tgt", force=True,
                use_load_data=False)
    assert state(mariadb, "fault_tgt") == before and leftovers(mariadb) == []


def _with_manifest(source: bytes, edit) -> bytes:
    def change(kind, payload):
        if kind == MANIFEST:
            doc = json.loads(payload)
            edit(doc)
            return json.dumps(doc).encode()
        return payload
    return reframe(source, change)


def test_checksum_mismatch_fails_before_the_swap(mariadb, source):
    before = make_target(mariadb, "fault_tgt")

    def wrong_checksum(doc):
        doc["databases"]["fault_src"]["tables"]["u"]["checksum"] += 1

    data = _with_manifest(source, wrong_checksum)
    with pytest.raises(VerificationFailed, match="fault_src.u: checksum") as e:
        restore(io.BytesIO(data), mariadb, target_db="fault_tgt", force=True)
    assert e.value.mismatches and state(mariadb, "fault_tgt") == before
    assert leftovers(mariadb) == []
    result = restore(io.BytesIO(data), mariadb, target_db="fault_tgt", force=True,
                     allow_mismatch=True)
    assert [m for m in result.mismatches if "fault_src.u: checksum" in m]
    assert not [t for t in result.tables if t.table == "u"][0].ok


def test_failing_object_rolls_the_swap_back(mariadb, source):
    before = make_target(mariadb, "fault_tgt")

    def bad_view(kind, payload):
        if kind == SCHEMA:
            doc = json.loads(payload)
            doc["views"].append({"kind": "VIEW", "name": "broken", "create":
                                 "CREATE VIEW `broken` AS SELECT * FROM `no_such_table`"})
            return json.dumps(doc).encode()
        return payload

    with pytest.raises(RestoreError, match="cannot create view broken.*put back"):
        restore(io.BytesIO(reframe(source, bad_view)), mariadb, target_db="fault_tgt",
                force=True)
    assert state(mariadb, "fault_tgt") == before and leftovers(mariadb) == []
    with pytest.raises(RestoreError, match="cannot create view broken"):
        restore(io.BytesIO(reframe(source, bad_view)), mariadb, target_db="fault_new")
    assert not database_exists(mariadb, "fault_new") and leftovers(mariadb) == []


def test_object_naming_another_database_is_refused(mariadb, source):
    def sneaky(kind, payload):
        if kind == SCHEMA:
            doc = json.loads(payload)
            doc["views"].append({"kind": "VIEW", "name": "v", "create":
                                 "CREATE VIEW `mysql`.`v` AS SELECT 1"})
            return json.dumps(doc).encode()
        return payload

    with pytest.raises(RestoreError, match="names database 'mysql'"):
        restore(io.BytesIO(reframe(source, sneaky)), mariadb, target_db="fault_new")
    assert not database_exists(mariadb, "fault_new")


def test_multi_database_dump_needs_source_db(mariadb, source):
    make_source(mariadb, "fault_src2", rows=10)
    buf = io.BytesIO()
    dump(mariadb, ["fault_src", "fault_src2"], buf)
    with pytest.raises(RestoreError, match="say which one"):
        restore(io.BytesIO(buf.getvalue()), mariadb, target_db="fault_multi")
    with pytest.raises(RestoreError, match="no database 'nope'"):
        restore(io.BytesIO(buf.getvalue()), mariadb, source_db="nope")
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db="fault_multi",
                     source_db="fault_src2")
    assert result.databases == {"fault_src2": "fault_multi"} and result.rows == 12


def test_restore_into_system_database_refused(mariadb, source):
    with pytest.raises(RestoreError, match="system database"):
        restore(io.BytesIO(source), mariadb, target_db="mysql", force=True)


# -- dump faults ------------------------------------------------------------------------------

class KillingSink(io.RawIOBase):
    """A sink that runs `action` when the first row chunk arrives, then keeps accepting."""

    def __init__(self, action):
        self.action, self.done, self.size = action, False, 0

    def writable(self):
        return True

    def write(self, data):
        self.size += len(data)
        if not self.done and self.size > 64 << 10:
            self.done = True
            self.action()
        return len(data)


def test_server_killed_mid_dump(tmp_path):
    server = start_or_skip(tmp_path / "doomed")
    try:
        make_source(server.spec, "big", rows=60000)
        started = time.monotonic()
        with pytest.raises(DumpError, match="lost the connection to MySQL at 127.0.0.1:"):
            dump(server.spec, ["big"], KillingSink(server.kill), threads=2,
                 chunk_bytes=32 << 10)
        assert time.monotonic() - started < 30
    finally:
        server.stop()


def test_dump_connection_killed(mariadb):
    make_source(mariadb, "fault_kill", rows=60000)
    admin = connect(mariadb)
    with admin.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST")
        before = {r[0] for r in cur.fetchall()}

    def kill_dumpers():  # every connection opened since: the dump's
        with admin.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST")
            for (cid,) in [r for r in cur.fetchall() if r[0] not in before]:
                try:
                    cur.execute(f"KILL CONNECTION {cid}")
                except Exception:  # noqa: BLE001 - it may be gone already
                    pass

    with pytest.raises(DumpError, match="dumping fault_kill.t|lost the connection"):
        dump(mariadb, ["fault_kill"], KillingSink(kill_dumpers), threads=2,
             chunk_bytes=32 << 10)


def test_sink_failure_is_reported(mariadb, source):
    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    with pytest.raises(DumpError, match="No space left"):
        dump(mariadb, ["fault_src"], Full())


def test_missing_database(mariadb):
    with pytest.raises(DumpError, match="database nope_db does not exist"):
        dump(mariadb, ["nope_db"], io.BytesIO())


# -- connection faults ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pw_user(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'dr_pw'@'%' IDENTIFIED BY 'right-pass-Ü'")
        cur.execute("GRANT SELECT ON *.* TO 'dr_pw'@'%'")
    return ConnectionSpec(host=mariadb.host, port=mariadb.port, user="dr_pw",
                          password="right-pass-Ü", tls="off", connect_timeout=5)


def test_right_password_connects(pw_user):
    conn = connect(pw_user)
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == "dr_pw@%"


def test_wrong_password(pw_user):
    spec = ConnectionSpec(host=pw_user.host, port=pw_user.port, user="dr_pw",
                          password="wrong-secret", tls="off")
    with pytest.raises(MysqlAuthError) as e:
        connect(spec)
    msg = str(e.value)
    assert msg.startswith(f"access denied for user dr_pw@127.0.0.1:{spec.port}: check the "
                          "password (mysql[].password)")
    assert "wrong-secret" not in msg and "wrong-secret" not in repr(spec)
    with pytest.raises(MysqlAuthError):
        dump(spec, ["fault_src"], io.BytesIO())
    with pytest.raises(MysqlAuthError):
        restore(io.BytesIO(b""), spec, target_db="x")


def test_unreachable_port():
    spec = ConnectionSpec(host="127.0.0.1", port=free_port(), tls="off", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(MysqlUnreachable) as e:
        connect(spec)
    assert time.monotonic() - started < 2.5
    assert str(e.value).startswith(f"cannot reach MySQL at 127.0.0.1:{spec.port} within 2s")


def test_silent_server_times_out():
    """A port that accepts connections but never greets: the connect timeout still holds."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    spec = ConnectionSpec(host="127.0.0.1", port=port, tls="off", connect_timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(MysqlUnreachable, match="within 2s"):
            connect(spec)
        assert 1.5 < time.monotonic() - started < 4
    finally:
        listener.close()


def test_tls_required_fails_closed(mariadb):
    spec = ConnectionSpec(host=mariadb.host, port=mariadb.port, user="root", tls="required")
    with pytest.raises(MysqlTlsError, match="does not offer TLS.*refusing"):
        connect(spec)
    with pytest.raises(MysqlTlsError):
        dump(spec, ["fault_src"], io.BytesIO())


def test_tls_preferred_falls_back_to_plaintext(mariadb):
    spec = ConnectionSpec(host=mariadb.host, port=mariadb.port, user="root", tls="preferred")
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_errors_are_drerrors(mariadb):
    assert issubclass(MysqlError, DrError)
    spec = ConnectionSpec(host="127.0.0.1", port=free_port(), connect_timeout=1, tls="off")
    with pytest.raises(DrError):
        dump(spec, ["x"], io.BytesIO())
