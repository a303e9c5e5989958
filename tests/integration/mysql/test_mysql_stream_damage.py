"""A damaged stream is always a StreamFormatError that says which frame and where, and the
target is left alone: frame kinds changed by one bit (the CRC covers the payload, not the
kind: 'E' ^ 1 is 'D'), and payloads with a valid CRC that do not hold what their kind must."""

from __future__ import annotations

import io
import json

import pytest

from dr.mysql import StreamFormatError, connect, dump, restore
from dr.mysql.frames import (DONE, END, HEAD, HEADER, MAGIC, MANIFEST, SCHEMA, FrameReader,
                             FrameWriter)
from tests.support.mariadb import mariadb, mariadb_server  # noqa: F401

pytestmark = pytest.mark.integration

DB = "damage"


@pytest.fixture(scope="module")
def stream(mariadb):
    conn = connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"CREATE TABLE {DB}.t (id INT PRIMARY KEY, s VARCHAR(10))")
        cur.execute(f"INSERT INTO {DB}.t VALUES (1, 'a'), (2, 'b')")
        cur.execute(f"CREATE VIEW {DB}.v AS SELECT id FROM {DB}.t")
    conn.close()
    buf = io.BytesIO()
    dump(mariadb, [DB], buf)
    return buf.getvalue()


def frame_offsets(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], len(MAGIC)
    while pos < len(data):
        kind, length, _ = HEADER.unpack_from(data, pos)
        out.append((pos, kind))
        pos += HEADER.size + length
    return out


def databases(spec) -> set[str]:
    conn = connect(spec)
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        found = {r[0] for r in cur.fetchall()}
    conn.close()
    return found


def test_an_end_frame_read_as_table_done_names_the_frame_and_byte(mariadb, stream):
    offset, kind = frame_offsets(stream)[-1]
    assert kind == END
    bad = bytearray(stream)
    bad[offset] ^= 0x01  # 'E' -> 'D': the CRC still matches
    with pytest.raises(StreamFormatError) as e:
        restore(io.BytesIO(bytes(bad)), mariadb, target_db="damage_copy")
    assert str(e.value).startswith(f"the dump stream is damaged: its table-done frame at byte "
                                   f"{offset} comes after the manifest")
    assert not {d for d in databases(mariadb) if d.startswith("damage_copy")}


def test_every_one_bit_change_of_a_frame_kind_is_a_stream_format_error(mariadb, stream):
    before = databases(mariadb)
    for offset, _ in frame_offsets(stream):
        for bit in range(8):
            bad = bytearray(stream)
            bad[offset] ^= 1 << bit
            with pytest.raises(StreamFormatError):
                restore(io.BytesIO(bytes(bad)), mariadb, target_db="damage_kind")
    assert databases(mariadb) == before


def rewrite(data: bytes, change) -> bytes:
    out = io.BytesIO()
    writer = FrameWriter(out)
    for kind, payload in FrameReader(io.BytesIO(data)):
        if kind != END:
            new = change(kind, payload)
            if new is not None:
                writer.frame(*new) if isinstance(new, tuple) else writer.frame(kind, new)
    writer.end()
    return out.getvalue()


def edit_json(target_kind, edit):
    def change(kind, payload):
        if kind != target_kind:
            return payload
        doc = json.loads(payload)
        doc = edit(doc)
        return json.dumps(doc).encode()
    return change


def _drop_table_id(doc):
    del doc["tables"][0]["id"]
    return doc


def _done_id_text(doc):
    doc["id"] = "1"
    return doc


@pytest.mark.parametrize("change, expected", [
    (edit_json(DONE, lambda d: {}), "table-done frame at byte"),
    (edit_json(MANIFEST, lambda d: [d]), "manifest frame at byte"),
    (edit_json(DONE, _done_id_text), "'id' should be an integer, it is a string"),
    (edit_json(SCHEMA, _drop_table_id), "table #0: 'id' should be an integer, it is missing"),
    (edit_json(SCHEMA, lambda d: {**d, "views": [{"name": "v"}]}), "views #0: 'kind'"),
    (edit_json(HEAD, lambda d: {**d, "databases": "damage"}), "header frame at byte 11"),
    (edit_json(HEAD, lambda d: [d]), "holds a list, not an object"),
    (edit_json(MANIFEST, lambda d: {**d, "started_at": None}), "manifest is damaged (its frame"),
    (lambda k, p: b"{not json" if k == SCHEMA else p, "schema frame at byte"),
    (lambda k, p: (DONE, p) if k == MANIFEST else p, "table-done frame at byte"),
    (lambda k, p: None if k == SCHEMA else p, "the schema frame of database damage is missing"),
], ids=["done-empty", "manifest-list", "done-id-text", "table-without-id", "object-without-kind",
        "head-databases", "head-list", "manifest-field", "schema-not-json", "manifest-as-done",
        "no-schema"])
def test_payloads_that_do_not_hold_what_their_kind_must(mariadb, stream, change, expected):
    conn = connect(mariadb)
    with conn.cursor() as cur:  # (a restore that wrongly went through must not hide the next)
        cur.execute("DROP DATABASE IF EXISTS damage_payload")
    conn.close()
    before = databases(mariadb)
    with pytest.raises(StreamFormatError) as e:
        restore(io.BytesIO(rewrite(stream, change)), mariadb, target_db="damage_payload")
    assert expected in str(e.value)
    assert databases(mariadb) == before
