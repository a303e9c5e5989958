"""Splitting a table into chunks the server can format as one multi-row INSERT each.

A chunk is a key range. The server turns it into `(..),(..),...` with one
`SELECT COUNT(*), GROUP_CONCAT(<row>) ... WHERE <range>` round trip, so Python never touches a
value. Three ways to cut ranges:

* IntRanges: a single-column integer key; ranges are arithmetic and adapt their width to the
  bytes observed per key value (sparse or dense keys, small or large rows).
* KeysetRanges: any other PRIMARY/UNIQUE NOT NULL key (composite, strings, dates); the next
  boundary is `... ORDER BY key LIMIT 1 OFFSET n-1`, n adapting to the bytes per row.
* WholeTable: no usable key; the table is streamed row by row (one worker).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dr.mysql.schema import TableDef
from dr.mysql.sqltext import quote_ident


@dataclass
class Range:
    where: bytes  # a WHERE clause body ("1" for the whole table)
    keys: int = 0  # key values spanned (IntRanges), for adapting the width


def _q(sql: str) -> bytes:
    return sql.encode("utf-8")


class Chunker:
    """Hands out the next Range of a table, thread-safely; learns from finished chunks."""

    def __init__(self, table: TableDef, target_bytes: int):
        self.table = table
        self.target = target_bytes
        self.lock = threading.Lock()
        self.done = False

    def next(self, cur, src: str) -> Range | None:
        """The next range (queries run on `cur`, inside the dump's snapshot), or None."""
        raise NotImplementedError

    def learned(self, rng: Range, rows: int, nbytes: int) -> None:
        pass


class WholeTable(Chunker):
    def next(self, cur, src: str) -> Range | None:
        with self.lock:
            if self.done:
                return None
            self.done = True
            return Range(b"1")


class IntRanges(Chunker):
    """`key BETWEEN a AND b` slices of [MIN(key), MAX(key)], width adapted to bytes per key."""

    def __init__(self, table: TableDef, target_bytes: int):
        super().__init__(table, target_bytes)
        self.col = quote_ident(table.key[0])
        self.next_start: int | None = None
        self.hi = 0
        self.width = 1
        self.bytes_per_key: float | None = None

    def _init(self, cur, src: str) -> None:
        cur.execute(f"SELECT MIN({self.col}), MAX({self.col}) FROM {src}")
        lo, hi = cur.fetchone()
        if lo is None:
            self.done = True
            return
        self.next_start, self.hi = int(lo), int(hi)
        span = self.hi - int(lo) + 1
        est_rows = max(self.table.rows_estimate, 1)
        row_bytes = max(self.table.avg_row_length, 16) * 1.2
        density = min(est_rows / span, 1.0)
        self.width = max(1, min(span, int(self.target / (row_bytes * density))))

    def next(self, cur, src: str) -> Range | None:
        with self.lock:
            if self.done:
                return None
            if self.next_start is None:
                self._init(cur, src)
                if self.done:
                    return None
            a = self.next_start
            b = min(a + self.width - 1, self.hi)
            if b >= self.hi:
                self.done = True
            self.next_start = b + 1
            return Range(_q(f"{self.col} BETWEEN {a} AND {b}"), keys=b - a + 1)

    def learned(self, rng: Range, rows: int, nbytes: int) -> None:
        with self.lock:
            if rows == 0:  # a gap in the keys: widen fast
                self.width = min(self.width * 4, 1 << 62)
                return
            per_key = nbytes / rng.keys
            self.bytes_per_key = per_key if self.bytes_per_key is None else \
                0.5 * self.bytes_per_key + 0.5 * per_key
            want = int(self.target / self.bytes_per_key)
            self.width = max(1, min(want, self.width * 4))


class KeysetRanges(Chunker):
    """`key > last AND key <= boundary` slices found by walking the key `n` rows at a time."""

    def __init__(self, table: TableDef, target_bytes: int, literal_sql: list[str]):
        super().__init__(table, target_bytes)
        self.cols = [quote_ident(c) for c in table.key]
        self.literals = literal_sql  # value_sql() of each key column: the key as SQL literals
        self.last: list[bytes] | None = None
        self.rows_per_chunk = max(16, int(target_bytes / (max(table.avg_row_length, 16) * 1.2)))
        self.index = table.key_index

    def next(self, cur, src: str) -> Range | None:
        with self.lock:
            if self.done:
                return None
            lower = self._gt(self.last) if self.last is not None else None
            order = ",".join(self.cols)
            q = (_q(f"SELECT {','.join(self.literals)} FROM {src} FORCE INDEX "
                    f"({quote_ident(self.index)}) WHERE ") + (lower or b"1") +
                 _q(f" ORDER BY {order} LIMIT 1 OFFSET {self.rows_per_chunk - 1}"))
            cur.execute(q)
            row = cur.fetchone()
            if row is None:
                self.done = True
                return Range(lower or b"1")
            bound = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in row]
            upper = self._le(bound)
            self.last = bound
            return Range(b"(" + lower + b") AND (" + upper + b")" if lower else upper)

    def _gt(self, vals: list[bytes]) -> bytes:
        """(k1,k2,..) > (v1,v2,..) spelled out so the range optimizer uses the index."""
        ors = []
        for i in range(len(self.cols)):
            terms = [_q(self.cols[j]) + b"=" + vals[j] for j in range(i)]
            terms.append(_q(self.cols[i]) + b">" + vals[i])
            ors.append(b"(" + b" AND ".join(terms) + b")")
        return b" OR ".join(ors)

    def _le(self, vals: list[bytes]) -> bytes:
        ors = []
        for i in range(len(self.cols)):
            terms = [_q(self.cols[j]) + b"=" + vals[j] for j in range(i)]
            terms.append(_q(self.cols[i]) + b"<" + vals[i])
            ors.append(b"(" + b" AND ".join(terms) + b")")
        ors.append(b"(" + b" AND ".join(_q(c) + b"=" + v for c, v in zip(self.cols, vals)) + b")")
        return b" OR ".join(ors)

    def learned(self, rng: Range, rows: int, nbytes: int) -> None:
        if rows:
            with self.lock:
                per_row = nbytes / rows
                self.rows_per_chunk = max(16, min(int(self.target / per_row),
                                                  self.rows_per_chunk * 4))


def chunker_for(table: TableDef, target_bytes: int) -> Chunker:
    if not table.key:
        return WholeTable(table, target_bytes)
    if table.key_is_int:
        return IntRanges(table, target_bytes)
    by_name = {c.name: c for c in table.columns}
    return KeysetRanges(table, target_bytes, [by_name[k].value_sql() for k in table.key])
