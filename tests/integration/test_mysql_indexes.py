"""Deferred secondary indexes: a big table is loaded without them and gets them back, all."""

from __future__ import annotations

import io

import pytest

from dr.mysql import connect, dump, restore, verify
from dr.mysql.indexes import MIN_ROWS
from tests.mariadb import mariadb, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration


def index_set(cur, db, table):
    cur.execute("SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE "
                "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                "ORDER BY 1, 3", (db, table))
    return cur.fetchall()


def test_indexes_come_back(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS idx_src")
        cur.execute("CREATE DATABASE idx_src")
        cur.execute("""CREATE TABLE idx_src.big (
            id INT AUTO_INCREMENT, code VARCHAR(20) NOT NULL, grp INT, txt TEXT, note VARCHAR(50),
            PRIMARY KEY (id), UNIQUE KEY uq_code (code), KEY k_grp (grp, id),
            KEY k_prefix (txt(10)), FULLTEXT KEY ft (note)) ENGINE=InnoDB""")
        rows = [(f"c{i}", i % 97, f"text {i}", f"note {i % 13}") for i in range(MIN_ROWS + 5000)]
        cur.executemany("INSERT INTO idx_src.big (code, grp, txt, note) VALUES (%s,%s,%s,%s)",
                        rows)
        cur.execute("ANALYZE TABLE idx_src.big")
        cur.fetchall()
    buf = io.BytesIO()
    manifest = dump(mariadb, ["idx_src"], buf, chunk_bytes=256 << 10)
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db="idx_copy", threads=2)
    assert result.mismatches == []
    assert verify(mariadb, "idx_copy", manifest.databases["idx_src"].tables) == []
    with conn.cursor() as cur:
        assert index_set(cur, "idx_copy", "big") == index_set(cur, "idx_src", "big")
        with pytest.raises(Exception, match="Duplicate"):
            cur.execute("INSERT INTO idx_copy.big (code) VALUES ('c1')")
        cur.execute("INSERT INTO idx_copy.big (code) VALUES ('fresh')")
        assert cur.lastrowid > MIN_ROWS + 5000  # AUTO_INCREMENT carried over
