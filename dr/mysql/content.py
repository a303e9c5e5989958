"""A table's content hash that does not depend on the server's version or storage format.

CHECKSUM TABLE hashes the server's binary row images. Those differ between MySQL and MariaDB and
between versions (10.6 → 10.11), and even between two servers of one version when temporal
columns are stored in the other format (`mysql56_temporal_format`): the same rows, another
checksum. So a restore onto another server version cannot compare CHECKSUM TABLE with the
manifest. It compares the content hash instead:

    content = Σ over the rows of CRC32(the row's text as the dump writes it)

where the row's text is `TableDef.row_sql()`: `(v1,v2,...)`, each value the server's own QUOTE()d
text (text as UTF-8, binary data as raw bytes, TIMESTAMP in UTC, FLOAT as DOUBLE, BIT as a
number; FORMAT.md, "R"). A sum does not depend on row order or on how rows are cut into chunks.

The two sides of the comparison use the two functions below:

* `chunk_sum(chunk)`: the expected side, in Python, over the rows of the `R` frames as they
  arrive. Those are the very bytes the source server formatted from its tables in the dump's
  snapshot (authenticated end to end), so no manifest field is needed and backups made before
  this existed are compared too.
* `table_hash(conn, db, table)`: the actual side, in SQL on the restoring server, over the rows
  of the loaded table: `SUM(CRC32(row_sql))`, the server formatting the values it stored.

They agree exactly when every loaded value reads back as the text it was loaded from, i.e. when
the restore lost, truncated or converted nothing. Like CHECKSUM TABLE, each row contributes 32
bits: a changed row goes unnoticed with odds of 2^-32.
"""

from __future__ import annotations

import re
import zlib

from dr.mysql.schema import Column, TableDef
from dr.mysql.sqltext import quote_ident

#: One row of a chunk: "(" then unquoted value text (NULL, numbers: never a quote or a
#: parenthesis) and quoted values ('...' where a quote or backslash inside is escaped with a
#: backslash), then ")". FORMAT.md, "R".
_ROW = re.compile(rb"\((?:[^')]*+'[^'\\]*+(?:\\.[^'\\]*+)*+')*+[^')]*+\)", re.DOTALL)


def chunk_sum(chunk) -> int:
    """Σ CRC32 over the rows of one chunk (bytes or a memoryview of `(..),(..)`)."""
    return sum(map(zlib.crc32, _ROW.findall(chunk)))


def row_hash_sql(row_sql: str) -> str:
    """One row's hash (an INT UNSIGNED) in SQL, from `TableDef.row_sql()`."""
    return f"CRC32({row_sql})"


def sum_sql(row_sql: str) -> str:
    """Σ of the rows' hashes in SQL, as exact decimal text (0 without rows)."""
    return f"CAST(IFNULL(SUM({row_hash_sql(row_sql)}),0) AS CHAR)"


def table_def(cur, db: str, table: str) -> TableDef:
    """The columns of `db`.`table` as the dump reads them (generated columns are not part of
    a row's text: they are rebuilt from the others)."""
    cur.execute("SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, IS_GENERATED, IS_NULLABLE "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                "ORDER BY ORDINAL_POSITION", (db, table))
    columns = [Column(name=name, data_type=dtype.lower(), charset=charset,
                      generated=(generated or "NEVER").upper() != "NEVER",
                      nullable=nullable != "NO")
               for name, dtype, charset, generated, nullable in cur.fetchall()]
    return TableDef(name=table, engine="", create="", columns=columns)


def table_hash(conn, db: str, table: str) -> int:
    """The content hash of `db`.`table` as it is now, computed by the server. `conn`'s session
    time zone must be +00:00 like the dump's (every dr connection's is)."""
    with conn.cursor() as cur:
        t = table_def(cur, db, table)
        cur.execute(f"SELECT {sum_sql(t.row_sql())} FROM {quote_ident(db)}.{quote_ident(table)}")
        value = cur.fetchone()[0]
    return int(value)
