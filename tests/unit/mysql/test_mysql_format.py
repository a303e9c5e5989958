"""Manifest round trip and the dr-mysql/1 framing: damage and truncation anywhere are caught."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest

from dr.mysql import BinlogPosition, DatabaseInfo, DumpManifest, StreamFormatError, TableInfo
from dr.mysql.chunks import IntRanges, KeysetRanges
from dr.mysql.frames import END, HEAD, MAGIC, MANIFEST, ROWS, FrameReader, FrameWriter
from dr.mysql.restore_result import checksums_comparable
from dr.mysql.schema import Column, TableDef


def manifest() -> DumpManifest:
    return DumpManifest(
        server_version="10.11.19-MariaDB", source="backup@db:3306",
        databases={"app": DatabaseInfo(
            charset="utf8mb4", collation="utf8mb4_general_ci",
            tables={"t": TableInfo(rows=3, checksum=123, bytes=45, engine="InnoDB", chunks=1,
                                   columns=2),
                    "e": TableInfo(rows=0, checksum=None, bytes=0, engine="MyISAM")},
            views=["v"], triggers=["tr"], routines=["PROCEDURE p"], events=["ev"])},
        binlog=BinlogPosition(file="binlog.000002", position=1234, gtid="0-1-7"),
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        finished_at=datetime(2026, 1, 2, 3, 4, 9, tzinfo=timezone.utc),
        seconds=4.0, bytes_written=999, consistency="snapshot+ftwrl", threads=2,
        warnings=["w"])


def test_manifest_round_trip_through_json():
    m = manifest()
    doc = json.loads(json.dumps(m.to_dict()))
    assert doc["format"] == "dr-mysql/1" and doc["rows"] == 3 and doc["data_bytes"] == 45
    assert doc["databases"]["app"]["tables"]["t"] == {
        "rows": 3, "checksum": 123, "bytes": 45, "engine": "InnoDB", "chunks": 1, "columns": 2}
    assert DumpManifest.from_dict(doc) == m
    no_binlog = manifest()
    no_binlog.binlog = None
    assert DumpManifest.from_dict(no_binlog.to_dict()).binlog is None


def test_manifest_rejects_other_formats():
    doc = manifest().to_dict()
    doc["format"] = "dr-mysql/9"
    with pytest.raises(ValueError, match="dr-mysql/1"):
        DumpManifest.from_dict(doc)


def stream() -> bytes:
    out = io.BytesIO()
    w = FrameWriter(out)
    w.json(HEAD, {"format": "dr-mysql/1", "x": "ü\udcff"})
    w.rows(1, b"(1,'a'),(2,'b')")
    w.rows(2, b"")
    w.json(MANIFEST, {"ok": True})
    w.end()
    assert w.bytes_written == len(out.getvalue())
    return out.getvalue()


def test_frames_round_trip():
    data = stream()
    assert data.startswith(MAGIC)
    frames = list(FrameReader(io.BytesIO(data)))
    assert [k for k, _ in frames] == [HEAD, ROWS, ROWS, MANIFEST, END]
    assert json.loads(frames[0][1])["x"] == "ü\udcff"  # surrogates survive (ASCII JSON)
    assert frames[1][1] == b"\x00\x00\x00\x01(1,'a'),(2,'b')"


class Trickle(io.RawIOBase):
    """Returns at most 3 bytes per read, as a raw stream may."""

    def __init__(self, data):
        self.buf = io.BytesIO(data)

    def readable(self):
        return True

    def read(self, n=-1):
        return self.buf.read(min(3, n if n >= 0 else 3))


def test_short_reads_are_fine():
    assert len(list(FrameReader(Trickle(stream())))) == 5


def test_truncation_anywhere_is_an_error():
    data = stream()
    for end in range(len(data)):
        with pytest.raises(StreamFormatError):
            list(FrameReader(io.BytesIO(data[:end])))


def test_damage_anywhere_is_an_error():
    data = stream()
    for i in range(len(MAGIC), len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(StreamFormatError):
            list(FrameReader(io.BytesIO(bytes(bad))))


def test_trailing_garbage_is_an_error():
    with pytest.raises(StreamFormatError, match="after its end frame"):
        list(FrameReader(io.BytesIO(stream() + b"x")))


def test_not_a_dump():
    with pytest.raises(StreamFormatError, match="not a dr MySQL dump"):
        FrameReader(io.BytesIO(b"-- MySQL dump 10.19\n"))


def test_checksums_compared_only_between_like_servers():
    assert checksums_comparable("10.11.19-MariaDB-0+deb12u1", "10.11.6-MariaDB")
    assert not checksums_comparable("10.11.19-MariaDB", "11.4.2-MariaDB")
    assert not checksums_comparable("8.0.36", "10.11.19-MariaDB")


def test_value_expressions():
    assert Column("n", "int", None).value_sql() == "IFNULL(`n`,'NULL')"
    assert "AS DOUBLE" in Column("f", "float", None).value_sql()
    assert Column("b", "blob", None).value_sql() == "QUOTE(`b`)"
    assert Column("g", "point", None).value_sql() == "QUOTE(`g`)"
    assert Column("l", "varchar", "latin1").value_sql() == \
        "QUOTE(CAST(CONVERT(`l` USING utf8mb4) AS BINARY))"
    assert Column("u", "varchar", "utf8mb4").value_sql() == "QUOTE(CAST(`u` AS BINARY))"
    assert Column("d", "datetime", None).value_sql() == "QUOTE(CAST(`d` AS BINARY))"
    assert Column("i", "inet6", None).value_sql() == "QUOTE(`i`)"
    assert Column("n", "int", None, nullable=False).value_sql() == "`n`"
    assert Column("bt", "bit", None, nullable=False).value_sql() == "CAST(`bt` AS UNSIGNED)"
    t = TableDef(name="t", engine="InnoDB", create="", columns=[
        Column("a", "int", None), Column("g", "int", None, generated=True)])
    assert t.row_sql() == "IFNULL(CONCAT(_binary'(',IFNULL(`a`,'NULL'),')'),0x00)"


class FakeCursor:
    def __init__(self, rows):
        self.rows, self.sql = list(rows), []

    def execute(self, sql):
        self.sql.append(sql)

    def fetchone(self):
        return self.rows.pop(0) if self.rows else None


def test_int_ranges_adapt_to_gaps_and_density():
    t = TableDef(name="t", engine="InnoDB", create="", columns=[Column("id", "int", None)],
                 key=["id"], key_index="PRIMARY", key_is_int=True, rows_estimate=1000,
                 avg_row_length=100)
    c = IntRanges(t, target_bytes=12000)
    r1 = c.next(FakeCursor([(1, 1000)]), "`d`.`t`")
    assert r1.where == b"`id` BETWEEN 1 AND 100" and not c.done
    c.learned(r1, 0, 0)  # a gap: width grows
    r2 = c.next(None, "")
    assert r2.keys == 400
    c.learned(r2, 400, 400 * 1000)  # big rows: width shrinks to the target
    r3 = c.next(None, "")
    assert r3.keys < 20
    while c.next(None, "") is not None:
        pass
    assert c.done


def test_keyset_ranges_spell_out_row_comparisons():
    t = TableDef(name="t", engine="InnoDB", create="",
                 columns=[Column("a", "int", None), Column("b", "varchar", "utf8mb4")],
                 key=["a", "b"], key_index="PRIMARY", avg_row_length=100)
    c = KeysetRanges(t, 1 << 20, ["`a`", "QUOTE(CAST(`b` AS BINARY))"])
    cur = FakeCursor([("5", b"'x'")])
    r1 = c.next(cur, "`d`.`t`")
    assert b"ORDER BY `a`,`b` LIMIT 1 OFFSET" in cur.sql[0]
    assert r1.where == b"(`a`<5) OR (`a`=5 AND `b`<'x') OR (`a`=5 AND `b`='x')"
    r2 = c.next(FakeCursor([]), "`d`.`t`")
    assert r2.where == b"(`a`>5) OR (`a`=5 AND `b`>'x')" and c.done


def test_int_ranges_sparse_keys_start_wide():
    t = TableDef(name="t", engine="InnoDB", create="", columns=[Column("id", "int", None)],
                 key=["id"], key_index="PRIMARY", key_is_int=True, rows_estimate=1000,
                 avg_row_length=100)
    c = IntRanges(t, target_bytes=12000)
    assert c.next(FakeCursor([(1, 1_000_000)]), "`d`.`t`").keys == 100_000
    empty = IntRanges(t, target_bytes=12000)
    assert empty.next(FakeCursor([(None, None)]), "`d`.`t`") is None and empty.done
