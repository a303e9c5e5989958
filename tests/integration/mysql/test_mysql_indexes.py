"""Deferred secondary indexes: a big table is loaded without them and gets them back, all."""

from __future__ import annotations

import io
import random

import pytest

from dr.mysql import connect, dump, restore, verify
from dr.mysql.indexes import MIN_ROWS, plan
from dr.mysql.sqltext import quote_ident
from tests.support.mariadb import mariadb, mariadb_server  # noqa: F401

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


def test_columns_named_key_index_unique_round_trip(mariadb):
    """Key/value tables with columns named `KEY`, `INDEX`, `UNIQUE` (and keyword-named indexes)
    above the deferral threshold: the backup restores, rows and checksums equal, every index
    back, and only the secondary indexes were deferred."""
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS idx_kw")
        cur.execute("CREATE DATABASE idx_kw")
        cur.execute("""CREATE TABLE idx_kw.kv (
            `KEY` VARCHAR(40) NOT NULL, `INDEX` INT NOT NULL, `UNIQUE` VARCHAR(20) NOT NULL,
            `value` TEXT, `a``b` INT, `PRIMARY` INT,
            PRIMARY KEY (`KEY`), UNIQUE KEY `UNIQUE` (`UNIQUE`), KEY `INDEX` (`INDEX`, `KEY`),
            KEY `KEY` (`a``b`), KEY `PRIMARY_` (`PRIMARY`)) ENGINE=InnoDB""")
        cur.execute("""CREATE TABLE idx_kw.kv2 (
            `INDEX` INT NOT NULL AUTO_INCREMENT, `key` VARCHAR(40) NOT NULL, `Unique` INT,
            `FULLTEXT` VARCHAR(60), `CONSTRAINT` INT, `FOREIGN` INT,
            PRIMARY KEY (`key`), KEY `ai` (`INDEX`), UNIQUE KEY `u` (`Unique`),
            KEY `k` (`CONSTRAINT`, `FOREIGN`), FULLTEXT KEY `ft` (`FULLTEXT`)) ENGINE=InnoDB""")
        n = MIN_ROWS + 5000
        cur.execute(f"INSERT INTO idx_kw.kv SELECT CONCAT('k', seq), seq MOD 97, "
                    f"CONCAT('u', seq), REPEAT('v', seq MOD 50), seq MOD 13, seq MOD 7 "
                    f"FROM idx_kw.seq_1_to_{n}")
        cur.execute(f"INSERT INTO idx_kw.kv2 (`key`, `Unique`, `FULLTEXT`, `CONSTRAINT`, "
                    f"`FOREIGN`) SELECT CONCAT('key ', seq), seq, CONCAT('word', seq MOD 11), "
                    f"seq MOD 5, seq MOD 3 FROM idx_kw.seq_1_to_{n}")
        cur.execute("ANALYZE TABLE idx_kw.kv, idx_kw.kv2")
        cur.fetchall()
        creates = {}
        for t in ("kv", "kv2"):
            cur.execute(f"SHOW CREATE TABLE idx_kw.{t}")
            creates[t] = cur.fetchone()[1]
    deferred = {t: plan(c, "InnoDB", MIN_ROWS, referenced=False)[1] for t, c in creates.items()}
    assert deferred == {
        "kv": ["UNIQUE KEY `UNIQUE` (`UNIQUE`)", "KEY `INDEX` (`INDEX`,`KEY`)",
               "KEY `KEY` (`a``b`)", "KEY `PRIMARY_` (`PRIMARY`)"],
        "kv2": ["UNIQUE KEY `u` (`Unique`)", "KEY `k` (`CONSTRAINT`,`FOREIGN`)"]}
    buf = io.BytesIO()
    manifest = dump(mariadb, ["idx_kw"], buf, chunk_bytes=256 << 10)
    assert all(manifest.databases["idx_kw"].tables[t].rows == n for t in ("kv", "kv2"))
    result = restore(io.BytesIO(buf.getvalue()), mariadb, target_db="idx_kw_copy", threads=2)
    assert result.mismatches == [] and result.rows == 2 * n
    assert all(r.checksum_actual == r.checksum_expected is not None for r in result.tables)
    assert verify(mariadb, "idx_kw_copy", manifest.databases["idx_kw"].tables) == []
    with conn.cursor() as cur:
        for t in ("kv", "kv2"):
            assert index_set(cur, "idx_kw_copy", t) == index_set(cur, "idx_kw", t)
            cur.execute(f"CHECKSUM TABLE idx_kw.{t}, idx_kw_copy.{t}")
            a, b = (row[1] for row in cur.fetchall())
            assert a == b
        cur.execute("SELECT `INDEX`, `UNIQUE`, `a``b` FROM idx_kw_copy.kv WHERE `KEY` = 'k77'")
        assert cur.fetchone() == (77 % 97, "u77", 77 % 13)
        cur.execute("INSERT INTO idx_kw_copy.kv2 (`key`) VALUES ('fresh')")
        assert cur.lastrowid > n  # AUTO_INCREMENT carried over


KEYWORDS = ["KEY", "INDEX", "UNIQUE", "PRIMARY", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN",
            "CHECK", "REFERENCES", "AUTO_INCREMENT", "USING", "key", "Index", "uNiQuE", "a`b",
            "a,b", "x(y", "p)q", "it's", "c -- d", "/*x*/", "ünï", "KEY INDEX", "id"]


def test_random_keyword_tables_rebuild_exactly_on_the_server(mariadb):
    """Seeded random tables with keyword-named, quoted, mixed-case columns and indexes: the
    server's own SHOW CREATE TABLE, planned, created and given its deferred indexes back by
    ALTER TABLE, has exactly the original columns and indexes; what was deferred is exactly
    the secondary (non-PRIMARY, non-FULLTEXT) indexes not needed by AUTO_INCREMENT."""
    rng = random.Random(1234)
    conn = connect(mariadb)
    q = quote_ident
    with conn.cursor() as cur:
        for db in ("idx_rand", "idx_rand_copy"):
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
            cur.execute(f"CREATE DATABASE {db}")
        for i in range(25):
            cols = []
            for c in rng.sample(KEYWORDS, len(KEYWORDS)):
                if len(cols) < rng.randint(2, 6) and c.casefold() not in \
                        {x.casefold() for x in cols}:
                    cols.append(c)
            auto = cols[0] if rng.random() < 0.5 else None
            defs = [f"{q(c)} INT NOT NULL AUTO_INCREMENT" if c == auto else
                    f"{q(c)} VARCHAR(30) DEFAULT 'KEY (x), UNIQUE'" for c in cols]
            keys = [f"PRIMARY KEY ({q(auto)})"] if auto else []
            for j in range(rng.randint(1, 4)):
                parts = rng.sample(cols, rng.randint(1, min(3, len(cols))))
                kind = rng.choice(["KEY", "UNIQUE KEY", "INDEX", "FULLTEXT KEY"])
                if kind == "FULLTEXT KEY":
                    parts = [p for p in parts if p != auto] or None
                    if parts is None:
                        continue
                keys.append(f"{kind} {q(rng.choice(KEYWORDS) + str(j))} "
                            f"({','.join(q(p) for p in parts)})")
            table = f"t{i}"
            cur.execute(f"CREATE TABLE idx_rand.{table} ({', '.join(defs + keys)}) "
                        "ENGINE=InnoDB")
            cur.execute(f"SHOW CREATE TABLE idx_rand.{table}")
            create = cur.fetchone()[1]
            planned, deferred = plan(create, "InnoDB", MIN_ROWS, referenced=False)
            cur.execute("USE idx_rand_copy")
            cur.execute(planned)
            before = {r[0] for r in index_set(cur, "idx_rand_copy", table)}
            if deferred:
                cur.execute(f"ALTER TABLE idx_rand_copy.{table} " +
                            ", ".join("ADD " + d for d in deferred))
            assert index_set(cur, "idx_rand_copy", table) == \
                index_set(cur, "idx_rand", table), create
            cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE, EXTRA, COLUMN_DEFAULT FROM "
                        "information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                        "ORDER BY ORDINAL_POSITION", ("idx_rand", table))
            original_columns = cur.fetchall()
            cur.execute("SELECT COLUMN_NAME, COLUMN_TYPE, EXTRA, COLUMN_DEFAULT FROM "
                        "information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                        "ORDER BY ORDINAL_POSITION", ("idx_rand_copy", table))
            assert cur.fetchall() == original_columns, create
            cur.execute("SELECT INDEX_NAME, INDEX_TYPE, MIN(SEQ_IN_INDEX = 1 AND COLUMN_NAME=%s)"
                        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='idx_rand' AND "
                        "TABLE_NAME=%s GROUP BY INDEX_NAME, INDEX_TYPE", (auto or "", table))
            expected = set()
            for name, index_type, _ in cur.fetchall():
                cur.execute("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE "
                            "TABLE_SCHEMA='idx_rand' AND TABLE_NAME=%s AND INDEX_NAME=%s AND "
                            "SEQ_IN_INDEX=1", (table, name))
                first = cur.fetchone()[0]
                if name != "PRIMARY" and index_type != "FULLTEXT" and first != auto:
                    expected.add(name)
            assert {r[0] for r in index_set(cur, "idx_rand", table)} - before == expected, \
                create
