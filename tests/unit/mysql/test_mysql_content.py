"""content.chunk_sum: Σ CRC32 over the rows of a chunk, whatever bytes the quoted values hold."""

from __future__ import annotations

import random
import zlib

from dr.mysql.content import chunk_sum


def quote(value: bytes | None) -> bytes:
    """What the server's QUOTE() makes (FORMAT.md, "R")."""
    if value is None:
        return b"NULL"
    out = value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\x00", b"\\0")
    return b"'" + out.replace(b"\x1a", b"\\Z") + b"'"


def rows_of(rows: list[list[bytes | None]]) -> list[bytes]:
    return [b"(" + b",".join(quote(v) if not isinstance(v, int) else str(v).encode()
                             for v in row) + b")" for row in rows]


def test_tricky_values():
    rows = rows_of([
        [1, b"plain", None],
        [2, b"a),(b", b"),("],
        [3, b"\\", b"'"],  # ends in an escaped backslash, then a quote
        [4, b"it's", b"\\'),('x"],
        [5, b"", b"\n\r\t"],
        [-6, b"\x00\x1a\xff\xfe(", b")"],
    ])
    chunk = b",".join(rows)
    assert chunk_sum(chunk) == sum(zlib.crc32(r) for r in rows)
    assert chunk_sum(memoryview(chunk)) == chunk_sum(chunk)


def test_random_bytes():
    rnd = random.Random(7)
    rows = rows_of([[i, rnd.randbytes(rnd.randrange(0, 60)), None if i % 5 else b"x",
                     rnd.choice([b"(", b")", b"'", b"\\", b"),(", b"\\\\'"]) * 3]
                    for i in range(2000)])
    chunk = b",".join(rows)
    assert chunk_sum(chunk) == sum(zlib.crc32(r) for r in rows)


def test_a_changed_value_changes_the_sum():
    rows = rows_of([[i, f"v{i}".encode()] for i in range(100)])
    other = list(rows)
    other[50] = rows_of([[50, b"v5O"]])[0]
    assert chunk_sum(b",".join(rows)) != chunk_sum(b",".join(other))
    assert chunk_sum(b"") == 0
