"""Frame payloads are checked for what their kind must hold: damage that passes the CRC (which
covers the payload, not the kind byte) is a StreamFormatError naming the frame and its byte."""

from __future__ import annotations

import io

import pytest

from dr.mysql import StreamFormatError
from dr.mysql import frames
from dr.mysql.frames import DONE, END, HEAD, MAGIC, ROWS, SCHEMA, FrameReader, FrameWriter


def raw_stream(*frames: tuple[bytes, bytes], end_payload: bytes | None = None) -> bytes:
    out = io.BytesIO()
    w = FrameWriter(out)
    for kind, payload in frames:
        w.frame(kind, payload)
    if end_payload is None:
        w.end()
    else:
        w.frame(END, end_payload)
    return out.getvalue()


@pytest.mark.parametrize("payload, message", [
    (b"not json", "its end frame at byte 11 is not valid JSON"),
    (b"[1, 2]", "its end frame at byte 11 holds a list, not an object"),
    (b"\xff\xfe", "its end frame at byte 11 is not valid JSON"),
])
def test_an_end_frame_that_is_no_object_is_a_format_error(payload, message):
    with pytest.raises(StreamFormatError, match=message):
        list(FrameReader(io.BytesIO(raw_stream(end_payload=payload))))


def test_the_reader_says_where_each_frame_starts():
    reader = FrameReader(io.BytesIO(raw_stream((HEAD, b"{}"), (ROWS, b"\0\0\0\1(1)"))))
    assert [(k, reader.offset) for k, _ in reader] == [
        (HEAD, len(MAGIC)), (ROWS, len(MAGIC) + 9 + 2), (END, len(MAGIC) + 9 + 2 + 9 + 7)]


def test_payload_checks_name_the_frame_the_field_and_the_byte():
    with pytest.raises(StreamFormatError, match=r"table-done frame at byte 99 is not what a "
                                                r"dr-mysql/1 table-done frame holds: 'id' "
                                                r"should be an integer, it is missing"):
        frames.read_done(b'{"frames": 3, "bytes": 99}', 99)
    with pytest.raises(StreamFormatError, match="'id' should be an integer, it is a boolean"):
        frames.read_done(b'{"id": true}', 5)
    assert frames.read_done(b'{"id": 7, "rows": 1}', 5)["id"] == 7
    with pytest.raises(StreamFormatError, match="header frame at byte 11 .*'databases' should "
                                                "be a list, it is a string"):
        frames.read_head(b'{"format": "dr-mysql/1", "databases": "app"}', 11)
    with pytest.raises(StreamFormatError, match="lists a database name that is not a string"):
        frames.read_head(b'{"format": "dr-mysql/1", "databases": [1]}', 11)
    schema = (b'{"database": "app", "charset": "utf8mb4", "collation": "x", "tables": '
              b'[{"id": 1, "name": "t", "create": "CREATE TABLE t (a INT)", "columns": []}]}')
    doc = frames.read_schema(schema, 40)
    assert doc["views"] == [] and doc["events"] == []  # absent lists read as empty
    with pytest.raises(StreamFormatError, match="schema frame at byte 40 .*table #0: 'create' "
                                                "should be a string, it is null"):
        frames.read_schema(schema.replace(b'"CREATE TABLE t (a INT)"', b"null"), 40)
    with pytest.raises(StreamFormatError, match="routines #0: 'create' should be a string"):
        frames.read_schema(schema[:-1] + b', "routines": [{"kind": "PROCEDURE", "name": "p"}]}', 40)
    with pytest.raises(StreamFormatError, match="rows frame at byte 3 has 2 bytes, too few"):
        frames.rows_table_id(b"\0\1", 3)
    assert frames.rows_table_id(b"\0\0\1\0(1)", 3) == 256


def test_a_schema_frame_is_checked_before_use():
    with pytest.raises(StreamFormatError, match="schema frame at byte 7 holds a string"):
        frames.read_schema(b'"app"', 7)
    assert SCHEMA == b"S" and DONE == b"D"
