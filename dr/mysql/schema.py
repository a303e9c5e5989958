"""Read one database's definitions from the server: tables (columns, keys), views, triggers,
routines, events, each made portable (no database qualifier, no DEFINER; see sqltext)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from dr.mysql.sqltext import order_views, quote_ident, remove_definer, strip_qualifier

#: Engines whose tables are read from the transaction's snapshot; others need a read lock.
TRANSACTIONAL_ENGINES = {"innodb", "xtradb", "rocksdb", "tokudb"}
INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
                "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                "multipolygon", "geometrycollection"}
NUMERIC_TYPES = INT_TYPES | {"decimal", "numeric", "double", "real", "double precision"}
UTF8_CHARSETS = {"utf8mb4", "utf8mb3", "utf8"}
#: Character sets whose every byte string converts to UTF-8 and back unchanged (MariaDB's latin1
#: is cp1252 with the five undefined bytes mapped to C1 controls). Text in any other non-UTF-8
#: set travels as hex of its bytes: cp1250/cp1251 bytes without a Unicode mapping, ascii columns
#: holding bytes above 0x7f, and invalid multi-byte sequences would come back as '?'.
LOSSLESS_TO_UTF8 = UTF8_CHARSETS | {"latin1"}
INDEX_TYPES = {"enum", "set"}  # travel as their index (ENUM) or bitmap (SET)
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
              "json"}
TEMPORAL_TYPES = {"date", "time", "datetime", "timestamp", "year"}


@dataclass
class Column:
    name: str
    data_type: str
    charset: str | None
    generated: bool = False
    nullable: bool = True

    @property
    def as_index(self) -> bool:
        """ENUM and SET travel as numbers: the ENUM's index (0 for its error value '', which
        text cannot tell from a member '') and the SET's bitmap."""
        return self.data_type in INDEX_TYPES

    @property
    def as_hex(self) -> bool:
        """Text in a character set that does not survive UTF-8 travels as 0x<hex of its bytes>."""
        return bool(self.charset) and self.charset not in LOSSLESS_TO_UTF8 and \
            self.data_type not in INDEX_TYPES and self.data_type not in BINARY_TYPES

    def value_sql(self) -> str:
        """A server-side expression giving this column's value as an SQL literal (bytes):
        NULL, a number, 0x<hex> or '...' (QUOTE-escaped; text as UTF-8, binary data as raw
        bytes). The same text is a VALUES tuple element and a LOAD DATA field (FORMAT.md)."""
        col = quote_ident(self.name)
        t = self.data_type
        if t in NUMERIC_TYPES:
            expr = col
        elif t == "float":  # FLOAT prints 6 digits; as DOUBLE it round-trips exactly
            expr = f"CAST({col} AS DOUBLE)"
        elif t == "bit":
            expr = f"CAST({col} AS UNSIGNED)"
        elif self.as_index:
            expr = f"({col}+0)"
        elif self.as_hex:  # '' stays '' (0x alone is no literal)
            return (f"IF({col} IS NULL,'NULL',IF(LENGTH({col})=0,'''''',"
                    f"CONCAT('0x',HEX({col}))))")
        elif t in BINARY_TYPES:  # raw bytes in quotes: LOAD DATA takes no _binary introducer
            return f"QUOTE({col})"  # QUOTE(NULL) is the word NULL
        elif t in TEMPORAL_TYPES:
            return f"QUOTE(CAST({col} AS BINARY))"
        elif t in TEXT_TYPES or self.charset:
            # as UTF-8 bytes: QUOTE on a binary string is a byte loop, ~20% less server CPU
            # than on utf8mb4 (which decodes each character); the escapes are ASCII, so
            # escaping UTF-8 byte by byte is exact
            if self.charset and self.charset not in UTF8_CHARSETS:
                col = f"CONVERT({col} USING utf8mb4)"
            return f"QUOTE(CAST({col} AS BINARY))"
        else:  # INET6, UUID and other types: their text form
            return f"QUOTE({col})"
        return f"IFNULL({expr},'NULL')" if self.nullable else expr


@dataclass
class TableDef:
    name: str
    engine: str
    create: str
    columns: list[Column]
    key: list[str] = field(default_factory=list)  # PRIMARY or a NOT NULL UNIQUE key; [] if none
    key_index: str | None = None
    key_is_int: bool = False
    rows_estimate: int = 0
    avg_row_length: int = 0
    kind: str = "BASE TABLE"
    sequence: dict[str, int] | None = None  # a SEQUENCE's row (every option and its state)

    @property
    def transactional(self) -> bool:
        return self.engine.lower() in TRANSACTIONAL_ENGINES

    @property
    def data_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.generated]

    def row_sql(self) -> str:
        """One row as `(v1,v2,...)`, or a NUL byte if it exceeds max_allowed_packet. (Text
        values are UTF-8, binary ones raw: read it as bytes, never decode it.)"""
        parts = ",',',".join(c.value_sql() for c in self.data_columns)
        return f"IFNULL(CONCAT(_binary'(',{parts},')'),0x00)"


@dataclass
class ObjectDef:
    """A view, trigger, routine or event as it will be created in the target database."""

    kind: str  # VIEW TRIGGER PROCEDURE FUNCTION EVENT
    name: str
    create: str
    sql_mode: str = ""
    character_set_client: str = "utf8mb4"
    collation_connection: str = "utf8mb4_general_ci"
    time_zone: str | None = None  # events
    table: str | None = None  # triggers
    definer: str | None = None  # as on the source (restores drop it unless keep_definers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObjectDef:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class DatabaseDef:
    name: str
    charset: str
    collation: str
    tables: list[TableDef]
    views: list[ObjectDef]
    triggers: list[ObjectDef]
    routines: list[ObjectDef]
    events: list[ObjectDef]

    @property
    def objects(self) -> list[ObjectDef]:
        """In creation order: routines (views may call functions), views, triggers, events."""
        return self.routines + self.views + self.triggers + self.events


def _rows(conn, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def show(conn, sql: str) -> list[dict[str, Any]]:
    """A SHOW statement's rows as dicts; text is decoded with surrogateescape, so bytes that are
    not UTF-8 (a BINARY column's default) survive the round trip (encode with surrogateescape)."""
    conn.use_unicode = False
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            names = [d[0] for d in cur.description]
            out = []
            for row in cur.fetchall():
                out.append({n: (v.decode("utf-8", "surrogateescape") if isinstance(v, bytes)
                                else v) for n, v in zip(names, row)})
            return out
    finally:
        conn.use_unicode = True


def list_tables(conn, databases: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """{db: {table: (table_type, engine)}} for base tables (and sequences) of `databases`."""
    marks = ",".join(["%s"] * len(databases))
    found = {db: {} for db in databases}
    for db, name, kind, engine in _rows(
            conn, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE,'') FROM "
                  f"information_schema.TABLES WHERE TABLE_SCHEMA IN ({marks}) "
                  "AND TABLE_TYPE <> 'VIEW'", databases):
        found[db][name] = (kind, engine)
    return found


def existing_databases(conn, databases: list[str]) -> set[str]:
    marks = ",".join(["%s"] * len(databases))
    return {r[0] for r in _rows(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                      f"WHERE SCHEMA_NAME IN ({marks})", databases)}


def read_database(conn, db: str) -> DatabaseDef:
    """Everything needed to rebuild `db`, read on `conn` (inside the dump's snapshot)."""
    rows = _rows(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                       "information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
    if not rows:
        raise LookupError(db)
    charset, collation = rows[0]
    tables = _read_tables(conn, db)
    view_names = [r[0] for r in _rows(conn, "SELECT TABLE_NAME FROM information_schema.VIEWS "
                                            "WHERE TABLE_SCHEMA=%s ORDER BY TABLE_NAME", (db,))]
    routine_names = [r[0] for r in _rows(conn, "SELECT ROUTINE_NAME FROM "
                                               "information_schema.ROUTINES WHERE "
                                               "ROUTINE_SCHEMA=%s", (db,))]
    names = {t.name for t in tables} | set(view_names)
    same_name = next((t for t in tables if t.name == db), None)
    ctx = _Names(ambiguous=db in names, objects=names | set(routine_names),
                 columns={c.name for c in same_name.columns} if same_name else set())
    for t in tables:
        t.create = ctx.strip(t.create, db)
    return DatabaseDef(
        name=db, charset=charset, collation=collation, tables=tables,
        views=_read_views(conn, db, view_names, ctx),
        triggers=_read_triggers(conn, db, ctx),
        routines=_read_routines(conn, db, ctx),
        events=_read_events(conn, db, ctx),
    )


@dataclass
class _Names:
    """What strip_qualifier needs to know about a database whose name is also a table's."""

    ambiguous: bool
    objects: set[str]
    columns: set[str]

    def strip(self, text: str, db: str, sql_mode: str = "") -> str:
        return strip_qualifier(text, db, sql_mode=sql_mode, ambiguous=self.ambiguous,
                               objects=self.objects, columns=self.columns)


def _read_tables(conn, db: str) -> list[TableDef]:
    info = _rows(conn, "SELECT TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE,''), IFNULL(TABLE_ROWS,0), "
                       "IFNULL(AVG_ROW_LENGTH,0) FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA=%s AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME", (db,))
    columns: dict[str, list[Column]] = {}
    for table, name, dtype, charset, generated, nullable in _rows(
            conn, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME, IS_GENERATED, "
                  "IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s "
                  "ORDER BY TABLE_NAME, ORDINAL_POSITION", (db,)):
        columns.setdefault(table, []).append(
            Column(name=name, data_type=dtype.lower(), charset=charset,
                   generated=(generated or "NEVER").upper() != "NEVER",
                   nullable=nullable != "NO"))
    indexes: dict[tuple[str, str], list[tuple]] = {}
    for table, index, column, non_unique, nullable, sub_part in _rows(
            conn, "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, NON_UNIQUE, NULLABLE, SUB_PART "
                  "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
                  "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX", (db,)):
        indexes.setdefault((table, index), []).append((column, int(non_unique), nullable,
                                                       sub_part))
    tables = []
    for name, kind, engine, rows, avg in info:
        src = f"{quote_ident(db)}.{quote_ident(name)}"
        what = "SEQUENCE" if kind == "SEQUENCE" else "TABLE"
        create = show(conn, f"SHOW CREATE {what} {src}")[0]
        text = create.get("Create Table") or create.get("Create Sequence") or ""
        t = TableDef(name=name, engine=engine, create=text, columns=columns.get(name, []),
                     rows_estimate=int(rows), avg_row_length=int(avg), kind=kind)
        if kind == "SEQUENCE":
            t.sequence = read_sequence(conn, src)
        _choose_key(t, indexes)
        tables.append(t)
    return tables


# -- sequences ---------------------------------------------------------------------------------
#
# A SEQUENCE travels as `SHOW CREATE SEQUENCE` (every option: START, MINVALUE, MAXVALUE,
# INCREMENT, CACHE/NOCACHE, CYCLE/NOCYCLE, the engine and comment) plus its one row, read in the
# dump's snapshot: next_not_cached_value, minimum_value, maximum_value, start_value, increment,
# cache_size, cycle_option, cycle_count. A restore creates it, writes that row back (INSERT into
# a sequence sets its whole state, the round included) and reads it back to compare.

def read_sequence(conn, src: str) -> dict[str, int]:
    """A sequence's row as {column: value} (`src` is its quoted, qualified name)."""
    with conn.cursor() as cur:
        return sequence_row(cur, src)


def sequence_row(cur, src: str) -> dict[str, int]:
    cur.execute(f"SELECT * FROM {src}")
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"sequence {src} has no row")
    return {n: int(v) for n, v in zip(names, row)}


def write_sequence(cur, src: str, state: dict[str, int]) -> None:
    """Set a (new) sequence's whole state: its options, next value and round."""
    names = list(state)
    cur.execute(f"INSERT INTO {src} ({','.join(quote_ident(n) for n in names)}) VALUES "
                f"({','.join(['%s'] * len(names))})", [int(state[n]) for n in names])


def sequence_problems(cur, label: str, src: str, expected: dict[str, int]) -> list[str]:
    """How the sequence at `src` differs from `expected` (its row in the backup), in words."""
    actual = sequence_row(cur, src)
    return [f"{label}: sequence {name} is {actual.get(name)}, the backup has {value}"
            for name, value in expected.items() if actual.get(name) != int(value)]


def _choose_key(t: TableDef, indexes: dict[tuple[str, str], list[tuple]]) -> None:
    """The key to chunk by: PRIMARY, else the shortest UNIQUE index of NOT NULL whole columns."""
    by_name = {c.name: c for c in t.columns}
    candidates = []
    for (table, index), cols in indexes.items():
        if table != t.name:
            continue
        if any(non_unique or nullable == "YES" or sub_part is not None
               or by_name.get(col) is None or by_name[col].generated
               for col, non_unique, nullable, sub_part in cols):
            continue
        candidates.append((index != "PRIMARY", len(cols), index, [c[0] for c in cols]))
    if candidates:
        _, _, t.key_index, t.key = min(candidates)
        t.key_is_int = len(t.key) == 1 and by_name[t.key[0]].data_type in INT_TYPES


def _read_views(conn, db: str, names: list[str], ctx: _Names) -> list[ObjectDef]:
    views = {}
    for name in names:
        row = show(conn, f"SHOW CREATE VIEW {quote_ident(db)}.{quote_ident(name)}")[0]
        text = row["Create View"]
        views[name] = ObjectDef(
            kind="VIEW", name=name, create=ctx.strip(remove_definer(text), db),
            character_set_client=row.get("character_set_client") or "utf8mb4",
            collation_connection=row.get("collation_connection") or "utf8mb4_general_ci",
            definer=_definer_of(text))
    return [views[n] for n in order_views({n: v.create for n, v in views.items()})]


def _definer_of(text: str) -> str | None:
    from dr.mysql.sqltext import tokenize

    toks = [t for t in tokenize(text) if t.significant]
    for i, tok in enumerate(toks[:-2]):
        if tok.kind == "word" and tok.text.upper() == "DEFINER" and toks[i + 1].text == "=":
            return "".join(t.text for t in toks[i + 2:i + 5]
                           if t.text == "@" or t.kind in ("ident", "string", "word"))
    return None


def _read_triggers(conn, db: str, ctx: _Names) -> list[ObjectDef]:
    out = []
    for name, table in _rows(
            conn, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                  "WHERE TRIGGER_SCHEMA=%s ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, "
                  "EVENT_MANIPULATION, ACTION_ORDER", (db,)):
        row = show(conn, f"SHOW CREATE TRIGGER {quote_ident(db)}.{quote_ident(name)}")[0]
        text = row["SQL Original Statement"]
        mode = row.get("sql_mode") or ""
        out.append(ObjectDef(
            kind="TRIGGER", name=name, table=table, sql_mode=mode,
            create=ctx.strip(remove_definer(text, sql_mode=mode), db, mode),
            character_set_client=row.get("character_set_client") or "utf8mb4",
            collation_connection=row.get("collation_connection") or "utf8mb4_general_ci",
            definer=_definer_of(text)))
    return out


def _read_routines(conn, db: str, ctx: _Names) -> list[ObjectDef]:
    out = []
    for name, kind in _rows(
            conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                  "WHERE ROUTINE_SCHEMA=%s AND ROUTINE_TYPE IN ('PROCEDURE','FUNCTION') "
                  "ORDER BY ROUTINE_TYPE, ROUTINE_NAME", (db,)):
        row = show(conn, f"SHOW CREATE {kind} {quote_ident(db)}.{quote_ident(name)}")[0]
        text = row.get(f"Create {kind.capitalize()}")
        if text is None:
            raise PermissionError(f"{kind.lower()} {db}.{name}")
        mode = row.get("sql_mode") or ""
        out.append(ObjectDef(
            kind=kind, name=name, sql_mode=mode,
            create=ctx.strip(remove_definer(text, sql_mode=mode), db, mode),
            character_set_client=row.get("character_set_client") or "utf8mb4",
            collation_connection=row.get("collation_connection") or "utf8mb4_general_ci",
            definer=_definer_of(text)))
    return out


def _read_events(conn, db: str, ctx: _Names) -> list[ObjectDef]:
    out = []
    for (name,) in _rows(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS "
                               "WHERE EVENT_SCHEMA=%s ORDER BY EVENT_NAME", (db,)):
        row = show(conn, f"SHOW CREATE EVENT {quote_ident(db)}.{quote_ident(name)}")[0]
        text = row["Create Event"]
        mode = row.get("sql_mode") or ""
        out.append(ObjectDef(
            kind="EVENT", name=name, sql_mode=mode, time_zone=row.get("time_zone"),
            create=ctx.strip(remove_definer(text, sql_mode=mode), db, mode),
            character_set_client=row.get("character_set_client") or "utf8mb4",
            collation_connection=row.get("collation_connection") or "utf8mb4_general_ci",
            definer=_definer_of(text)))
    return out


def table_to_dict(t: TableDef, table_id: int) -> dict[str, Any]:
    """How a table travels in a SCHEMA frame."""
    return {"id": table_id, "name": t.name, "kind": t.kind, "engine": t.engine,
            "create": t.create, "columns": [c.name for c in t.data_columns],
            "rows_estimate": t.rows_estimate,
            "bit_columns": [c.name for c in t.data_columns if c.data_type == "bit"],
            "index_columns": [c.name for c in t.data_columns if c.as_index],
            "hex_columns": [c.name for c in t.data_columns if c.as_hex],
            "sequence": t.sequence}


def is_access_denied(e: BaseException) -> bool:
    return isinstance(e, pymysql.MySQLError) and bool(e.args) and e.args[0] in (
        1044, 1045, 1142, 1143, 1227, 1370)
