"""The dr-mysql/1 stream framing (FORMAT.md): a magic line, then checksummed frames.

    frame = kind (1 byte) | length (uint32 BE) | crc32 of payload (uint32 BE) | payload

Writers are thread-safe (the dump's workers share one); readers detect damage (bad CRC),
truncation (EOF inside a frame or before the end frame) and trailing garbage.
"""

from __future__ import annotations

import json
import struct
import threading
import zlib
from typing import Any, BinaryIO

from dr.files import read_exactly
from dr.mysql.errors import StreamFormatError

MAGIC = b"DR-MYSQL/1\n"
HEADER = struct.Struct(">cII")
TABLE_ID = struct.Struct(">I")
MAX_FRAME = (1 << 32) - 1

HEAD = b"H"  # JSON: format, server, started_at, databases
SCHEMA = b"S"  # JSON: one database's tables (with ids and columns) and objects
ROWS = b"R"  # uint32 table id + the VALUES text of one multi-row INSERT: (..),(..)
DONE = b"D"  # JSON: {"id", "rows", "checksum"}: a table's last rows frame has been written
MANIFEST = b"M"  # JSON: the DumpManifest
END = b"E"  # JSON: {"frames": n, "bytes": offset of this frame}
KINDS = {HEAD, SCHEMA, ROWS, DONE, MANIFEST, END}
NAMES = {HEAD: "header", SCHEMA: "schema", ROWS: "rows", DONE: "table-done",
         MANIFEST: "manifest", END: "end"}


class FrameWriter:
    """Writes frames to a binary sink; counts bytes; one lock so workers can share it."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.frames = 0
        self._write(MAGIC)

    def _write(self, data) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def frame(self, kind: bytes, *parts: bytes) -> int:
        """Write one frame whose payload is the concatenation of `parts`; returns its size."""
        length = sum(len(p) for p in parts)
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} bytes is too large")
        crc = 0
        for p in parts:
            crc = zlib.crc32(p, crc)
        head = HEADER.pack(kind, length, crc)
        with self._lock:
            self._write(head)
            for p in parts:
                self._write(p)
            self.frames += 1
        return HEADER.size + length

    def json(self, kind: bytes, obj: Any) -> int:
        # ASCII JSON: definitions may carry non-UTF-8 bytes as surrogate escapes (schema.show)
        return self.frame(kind, json.dumps(obj, separators=(",", ":")).encode("ascii"))

    def rows(self, table_id: int, values: bytes) -> int:
        return self.frame(ROWS, TABLE_ID.pack(table_id), values)

    def end(self) -> None:
        with self._lock:
            offset, count = self.bytes_written, self.frames
        self.json(END, {"frames": count, "bytes": offset})


class FrameReader:
    """Iterates (kind, payload) over a dr-mysql/1 stream, checking CRCs and the end frame."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0
        self.frames = 0
        magic = read_exactly(stream, len(MAGIC))
        self.bytes_read += len(magic)
        if magic != MAGIC:
            if not magic:
                raise StreamFormatError("the dump stream is empty")
            raise StreamFormatError(
                "this is not a dr MySQL dump (dr-mysql/1): it does not start with "
                f"{MAGIC!r}", hint="check the file is a dr MySQL backup, decrypted and "
                                   "decompressed")
        self.ended = False
        self.offset = 0  # where the last frame returned starts (magic included)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        if self.ended:
            if self._stream.read(1):
                raise StreamFormatError("the dump stream has data after its end frame")
            raise StopIteration
        head = read_exactly(self._stream, HEADER.size)
        if len(head) < HEADER.size:
            raise StreamFormatError(
                f"the dump stream is truncated at byte {self.bytes_read + len(head)}: it ended "
                "before its end frame", hint="the backup is incomplete; use another one")
        kind, length, crc = HEADER.unpack(head)
        if kind not in KINDS:
            raise StreamFormatError(f"the dump stream is damaged at byte {self.bytes_read}: "
                                    f"unknown frame kind {kind!r}")
        offset = self.bytes_read
        payload = read_exactly(self._stream, length)
        self.bytes_read += HEADER.size + len(payload)
        if len(payload) < length:
            raise StreamFormatError(
                f"the dump stream is truncated at byte {self.bytes_read}: a frame of {length} "
                f"bytes at byte {offset} has only {len(payload)}",
                hint="the backup is incomplete; use another one")
        if zlib.crc32(payload) != crc:
            raise StreamFormatError(f"the dump stream is damaged: frame at byte {offset} fails "
                                    "its CRC32 check")
        if kind == END:
            info = parse_json(kind, payload, offset)
            if info.get("frames") != self.frames or info.get("bytes") != offset:
                raise StreamFormatError(
                    f"the dump stream's end frame says {info.get('frames')} frames / "
                    f"{info.get('bytes')} bytes, but {self.frames} frames / {offset} bytes came "
                    "before it: frames are missing")
            self.ended = True
        self.frames += 1
        self.offset = offset
        return kind, payload


def load_json(payload: bytes) -> Any:
    return json.loads(payload.decode("utf-8"))


# -- what a frame's payload must hold ----------------------------------------------------------
#
# A frame's CRC covers its payload, not its kind byte: one flipped bit turns an end frame into a
# table-done frame ('E' ^ 1 == 'D'), rows into a schema ('R' ^ 1 == 'S'), and so on. So every
# JSON payload is checked for what its kind must hold before anything uses it: damage is always
# a StreamFormatError that names the frame and its byte offset, never a KeyError.

_JSON_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "a list", dict: "an object", type(None): "null"}


def damaged(kind: bytes, offset: int, what: str) -> StreamFormatError:
    name = NAMES.get(kind, repr(kind))
    return StreamFormatError(f"the dump stream is damaged: its {name} frame at byte {offset} "
                             f"{what}", hint="the backup is damaged; restore another one")


def parse_json(kind: bytes, payload: bytes, offset: int) -> dict[str, Any]:
    """A frame's JSON object, or StreamFormatError naming the frame and where it is."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged(kind, offset, "is not valid JSON") from None
    if not isinstance(doc, dict):
        raise damaged(kind, offset, f"holds {_JSON_NAMES.get(type(doc), 'a value')}, not an "
                                    "object")
    return doc


def _check(kind: bytes, offset: int, doc: dict, where: str, fields: dict[str, type]) -> None:
    for key, want in fields.items():
        value = doc.get(key)
        if not isinstance(value, want) or isinstance(value, bool):
            got = "missing" if key not in doc else _JSON_NAMES.get(type(value), "?")
            raise damaged(kind, offset, f"is not what a dr-mysql/1 {NAMES.get(kind)} frame "
                                        f"holds: {where}{key!r} should be {_JSON_NAMES[want]}, "
                                        f"it is {got}")


def read_head(payload: bytes, offset: int) -> dict[str, Any]:
    doc = parse_json(HEAD, payload, offset)
    _check(HEAD, offset, doc, "", {"format": str, "databases": list})
    if not all(isinstance(d, str) for d in doc["databases"]):
        raise damaged(HEAD, offset, "lists a database name that is not a string")
    return doc


_OBJECT_LISTS = ("views", "triggers", "routines", "events")


def read_schema(payload: bytes, offset: int) -> dict[str, Any]:
    doc = parse_json(SCHEMA, payload, offset)
    _check(SCHEMA, offset, doc, "", {"database": str, "charset": str, "collation": str,
                                     "tables": list})
    for i, t in enumerate(doc["tables"]):
        if not isinstance(t, dict):
            raise damaged(SCHEMA, offset, f"has a table #{i} that is not an object")
        _check(SCHEMA, offset, t, f"table #{i}: ", {"id": int, "name": str, "create": str,
                                                    "columns": list})
    for key in _OBJECT_LISTS:
        objects = doc.setdefault(key, [])
        if not isinstance(objects, list):
            raise damaged(SCHEMA, offset, f"has {key!r} that is not a list")
        for i, o in enumerate(objects):
            if not isinstance(o, dict):
                raise damaged(SCHEMA, offset, f"has {key} #{i} that is not an object")
            _check(SCHEMA, offset, o, f"{key} #{i}: ", {"kind": str, "name": str,
                                                        "create": str})
    return doc


def read_done(payload: bytes, offset: int) -> dict[str, Any]:
    doc = parse_json(DONE, payload, offset)
    _check(DONE, offset, doc, "", {"id": int})
    return doc


def rows_table_id(payload, offset: int) -> int:
    if len(payload) < TABLE_ID.size:
        raise damaged(ROWS, offset, f"has {len(payload)} bytes, too few for a table id")
    return TABLE_ID.unpack_from(payload)[0]
