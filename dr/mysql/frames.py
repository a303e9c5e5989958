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


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    """Exactly n bytes, or fewer only at end of stream (a raw stream may return short reads)."""
    data = stream.read(n)
    if data is None:
        data = b""
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class FrameReader:
    """Iterates (kind, payload) over a dr-mysql/1 stream, checking CRCs and the end frame."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0
        self.frames = 0
        magic = _read_exact(stream, len(MAGIC))
        self.bytes_read += len(magic)
        if magic != MAGIC:
            if not magic:
                raise StreamFormatError("the dump stream is empty")
            raise StreamFormatError(
                "this is not a dr MySQL dump (dr-mysql/1): it does not start with "
                f"{MAGIC!r}", hint="check the file is a dr MySQL backup, decrypted and "
                                   "decompressed")
        self.ended = False

    def __iter__(self):
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        if self.ended:
            if self._stream.read(1):
                raise StreamFormatError("the dump stream has data after its end frame")
            raise StopIteration
        head = _read_exact(self._stream, HEADER.size)
        if len(head) < HEADER.size:
            raise StreamFormatError(
                f"the dump stream is truncated at byte {self.bytes_read + len(head)}: it ended "
                "before its end frame", hint="the backup is incomplete; use another one")
        kind, length, crc = HEADER.unpack(head)
        if kind not in KINDS:
            raise StreamFormatError(f"the dump stream is damaged at byte {self.bytes_read}: "
                                    f"unknown frame kind {kind!r}")
        offset = self.bytes_read
        payload = _read_exact(self._stream, length)
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
            info = json.loads(payload)
            if info.get("frames") != self.frames or info.get("bytes") != offset:
                raise StreamFormatError(
                    f"the dump stream's end frame says {info.get('frames')} frames / "
                    f"{info.get('bytes')} bytes, but {self.frames} frames / {offset} bytes came "
                    "before it: frames are missing")
            self.ended = True
        self.frames += 1
        return kind, payload


def load_json(payload: bytes) -> Any:
    return json.loads(payload.decode("utf-8"))
