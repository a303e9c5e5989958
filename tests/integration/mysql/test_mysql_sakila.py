"""Sakila (16 tables, 7 views, 6 triggers, 6 routines, GEOMETRY + SPATIAL, FULLTEXT, FKs) dumped
and restored under another name on a real MariaDB, then checked with the server's own tools."""

from __future__ import annotations

import io

import pytest

from dr.mysql import connect, dump, restore, verify
from tests.support.mariadb import mariadb, mariadb_server, sakila  # noqa: F401

pytestmark = pytest.mark.integration


def checksums(cur, db: str) -> dict[str, int]:
    cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA=%s "
                "AND TABLE_TYPE='BASE TABLE' ORDER BY TABLE_NAME", (db,))
    names = [r[0] for r in cur.fetchall()]
    cur.execute("CHECKSUM TABLE " + ", ".join(f"`{db}`.`{n}`" for n in names))
    return {r[0].split(".", 1)[1]: r[1] for r in cur.fetchall()}


def counts(cur, db: str) -> dict[str, int]:
    out = {}
    for name in checksums(cur, db):
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.`{name}`")
        out[name] = cur.fetchone()[0]
    return out


def objects(cur, db: str) -> dict[str, list[str]]:
    q = {
        "views": "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA=%s",
        "triggers": "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s",
        "routines": "SELECT CONCAT(ROUTINE_TYPE,' ',ROUTINE_NAME) FROM information_schema.ROUTINES"
                    " WHERE ROUTINE_SCHEMA=%s",
    }
    out = {}
    for key, sql in q.items():
        cur.execute(sql, (db,))
        out[key] = sorted(r[0] for r in cur.fetchall())
    return out


@pytest.fixture(scope="module")
def sakila_dump(mariadb, sakila):
    buf = io.BytesIO()
    manifest = dump(mariadb, [sakila], buf, threads=2)
    return manifest, buf.getvalue()


@pytest.fixture(scope="module")
def restored(mariadb, sakila_dump):
    manifest, data = sakila_dump
    result = restore(io.BytesIO(data), mariadb, target_db="sakila_restore_x", threads=2)
    return result


def test_manifest_describes_sakila(sakila_dump):
    manifest, data = sakila_dump
    db = manifest.databases["sakila"]
    assert len(db.tables) == 16
    assert db.tables["rental"].rows == 16044 and db.tables["payment"].rows == 16049
    assert all(t.checksum is not None for t in db.tables.values())
    assert len(db.views) == 7 and len(db.triggers) == 6 and len(db.routines) == 6
    assert manifest.binlog is None  # the shared server runs with --skip-log-bin
    assert manifest.bytes_written < len(data)
    assert manifest.consistency == "snapshot+backup-stage"  # threads=2: snapshots opened under a lock
    assert b"`sakila`." not in data  # no object names its database any more
    assert b"DEFINER=" not in data and b"DEFINER =" not in data


def test_checksums_and_counts_match(mariadb, sakila, restored):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        assert checksums(cur, "sakila_restore_x") == checksums(cur, sakila)
        assert counts(cur, "sakila_restore_x") == counts(cur, sakila)
    assert restored.databases == {"sakila": "sakila_restore_x"}
    assert restored.mismatches == []
    assert all(t.ok for t in restored.tables) and len(restored.tables) == 16
    assert restored.rows == sum(t.rows_expected for t in restored.tables)
    assert restored.seconds > 0 and restored.load_seconds <= restored.seconds


def test_verify_against_manifest(mariadb, sakila_dump, restored):
    manifest, _ = sakila_dump
    assert verify(mariadb, "sakila_restore_x", manifest.databases["sakila"].tables) == []


def test_every_object_exists(mariadb, sakila, restored):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        assert objects(cur, "sakila_restore_x") == objects(cur, sakila)
        cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE '%%__dr_staging_%%' OR SCHEMA_NAME LIKE '%%__dr_old_%%'")
        assert cur.fetchone()[0] == 0


def test_routines_work(mariadb, sakila, restored):
    conn = connect(mariadb, "sakila_restore_x")
    with conn.cursor() as cur:
        cur.execute("CALL film_in_stock(1, 1, @count)")
        ids = sorted(r[0] for r in cur.fetchall())
        while cur.nextset():
            pass
        cur.execute("SELECT @count")
        assert cur.fetchone()[0] == len(ids) == 4
        cur.execute("SELECT get_customer_balance(1, NOW())")
        balance = cur.fetchone()[0]
    orig = connect(mariadb, sakila)
    with orig.cursor() as cur:
        cur.execute("SELECT get_customer_balance(1, NOW())")
        assert cur.fetchone()[0] == balance
        cur.execute("SELECT inventory_in_stock(1)")
        expected = cur.fetchone()[0]
    with conn.cursor() as cur:
        cur.execute("SELECT inventory_in_stock(1)")
        assert cur.fetchone()[0] == expected


def test_every_view_selects_the_same(mariadb, sakila, restored):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA=%s",
                    (sakila,))
        views = [r[0] for r in cur.fetchall()]
        assert len(views) == 7
        for v in views:
            cur.execute(f"SELECT * FROM `sakila_restore_x`.`{v}`")
            got = sorted(map(repr, cur.fetchall()))
            cur.execute(f"SELECT * FROM `{sakila}`.`{v}`")
            assert got == sorted(map(repr, cur.fetchall())), v
            cur.execute("SELECT VIEW_DEFINITION FROM information_schema.VIEWS "
                        "WHERE TABLE_SCHEMA='sakila_restore_x' AND TABLE_NAME=%s", (v,))
            assert "`sakila`" not in cur.fetchone()[0]  # reads the restored tables


def test_triggers_fire(mariadb, restored):
    conn = connect(mariadb, "sakila_restore_x")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO film (title, description, language_id) "
                    "VALUES ('DR DRILL', 'restored and working', 1)")
        film_id = cur.lastrowid
        cur.execute("SELECT title, description FROM film_text WHERE film_id=%s", (film_id,))
        assert cur.fetchone() == ("DR DRILL", "restored and working")
        cur.execute("UPDATE film SET title='DR DRILL 2' WHERE film_id=%s", (film_id,))
        cur.execute("SELECT title FROM film_text WHERE film_id=%s", (film_id,))
        assert cur.fetchone() == ("DR DRILL 2",)
        cur.execute("INSERT INTO customer (store_id, first_name, last_name, address_id) "
                    "VALUES (1, 'A', 'B', 1)")
        cur.execute("SELECT create_date IS NOT NULL FROM customer WHERE customer_id=%s",
                    (cur.lastrowid,))
        assert cur.fetchone() == (1,)


def test_fulltext_and_geometry(mariadb, sakila, restored):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM sakila_restore_x.film_text "
                    "WHERE MATCH(title, description) AGAINST ('drama')")
        assert cur.fetchone()[0] > 0
        # MariaDB skips Sakila's /*!50705 ...*/ GEOMETRY column; the hostile data set covers it
        cur.execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s "
                    "AND TABLE_NAME='address' AND COLUMN_NAME='location'", (sakila,))
        if cur.fetchone()[0]:
            q = "SELECT address_id, ST_AsText(location) FROM `{}`.address ORDER BY address_id"
            cur.execute(q.format(sakila))
            orig = cur.fetchall()
            cur.execute(q.format("sakila_restore_x"))
            assert cur.fetchall() == orig


def test_foreign_keys_point_at_the_restored_tables(mariadb, restored):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT REFERENCED_TABLE_SCHEMA FROM "
                    "information_schema.REFERENTIAL_CONSTRAINTS rc JOIN "
                    "information_schema.KEY_COLUMN_USAGE k USING (CONSTRAINT_SCHEMA, "
                    "CONSTRAINT_NAME) WHERE rc.CONSTRAINT_SCHEMA='sakila_restore_x'")
        assert [r[0] for r in cur.fetchall()] == ["sakila_restore_x"]
