"""Values whose text is ambiguous or lossy round-trip byte for byte: an ENUM's error value ''
(index 0, versus a member ''), ENUMs whose members are numbers, SETs; cp1250/cp1251 bytes that
have no Unicode mapping, ascii columns holding bytes above 0x7f, other 8-bit sets; also as keys
the dump cuts chunks by (keyset ranges compare them in the column's own collation)."""

from __future__ import annotations

import io

import pytest

from dr.mysql import connect, dump, restore
from tests.support.mariadb import mariadb, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration

DB = "charsets"
ALL_BYTES = bytes(range(256))
EIGHT_BIT = ["cp1250", "cp1251", "cp1256", "cp1257", "ascii", "koi8r", "latin2", "greek",
             "hebrew", "cp866"]


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def populate(cur) -> None:
    cur.execute("SET SESSION sql_mode=''")  # invalid ENUM values become the error value ''
    cur.execute("""CREATE TABLE enums (id INT PRIMARY KEY, e1 ENUM('a','b'), e2 ENUM('','a'),
        e3 ENUM('2','1','0'), e4 ENUM('ж','й') CHARACTER SET cp1251, s SET('x','y','z'),
        s2 SET('1','2','4'), nn ENUM('x','y') NOT NULL)""")
    rows = [(1, "zzz", "zzz", "1", "й", "x,z", "4", "nope"),   # error values (index 0)
            (2, "a", "", 1, "ж", "", "1,2", "y"),              # member '' (index 1); index 1
            (3, None, None, None, None, None, None, "x"),
            (4, "b", "a", "0", 2, 7, 3, 2),                     # numbers as indexes
            (5, "", "", "2", "", "y", "", 0)]
    cur.executemany("INSERT INTO enums VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    columns = ", ".join(f"c_{cs} VARCHAR(300) CHARACTER SET {cs}" for cs in EIGHT_BIT)
    cur.execute(f"""CREATE TABLE bytes8 (id INT PRIMARY KEY, {columns},
        ch CHAR(8) CHARACTER SET cp1251, t TEXT CHARACTER SET cp1250,
        u2 VARCHAR(20) CHARACTER SET ucs2, u16 VARCHAR(20) CHARACTER SET utf16,
        l1 VARCHAR(300) CHARACTER SET latin1)""")
    marks = ",".join(["%s"] * (len(EIGHT_BIT) + 6))
    rows = [(1, *([ALL_BYTES] * len(EIGHT_BIT)), b"\x98 a ", ALL_BYTES * 3, "ж€", "😀x",
             ALL_BYTES),
            (2, *([b""] * len(EIGHT_BIT)), b"", b"", "", "", b""),
            (3, *([None] * len(EIGHT_BIT)), None, None, None, None, None),
            (4, *([b"\x81\x83\x88\x90\x98'\\\x00\x1a"] * len(EIGHT_BIT)), b"  ", b"\x98",
             " ", " ", b"\x81")]
    cur.executemany(f"INSERT INTO bytes8 VALUES ({marks})", rows)
    # keys the dump chunks by: a case-insensitive cp1251 key and a composite with an ENUM
    cur.execute("""CREATE TABLE cpkey (k VARCHAR(20) CHARACTER SET cp1251
        COLLATE cp1251_general_ci PRIMARY KEY, v INT, pad CHAR(60))""")
    keys = [bytes([a, b, c, 0x98]) for a in range(0x20, 0x100, 5) for b in (0x41, 0x61, 0xC0, 0xE0)
            for c in range(0x30, 0x3a)]
    cur.executemany("INSERT IGNORE INTO cpkey VALUES (%s,%s,REPEAT('p', 60))",
                    [(k, i) for i, k in enumerate(keys)])
    cur.execute("""CREATE TABLE enumkey (e ENUM('b','a','c') NOT NULL, n INT NOT NULL,
        x VARCHAR(10) CHARACTER SET cp1250, pad CHAR(60), PRIMARY KEY (e, n))""")
    cur.executemany("INSERT INTO enumkey VALUES (%s,%s,%s,REPEAT('p', 60))",
                    [(["b", "a", "c", "bad"][i % 4], i, bytes([0x80 + i % 128]))
                     for i in range(3000)])
    cur.execute("ANALYZE TABLE cpkey, enumkey")  # row sizes for the chunker's first guess
    cur.fetchall()


@pytest.fixture(scope="module")
def dumped(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
        cur.execute(f"USE {DB}")
        populate(cur)
    conn.close()
    buf = io.BytesIO()
    manifest = dump(mariadb, [DB], buf, threads=2, chunk_bytes=4 << 10)
    assert manifest.databases[DB].tables["cpkey"].chunks > 3
    assert manifest.databases[DB].tables["enumkey"].chunks > 3
    return buf.getvalue()


def snapshot(cur, db: str, table: str) -> list:
    """Every column as raw bytes (HEX), ENUM/SET also as their index, row by row."""
    cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
                "TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (db, table))
    cols = []
    for col, dtype in cur.fetchall():
        cols.append(f"HEX({q(col)}), {q(col)} IS NULL")
        if dtype in ("enum", "set"):
            cols.append(f"{q(col)}+0")
    cur.execute(f"SELECT {', '.join(cols)} FROM {q(db)}.{q(table)} ORDER BY 1, 2, 3")
    return list(cur.fetchall())


@pytest.mark.parametrize("load_data", [True, False], ids=["load-data", "insert"])
def test_bytes_and_enum_indexes_round_trip_exactly(mariadb, dumped, load_data):
    target = f"charsets_{'load' if load_data else 'insert'}"
    result = restore(io.BytesIO(dumped), mariadb, target_db=target, force=True,
                     use_load_data=load_data)
    assert result.mismatches == [] and all(t.ok for t in result.tables)
    conn = connect(mariadb)
    with conn.cursor() as cur:
        for table in ("enums", "bytes8", "cpkey", "enumkey"):
            cur.execute(f"CHECKSUM TABLE {DB}.{table}, {target}.{table}")
            (_, a), (_, b) = cur.fetchall()
            assert a == b, table
            assert snapshot(cur, target, table) == snapshot(cur, DB, table), table
        cur.execute(f"SELECT e1+0, e2+0, e2 FROM {target}.enums WHERE id IN (1, 2) ORDER BY id")
        assert cur.fetchall() == ((0, 0, ""), (1, 1, ""))  # the error value is not the member ''
        cur.execute(f"SELECT HEX(c_cp1251), HEX(c_cp1250), HEX(c_ascii) FROM {target}.bytes8 "
                    "WHERE id = 1")
        assert cur.fetchone() == (ALL_BYTES.hex().upper(),) * 3
        cur.execute(f"SELECT COUNT(*) FROM {target}.enumkey WHERE e = ''")
        assert cur.fetchone()[0] == 750
    conn.close()
