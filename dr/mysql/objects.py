"""Creating, capturing and dropping views, triggers, routines and events in a database.

Objects are created with the creation context they had on the source (sql_mode, collation, the
client character set when the text allows it, the time zone of events) and without DEFINER, so
the restoring account becomes their definer (see FORMAT.md, "Definers"); `with_definer` puts
the original one back (`dr restore mysql --keep-definers`), and `definer_report` says which
objects that run with their definer's privileges changed hands.
"""

from __future__ import annotations

import re
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


def retarget_sequence_defaults(cur, old_db: str, new_db: str) -> list[str]:
    """After tables moved from `old_db` to `new_db`: point column DEFAULTs that call a sequence
    of `old_db` (`DEFAULT NEXTVAL(seq)`, which the server binds to the database the table was
    created in) at the same sequence in `new_db`. Returns the columns changed (`table.column`)."""
    cur.execute("SELECT TABLE_NAME, COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA=%s AND COLUMN_DEFAULT LIKE '%%(%%' "  # calls a function
                "ORDER BY TABLE_NAME, ORDINAL_POSITION", (new_db,))
    changed = []
    for table, column, default in cur.fetchall():
        tokens = tokenize(default)
        out, hit = [], False
        for i, tok in enumerate(tokens):
            if tok.kind in ("ident", "word") and tok.name() == old_db and \
                    i + 1 < len(tokens) and tokens[i + 1].text == ".":
                out.append(quote_ident(new_db))
                hit = True
            else:
                out.append(tok.text)
        if hit:
            cur.execute(f"ALTER TABLE {quote_ident(new_db)}.{quote_ident(table)} ALTER COLUMN "
                        f"{quote_ident(column)} SET DEFAULT ({''.join(out)})")
            changed.append(f"{table}.{column}")
    return changed


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


# -- definers ----------------------------------------------------------------------------------

_KIND_WORDS = {"VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "AGGREGATE", "PACKAGE"}


def _unquote(tok) -> str | None:
    if tok.kind == "string":
        body = tok.text[1:-1]
        return re.sub(r"\\(.)", r"\1", body.replace(tok.text[0] * 2, tok.text[0]))
    return tok.name()


def parse_account(text: str | None) -> tuple[str, str | None] | None:
    """(user, host) of a definer as the stream keeps it (`u`@`h`, 'u'@'h', u@h) or as
    information_schema shows it (u@h); (role, None) for a role; None if it is no account."""
    if not text:
        return None
    toks = [t for t in tokenize(text) if t.significant]
    if len(toks) == 1 and toks[0].kind == "word" and "@" not in text:
        return toks[0].text, None
    if len(toks) == 1 and toks[0].kind in ("ident", "string"):
        return _unquote(toks[0]), None
    if len(toks) == 3 and toks[1].text == "@" and toks[0].kind in ("ident", "string", "word") \
            and toks[2].kind in ("ident", "string", "word"):
        return _unquote(toks[0]), _unquote(toks[2])
    user, at, host = text.rpartition("@")  # information_schema: plain user@host
    return (user, host) if at and user else None


def account_sql(account: tuple[str, str | None]) -> str:
    user, host = account
    return quote_ident(user) if host is None else f"{quote_ident(user)}@{quote_ident(host)}"


def account_text(account: tuple[str, str | None]) -> str:
    user, host = account
    return user if host is None else f"{user}@{host}"


def _same(a: tuple[str, str | None] | None, b: tuple[str, str | None] | None) -> bool:
    if a is None or b is None:
        return a == b
    return a[0] == b[0] and (a[1] or "").lower() == (b[1] or "").lower()


def with_definer(obj: ObjectDef) -> ObjectDef:
    """`obj` created with its original definer (`obj.definer`) instead of the restoring account.
    The clause goes where the server expects it: after CREATE [OR REPLACE] [ALGORITHM=...],
    before SQL SECURITY and the object's kind. Unchanged if it has a DEFINER or none is known."""
    account = parse_account(obj.definer)
    if account is None:
        return obj
    tokens = tokenize(obj.create, obj.sql_mode)
    seen_create = False
    for i, tok in enumerate(tokens):
        if not tok.significant or tok.kind in ("xopen", "xclose"):
            continue
        word = tok.text.upper() if tok.kind == "word" else ""
        if not seen_create:
            if word != "CREATE":
                return obj
            seen_create = True
            continue
        if word == "DEFINER":
            return obj
        if word == "SQL" or word in _KIND_WORDS:
            text = ("".join(t.text for t in tokens[:i]) + f"DEFINER={account_sql(account)} " +
                    "".join(t.text for t in tokens[i:]))
            return ObjectDef(**{**obj.to_dict(), "create": text})
    return obj


def current_account(cur) -> tuple[str, str | None] | None:
    cur.execute("SELECT CURRENT_USER()")
    return parse_account(cur.fetchone()[0])


def _security(cur, db: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(kind, name): (SQL SECURITY, definer)} of `db`'s objects as the server has them.
    Triggers and events always run with their definer's privileges."""
    found = {}
    for sql in ("SELECT 'VIEW', TABLE_NAME, SECURITY_TYPE, DEFINER FROM information_schema.VIEWS "
                "WHERE TABLE_SCHEMA=%s",
                "SELECT ROUTINE_TYPE, ROUTINE_NAME, SECURITY_TYPE, DEFINER FROM "
                "information_schema.ROUTINES WHERE ROUTINE_SCHEMA=%s",
                "SELECT 'TRIGGER', TRIGGER_NAME, 'DEFINER', DEFINER FROM "
                "information_schema.TRIGGERS WHERE TRIGGER_SCHEMA=%s",
                "SELECT 'EVENT', EVENT_NAME, 'DEFINER', DEFINER FROM information_schema.EVENTS "
                "WHERE EVENT_SCHEMA=%s"):
        cur.execute(sql, (db,))
        for kind, name, security, definer in cur.fetchall():
            found[(kind.upper(), name)] = ((security or "DEFINER").upper(), definer or "")
    return found


def _account_exists(cur, account: tuple[str, str | None]) -> bool | None:
    """Whether the account (or role) exists on the server; None if it cannot be told."""
    user, host = account
    try:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User=%s AND Host=%s",
                    (user, host if host is not None else ""))
        return bool(cur.fetchone()[0])
    except pymysql.MySQLError:
        return None  # no SELECT on mysql.user: the server will say so when the object runs


def definer_report(cur, db: str, objects: list[ObjectDef]) -> list[str]:
    """Warnings about the definers of `objects` as they now are in `db`: objects that run with
    their definer's privileges (SQL SECURITY DEFINER views and routines, triggers, events) and
    got another definer than on the source, and definers that do not exist on this server."""
    actual = _security(cur, db)
    changed: dict[tuple[str, str], list[str]] = {}
    missing: dict[str, list[str]] = {}
    for obj in objects:
        found = actual.get((obj.kind, obj.name))
        if found is None:
            continue
        security, now = found
        if security != "DEFINER":
            continue
        label = f"{obj.kind.lower()} {obj.name}"
        original, current = parse_account(obj.definer), parse_account(now)
        if original is not None and not _same(original, current):
            changed.setdefault((account_text(original), now), []).append(label)
        elif current is not None and current[1] is not None and \
                _account_exists(cur, current) is False:
            missing.setdefault(account_text(current), []).append(label)
    out = []
    for (original, now), labels in changed.items():
        out.append(f"{db}: {len(labels)} object{'s' if len(labels) != 1 else ''} that run with "
                   f"their definer's privileges changed definer from {original} to {now}, so "
                   f"they now run as {now}: {', '.join(labels)} (dr restore mysql "
                   "--keep-definers keeps the original definers)")
    for account, labels in missing.items():
        out.append(f"{db}: the definer {account} does not exist on this server, so "
                   f"{', '.join(labels)} fail{'s' if len(labels) == 1 else ''} when used until "
                   f"it is created (CREATE USER)")
    return out

