"""Restores across server versions (the normal DR case: production 10.6 → DR 10.11, MySQL →
MariaDB) compare content, not CHECKSUM TABLE, and never claim checksums they did not compare.

A version difference is simulated two ways: a dump whose header and manifest record another
server version (CHECKSUM TABLE then is "not comparable"), and a second MariaDB started with
--mysql56-temporal-format=OFF, which stores DATETIME/TIME/TIMESTAMP in the pre-10.1 format, so
CHECKSUM TABLE really differs for the same rows (as it does across versions). The content hash
(dr/mysql/content.py) must agree on equal data and disagree when the target stored something
else than the backup's rows say, and a mismatch must leave the target exactly as it was (exit 3
= target unchanged).

Before the fix, a cross-version mismatch was only a warning: the target was replaced anyway and
the CLI said "checksums match" with exit 3.
"""

from __future__ import annotations

import importlib
import io
import json

import pytest

from dr.cli import main
from dr.mysql import VerificationFailed, connect, dump, restore
from dr.mysql import content
from dr.mysql.frames import HEAD, MANIFEST, ROWS, SCHEMA, TABLE_ID, FrameReader
from tests.integration.mysql.test_mysql_faults import leftovers, make_target, reframe, state
from tests.integration.mysql.test_mysql_hostile import DB as HOSTILE
from tests.integration.mysql.test_mysql_hostile import SCHEMA as HOSTILE_SCHEMA
from tests.integration.mysql.test_mysql_hostile import populate
from tests.support.mariadb import mariadb, mariadb_server, start_or_skip  # noqa: F401

pytestmark = pytest.mark.integration
restore_mod = importlib.import_module("dr.mysql.restore")  # (dr.mysql.restore is the function)

OTHER = "10.6.18-MariaDB-log"  # what the "production" server of the simulated dumps was
SRC = "ver_src"


def make_source(spec) -> None:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {SRC}")
        cur.execute(f"CREATE DATABASE {SRC} CHARACTER SET utf8mb4")
        cur.execute(f"""CREATE TABLE {SRC}.t (id INT PRIMARY KEY, v VARCHAR(100),
            d DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(2), b BLOB,
            dc DECIMAL(20,6), f FLOAT, dbl DOUBLE, bit8 BIT(8),
            l VARCHAR(20) CHARACTER SET latin1)""")
        cur.executemany(
            f"INSERT INTO {SRC}.t VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(i, f"value {i} 'q' \\ ü", f"2020-01-{i % 28 + 1:02d} 03:04:05.{i:06d}",
              f"2021-06-{i % 28 + 1:02d} 10:00:00.123", f"{i % 24}:30:15.25",
              bytes([i % 256, 0, 39, 92, 26]) * 3, f"{i}.{i:06d}", i / 7, i / 3, i % 256,
              "é" * (i % 5)) for i in range(3000)])
        cur.execute(f"INSERT INTO {SRC}.t (id) VALUES (100000)")  # NULLs
        cur.execute(f"CREATE TABLE {SRC}.nokey (a INT, b VARCHAR(20), c DATETIME)")
        cur.executemany(f"INSERT INTO {SRC}.nokey VALUES (%s,%s,%s)",
                        [(i % 7, f"r{i % 3}", "1999-12-31 23:59:59") for i in range(500)])
        cur.execute(f"CREATE TABLE {SRC}.hist (id INT PRIMARY KEY, x INT) WITH SYSTEM VERSIONING")
        cur.execute(f"INSERT INTO {SRC}.hist VALUES (1, 1), (2, 2)")
        cur.execute(f"UPDATE {SRC}.hist SET x = 3 WHERE id = 2")
        cur.execute(f"CREATE SEQUENCE {SRC}.seq START WITH 10")
        cur.execute(f"CREATE VIEW {SRC}.tv AS SELECT id, d FROM {SRC}.t")
    conn.close()


def as_version(data: bytes, version: str, *, edit_schema=None) -> bytes:
    """The dump re-framed as if made on a server of `version` (header and manifest say so);
    `edit_schema(doc)` may change the SCHEMA frame."""
    def change(kind, payload):
        if kind in (HEAD, MANIFEST):
            doc = json.loads(payload)
            doc["server_version"] = version
            return json.dumps(doc).encode()
        if kind == SCHEMA and edit_schema is not None:
            doc = json.loads(payload)
            edit_schema(doc)
            return json.dumps(doc).encode()
        return payload
    return reframe(data, change)


def checksums(spec, db: str) -> dict:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                    "AND TABLE_TYPE='BASE TABLE' ORDER BY 1", (db,))
        names = [r[0] for r in cur.fetchall()]
        out = {}
        for n in names:
            cur.execute(f"CHECKSUM TABLE `{db}`.`{n}`")
            out[n] = cur.fetchone()[1]
    conn.close()
    return out


@pytest.fixture(scope="module")
def hostile(mariadb):
    """test_mysql_hostile's data set (made again: same seed, same rows), dumped, and restored
    once into hostile_vcopy."""
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {HOSTILE}")
        cur.execute(HOSTILE_SCHEMA[0])
        cur.execute(f"USE {HOSTILE}")
        populate(cur)
    conn.close()
    buf = io.BytesIO()
    dump(mariadb, [HOSTILE], buf, threads=2, chunk_bytes=64 << 10)
    restore(io.BytesIO(buf.getvalue()), mariadb, target_db="hostile_vcopy", force=True)
    return buf.getvalue()


@pytest.fixture(scope="module")
def source(mariadb):
    make_source(mariadb)
    buf = io.BytesIO()
    dump(mariadb, [SRC], buf, threads=2, chunk_bytes=16 << 10)
    return buf.getvalue()


# -- the content hash itself ------------------------------------------------------------------

def test_stream_side_and_server_side_hashes_agree_on_hostile_data(mariadb, hostile):
    """Every type the dump handles (all byte values, NUL, Ctrl-Z, quotes, 4-byte UTF-8, latin1,
    gbk, DECIMAL(65,30), FLOAT, BIT(64), zero dates, JSON, GEOMETRY, generated columns, no key,
    rows bigger than a chunk): Σ CRC32 over the stream's rows == the server's SUM(CRC32(row))."""
    ids, sums, names = {}, {}, []
    for kind, payload in FrameReader(io.BytesIO(hostile)):
        if kind == b"S":
            tables = json.loads(payload)["tables"]
            ids = {t["id"]: t["name"] for t in tables}
            names = [t["name"] for t in tables if t["kind"] != "SEQUENCE"]
        elif kind == ROWS:
            (tid,) = TABLE_ID.unpack_from(payload)
            sums[ids[tid]] = sums.get(ids[tid], 0) + content.chunk_sum(
                memoryview(payload)[TABLE_ID.size:])
    conn = connect(mariadb)
    assert len(names) >= 19 and len(sums) >= 17
    for name in names:  # and on the restored copy: the values read back as they were dumped
        assert content.table_hash(conn, HOSTILE, name) == sums.get(name, 0), name
        assert content.table_hash(conn, "hostile_vcopy", name) == sums.get(name, 0), name
    conn.close()


def test_cross_version_restore_of_hostile_data_passes_by_content(mariadb, hostile):
    result = restore(io.BytesIO(as_version(hostile, OTHER)), mariadb, target_db="hostile_xver",
                     threads=2, force=True)
    by = {t.table: t.method for t in result.tables}
    assert by["seq_s"] is None and set(by.values()) == {"content", None}
    assert all(t.ok for t in result.tables) and result.mismatches == []
    summary = result.check_summary()
    assert "content hashes match" in summary and "checksums match" not in summary
    assert OTHER in summary


# -- a simulated version difference: the manifest records another server -----------------------

@pytest.mark.parametrize("load_data", [True, False])
def test_cross_version_content_difference_refuses_and_leaves_the_target(mariadb, source,
                                                                        load_data):
    """The DR server stores some values differently from the source (here: it cuts a VARCHAR
    to 12 characters, with a warning): row counts are equal, the content is not. Before, the
    CHECKSUM TABLE difference was "not comparable across versions", a warning, and the target
    was replaced with the damaged data; now the content hash refuses before the swap."""
    before = make_target(mariadb, "ver_tgt")

    def narrower(doc):
        t = next(t for t in doc["tables"] if t["name"] == "t")
        assert "`v` varchar(100)" in t["create"]
        t["create"] = t["create"].replace("`v` varchar(100)", "`v` varchar(12)")

    data = as_version(source, OTHER, edit_schema=narrower)
    with pytest.raises(VerificationFailed, match=r"ver_src\.t: content hash .* the backup's rows "
                                                 r"have .*left as it was") as e:
        restore(io.BytesIO(data), mariadb, target_db="ver_tgt", force=True,
                use_load_data=load_data)
    assert e.value.exit_code == 3 and len(e.value.mismatches) == 1
    assert state(mariadb, "ver_tgt") == before and leftovers(mariadb) == []


def test_cross_version_restore_compares_every_table_by_content(mariadb, source):
    result = restore(io.BytesIO(as_version(source, OTHER)), mariadb, target_db="ver_ok")
    by = {t.table: t.method for t in result.tables}
    assert by == {"t": "content", "nokey": "content", "hist": "content", "seq": None}
    assert result.source_version == OTHER and result.mismatches == []
    assert "checksums match" not in result.check_summary()
    assert checksums(mariadb, "ver_ok") == checksums(mariadb, SRC)  # (same server here)


def test_same_version_uses_checksum_and_content_only_where_there_is_none(mariadb, source):
    result = restore(io.BytesIO(source), mariadb, target_db="ver_same")
    by = {t.table: t.method for t in result.tables}
    # a system-versioned table has no CHECKSUM TABLE in the backup: its content is compared
    assert by == {"t": "checksum", "nokey": "checksum", "hist": "content", "seq": None}
    summary = result.check_summary()
    assert "checksums match for 2 (CHECKSUM TABLE)" in summary
    assert "content hashes match for 1" in summary


# -- a second server that stores temporal values another way ---------------------------------

@pytest.fixture(scope="module")
def old_format(tmp_path_factory):
    server = start_or_skip(tmp_path_factory.mktemp("mariadb-oldtemporal"),
                           extra_args=("--mysql56-temporal-format=OFF",))
    yield server.spec
    server.stop()


def test_other_storage_format_really_changes_checksum_but_not_content(mariadb, source,
                                                                      old_format):
    result = restore(io.BytesIO(as_version(source, OTHER)), old_format, target_db="ver_copy")
    assert all(t.method in ("content", None) for t in result.tables)
    # CHECKSUM TABLE of the very same rows differs between the two servers ...
    ours, theirs = checksums(mariadb, SRC), checksums(old_format, "ver_copy")
    assert ours["t"] != theirs["t"] and ours["nokey"] != theirs["nokey"]
    # ... their content hash does not
    a, b = connect(mariadb), connect(old_format)
    for name in ("t", "nokey", "hist"):
        assert content.table_hash(a, SRC, name) == content.table_hash(b, "ver_copy", name)
    a.close()
    b.close()


# -- the CLI: what it prints and what exit 3 means --------------------------------------------

@pytest.fixture
def cli(mariadb, source, tmp_path, monkeypatch):
    key = tmp_path / "k.key"
    assert main(["keygen", str(key)]) == 0
    path = tmp_path / "dr.yaml"
    path.write_text(
        "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
        f"state: {{path: '{tmp_path / 'state'}'}}\n"
        f"mysql:\n  - {{name: lamp, host: 127.0.0.1, port: {mariadb.port}, user: root, "
        f"tls: 'off', databases: [{SRC}], destination: 'file://{tmp_path}/backups', "
        f"schedule: every 1h, retention: {{last: 1}}, key_file: '{key}'}}\n")
    assert main(["--config", str(path), "backup", "run", "--only", "mysql"]) == 0
    # the DR server runs another version than the one the backup was made on
    monkeypatch.setattr(restore_mod._Restore, "_server_version", lambda self: OTHER)
    return str(path)


def test_cli_across_versions_says_what_it_compared(mariadb, cli, capsys):
    uri = f"mysql://root@127.0.0.1:{mariadb.port}/ver_cli?tls=off"
    capsys.readouterr()
    assert main(["--config", cli, "restore", "mysql", "--name", "lamp", "--to", uri,
                 "--force"]) == 0
    out = capsys.readouterr().out
    assert "content hashes match (3 tables; CHECKSUM TABLE is not comparable" in out
    assert "checksums match" not in out


def test_cli_mismatch_across_versions_exits_3_with_the_target_unchanged(mariadb, cli, capsys,
                                                                        monkeypatch):
    """The old behaviour: "checksums match", exit 3, and the target replaced by wrong data."""
    from dr.mysql import load

    before = make_target(mariadb, "ver_cli_tgt")
    finish = load.Loaders._finish

    def damaged_load(self, conn, table_id, checksum):  # a value the DR server changed on load
        db, t = self.tables[table_id]
        if t["name"] == "t":
            with conn.cursor() as cur:
                cur.execute(f"UPDATE `{db}`.t SET v = CONCAT(v, '!') WHERE id = 5")
        return finish(self, conn, table_id, checksum)

    monkeypatch.setattr(load.Loaders, "_finish", damaged_load)
    uri = f"mysql://root@127.0.0.1:{mariadb.port}/ver_cli_tgt?tls=off"
    capsys.readouterr()
    code = main(["--config", cli, "restore", "mysql", "--name", "lamp", "--to", uri, "--force"])
    out, err = capsys.readouterr()
    assert "checksums match" not in out + err
    assert code == 3 and "content hash" in err and "left as it was" in err
    assert state(mariadb, "ver_cli_tgt") == before and leftovers(mariadb) == []
