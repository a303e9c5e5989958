"""SEQUENCEs round-trip with every option and their state, and the restore checks them.

Ascending with INCREMENT BY 7 and CACHE, descending CYCLE that has already cycled, NOCACHE,
an exhausted NOCYCLE sequence, one restarted below its START, INCREMENT BY 0, extreme bounds."""

from __future__ import annotations

import io
import json

import pytest

from dr.mysql import VerificationFailed, connect, dump, restore, verify
from dr.mysql.frames import END, MANIFEST, SCHEMA, FrameReader, FrameWriter
from tests.support.mariadb import mariadb, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration

DB = "seqs"
SEQUENCES = {
    "up7": "START WITH 10 MINVALUE 3 MAXVALUE 1000 INCREMENT BY 7 CACHE 5 CYCLE COMMENT 'it''s'",
    "down_cycle": "START WITH 100 MINVALUE 1 MAXVALUE 100 INCREMENT BY -3 NOCACHE CYCLE",
    "down_cached": "START WITH -5 MINVALUE -1000 MAXVALUE 0 INCREMENT BY -11 CACHE 3 NOCYCLE",
    "plain": "",
    "exhausted": "START WITH 1 MINVALUE 1 MAXVALUE 3 NOCACHE NOCYCLE",
    "restarted": "START WITH 50 MINVALUE 1 MAXVALUE 100 INCREMENT BY 2 NOCACHE CYCLE",
    "auto_inc": "INCREMENT BY 0 NOCACHE",
    "extreme": "START WITH -9223372036854775807 MINVALUE -9223372036854775807 "
               "MAXVALUE 9223372036854775806 INCREMENT BY 1000000000000000000 CACHE 2 CYCLE",
}
USED = {"up7": 3, "down_cycle": 40, "down_cached": 4, "plain": 2, "exhausted": 3,
        "restarted": 0, "auto_inc": 5, "extreme": 5}


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@pytest.fixture(scope="module")
def stream(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
        for name, options in SEQUENCES.items():
            cur.execute(f"CREATE SEQUENCE {DB}.{name} {options}")
            for _ in range(USED[name]):
                cur.execute(f"SELECT NEXTVAL({DB}.{name})")
        cur.execute(f"ALTER SEQUENCE {DB}.restarted RESTART WITH 7")  # below its START
    conn.close()
    buf = io.BytesIO()
    dump(mariadb, [DB], buf)
    return buf.getvalue()


def state(cur, db: str, name: str) -> tuple:
    cur.execute(f"SHOW CREATE SEQUENCE {q(db)}.{q(name)}")
    create = cur.fetchone()[1]
    cur.execute(f"SELECT * FROM {q(db)}.{q(name)}")
    return create, cur.fetchone()


def nextvals(cur, db: str, name: str, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            cur.execute(f"SELECT NEXTVAL({q(db)}.{q(name)})")
            out.append(cur.fetchone()[0])
        except Exception as e:  # noqa: BLE001 - an exhausted sequence: the error is the behaviour
            out.append(f"error {e.args[0]}")
    return out


def test_every_option_and_the_state_round_trip(mariadb, stream):
    result = restore(io.BytesIO(stream), mariadb, target_db="seqs_copy", force=True)
    assert result.mismatches == [] and result.warnings == []
    conn = connect(mariadb)
    with conn.cursor() as cur:
        for name in SEQUENCES:
            assert state(cur, "seqs_copy", name) == state(cur, DB, name), name
        # the source's own cache is dropped, so both hand out from next_not_cached_value
        cur.execute("FLUSH TABLES " + ", ".join(f"{DB}.{name}" for name in SEQUENCES))
        for name in SEQUENCES:
            assert nextvals(cur, "seqs_copy", name, 45) == nextvals(cur, DB, name, 45), name
        cur.execute("SELECT NEXTVAL(seqs_copy.down_cycle)")  # went on cycling, downwards
        cur.execute("SELECT cycle_count, increment FROM seqs_copy.down_cycle")
        assert cur.fetchone() == (2, -3)
        cur.execute("SHOW CREATE SEQUENCE seqs_copy.up7")
        assert "increment by 7 cache 5 cycle" in cur.fetchone()[1]
    conn.close()


def test_a_table_whose_default_calls_nextval_uses_the_restored_sequence(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS seqdef")
        cur.execute("CREATE DATABASE seqdef")
        cur.execute("CREATE SEQUENCE seqdef.zs START WITH 500 INCREMENT BY 10")  # after `t`
        cur.execute("CREATE TABLE seqdef.t (id INT PRIMARY KEY DEFAULT NEXTVAL(seqdef.zs), "
                    "x INT)")
        cur.execute("INSERT INTO seqdef.t (x) VALUES (1), (2)")
    buf = io.BytesIO()
    dump(mariadb, ["seqdef"], buf)
    restore(io.BytesIO(buf.getvalue()), mariadb, target_db="seqdef_copy", force=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO seqdef_copy.t (x) VALUES (3)")
        cur.execute("SELECT id FROM seqdef_copy.t WHERE x = 3")
        inserted = cur.fetchone()[0]
        cur.execute("SELECT PREVIOUS VALUE FOR seqdef_copy.zs")
        assert cur.fetchone()[0] == inserted
        cur.execute("SHOW CREATE TABLE seqdef_copy.t")
        assert "nextval(`seqdef_copy`.`zs`)" in cur.fetchone()[1]
    conn.close()


def test_verify_compares_sequences(mariadb, stream):
    result = restore(io.BytesIO(stream), mariadb, target_db="seqs_verify", force=True)
    tables = result.manifest.databases[DB].tables
    assert tables["up7"].sequence["increment"] == 7
    assert verify(mariadb, "seqs_verify", tables) == []
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("ALTER SEQUENCE seqs_verify.up7 INCREMENT BY 1")
    conn.close()
    assert verify(mariadb, "seqs_verify", tables) == [
        "seqs_verify.up7: sequence increment is 1, the backup has 7"]


def rewrite(data: bytes, change) -> bytes:
    """The stream with each frame's payload passed through change(kind, payload), re-framed."""
    out = io.BytesIO()
    writer = FrameWriter(out)
    for kind, payload in FrameReader(io.BytesIO(data)):
        if kind != END:
            writer.frame(kind, change(kind, payload))
    writer.end()
    return out.getvalue()


def test_a_sequence_that_comes_back_different_fails_the_restore(mariadb, stream):
    def change(kind, payload):
        if kind != SCHEMA:
            return payload
        doc = json.loads(payload)
        for t in doc["tables"]:
            if t["name"] == "down_cycle":
                t["sequence"]["cycle_count"] = 0  # what would be written back differs
        return json.dumps(doc).encode()

    with pytest.raises(VerificationFailed) as e:
        restore(io.BytesIO(rewrite(stream, change)), mariadb, target_db="seqs_bad", force=True)
    assert "seqs.down_cycle: sequence cycle_count is 0, the backup has 1" in str(e.value)
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'seqs_bad%'")
        assert cur.fetchall() == ()
    conn.close()


def test_a_backup_of_an_older_dr_still_restores_and_says_what_is_missing(mariadb, stream):
    def change(kind, payload):
        if kind not in (SCHEMA, MANIFEST):
            return payload
        doc = json.loads(payload)
        if kind == SCHEMA:
            for t in doc["tables"]:
                if t["sequence"] is not None:  # as dr wrote it before: the next value only
                    t["sequence"] = t["sequence"]["next_not_cached_value"]
        elif kind == MANIFEST:
            for t in doc["databases"][DB]["tables"].values():
                t.pop("sequence", None)
        return json.dumps(doc).encode()

    result = restore(io.BytesIO(rewrite(stream, change)), mariadb, target_db="seqs_old",
                     force=True)
    assert any("sequence seqs.up7: this backup kept only its next value" in w
               for w in result.warnings)
