"""Creating, capturing and dropping views, triggers, routines and events in a database.

Objects are created with the creation context they had on the source (sql_mode, collation, the
client character set when the text allows it, the time zone of events) and without DEFINER, so
the restoring account becomes their definer (see FORMAT.md, "Definers").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pymysql

from dr.mysql.schema import ObjectDef, show
from dr.mysql.sqltext import quote_ident, remove_definer, tokenize

_CLIENT_OK = {"utf8mb4", "utf8mb3", "utf8"}
_NO_CLIENT = {"ucs2", "utf16", "utf16le", "utf32"}  # cannot be a client character set
_MISSING_TABLE = {1146, 1356}  # a view on a view not created yet


@dataclass
class Inventory:
    """What a database holds."""

    tables: list[str] = field(default_factory=list)  # base tables and sequences
    views: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    routines: list[tuple[str, str]] = field(default_factory=list)  # (PROCEDURE|FUNCTION, name)
    events: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.tables or self.views or self.triggers or self.routines or self.events)

    def describe(self) -> str:
        parts = [(len(self.tables), "table"), (len(self.views), "view"),
                 (len(self.triggers), "trigger"), (len(self.routines), "routine"),
                 (len(self.events), "event")]
        return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts if n)


def database_exists(cur, db: str) -> bool:
    cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (db,))
    return cur.fetchone() is not None


def inventory(cur, db: str) -> Inventory:
    inv = Inventory()
    cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA=%s ORDER BY TABLE_NAME", (db,))
    for name, kind in cur.fetchall():
        (inv.views if kind == "VIEW" else inv.tables).append(name)
    cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s "
                "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
                (db,))
    inv.triggers = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA=%s AND ROUTINE_TYPE IN ('PROCEDURE','FUNCTION')", (db,))
    inv.routines = [(r[0], r[1]) for r in cur.fetchall()]
    cur.execute("SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA=%s", (db,))
    inv.events = [r[0] for r in cur.fetchall()]
    return inv


def capture(conn, db: str, inv: Inventory) -> list[ObjectDef]:
    """The definitions of `db`'s objects as they are now, in an order they can be created in
    (routines, views, triggers, events), to put them back on a rollback: the swap journals
    them before it drops anything (swap.py)."""
    out: list[ObjectDef] = []
    q = quote_ident(db)
    for kind, name in inv.routines:
        row = show(conn, f"SHOW CREATE {kind} {q}.{quote_ident(name)}")[0]
        out.append(_captured(kind, name, row, row.get(f"Create {kind.capitalize()}") or ""))
    for name in inv.views:
        row = show(conn, f"SHOW CREATE VIEW {q}.{quote_ident(name)}")[0]
        out.append(_captured("VIEW", name, row, row["Create View"]))
    for name in inv.triggers:
        row = show(conn, f"SHOW CREATE TRIGGER {q}.{quote_ident(name)}")[0]
        out.append(_captured("TRIGGER", name, row, row["SQL Original Statement"]))
    for name in inv.events:
        row = show(conn, f"SHOW CREATE EVENT {q}.{quote_ident(name)}")[0]
        out.append(_captured("EVENT", name, row, row["Create Event"]))
    return out


def _captured(kind: str, name: str, row: dict, text: str) -> ObjectDef:
    # Kept with its DEFINER: a rollback puts back exactly what was there.
    return ObjectDef(kind=kind, name=name, create=text, sql_mode=row.get("sql_mode") or "",
                     character_set_client=row.get("character_set_client") or "utf8mb4",
                     collation_connection=row.get("collation_connection") or "utf8mb4_general_ci",
                     time_zone=row.get("time_zone"))


def drop(cur, db: str, kind: str, name: str) -> None:
    cur.execute(f"DROP {kind} IF EXISTS {quote_ident(db)}.{quote_ident(name)}")


def qualified_name(text: str, kind: str, sql_mode: str = "") -> str | None:
    """The database a CREATE statement puts its object in, if it names one (`db`.`name`)."""
    toks = [t for t in tokenize(text, sql_mode) if t.significant and t.kind != "xopen"]
    for i, tok in enumerate(toks):
        if tok.kind == "word" and tok.text.upper() == kind:
            j = i + 1
            if j + 2 < len(toks) and [t.text.upper() for t in toks[j:j + 3]] == \
                    ["IF", "NOT", "EXISTS"]:
                j += 3
            if j + 1 < len(toks) and toks[j + 1].text == ".":
                return toks[j].name()
            return None
    return None


def create(conn, obj: ObjectDef, database: str) -> None:
    """Run `obj.create` in `database` (the connection's current one) with its creation
    context. Refuses a statement that would create its object in another database."""
    text = obj.create
    other = qualified_name(text, obj.kind, obj.sql_mode)
    if other is not None and other != database:
        raise pymysql.err.ProgrammingError(
            0, f"the definition names database {other!r}: refusing to create it there")
    client = obj.character_set_client
    if client in _NO_CLIENT or (client not in _CLIENT_OK and not text.isascii()):
        client = "utf8mb4"  # the text travels as UTF-8; only an ASCII text may claim another
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode=%s, SESSION character_set_client=%s, "
                    "SESSION collation_connection=%s",
                    (obj.sql_mode, client, obj.collation_connection))
        if obj.time_zone:
            cur.execute("SET SESSION time_zone=%s", (obj.time_zone,))
        try:
            cur.execute(text.encode("utf-8", "surrogateescape"))
        finally:
            cur.execute("SET NAMES utf8mb4")
            cur.execute("SET SESSION sql_mode='', SESSION time_zone='+00:00'")


def create_all(conn, database: str, objects: list[ObjectDef], created: list[tuple[str, str]],
               *, strip_definers: bool = False, on_created=None) -> None:
    """Create `objects` in order; views whose base views are not there yet are retried after
    the others. Appends (kind, name) of each object created to `created`, and calls
    `on_created(obj)` after each."""
    pending = list(objects)
    while pending:
        retry: list[ObjectDef] = []
        last_error: Exception | None = None
        for obj in pending:
            if strip_definers:
                obj = ObjectDef(**{**obj.to_dict(), "create": remove_definer(obj.create)})
            try:
                create(conn, obj, database)
                created.append((obj.kind, obj.name))
                if on_created is not None:
                    on_created(obj)
            except pymysql.MySQLError as e:
                if obj.kind == "VIEW" and e.args and e.args[0] in _MISSING_TABLE:
                    retry.append(obj)
                    last_error = e
                    continue
                raise ObjectCreateError(obj, e) from None
        if len(retry) == len(pending):
            raise ObjectCreateError(retry[0], last_error)
        pending = retry


class ObjectCreateError(Exception):
    def __init__(self, obj: ObjectDef, e: Exception | None):
        detail = e.args[1] if e is not None and len(getattr(e, "args", ())) > 1 else str(e)
        super().__init__(f"cannot create {obj.kind.lower()} {obj.name}: {detail}")
        self.obj = obj
