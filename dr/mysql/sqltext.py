"""SQL text surgery for object definitions, done on tokens (never on raw text).

Definitions read from the server (views, triggers, routines, events) name their own database
(`sakila`.`film`) and their DEFINER. To load them into another database on another server, dr
removes both: `strip_qualifier` drops the dumped database's name where it qualifies an object,
`remove_definer` drops `DEFINER=user@host` so the restoring account becomes the definer. String
literals, comments and other databases' names are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

# One token: comment | executable-comment opener | string | quoted identifier | word | other char.
_WORD = r"[0-9A-Za-z_$\u0080-\U0010ffff]+"


@dataclass(frozen=True)
class Token:
    kind: str  # ws comment xopen xclose string ident (`x`) dquoted ("x", ANSI_QUOTES) word punct
    text: str

    @property
    def significant(self) -> bool:
        return self.kind not in ("ws", "comment")

    def name(self) -> str | None:
        """The identifier this token spells (unquoted), or None if it is no identifier."""
        if self.kind == "ident":
            return self.text[1:-1].replace("``", "`")
        if self.kind == "word":
            return self.text
        return None


def quote_ident(name: str) -> str:
    """`name` as a backquoted MySQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def _string_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the string literal starting at sql[i] (a quote character)."""
    n = len(sql)
    j = i + 1
    while j < n:
        c = sql[j]
        if c == "\\" and backslash:
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def tokenize(sql: str, sql_mode: str = "") -> list[Token]:
    """Split MySQL SQL into tokens; concatenating their texts gives `sql` back exactly."""
    modes = {m.strip().upper() for m in sql_mode.split(",")}
    ansi_quotes = "ANSI_QUOTES" in modes or "ANSI" in modes
    backslash = "NO_BACKSLASH_ESCAPES" not in modes
    tokens: list[Token] = []
    i, n = 0, len(sql)
    in_xcomment = False
    word = re.compile(_WORD)
    space = re.compile(r"\s+")
    while i < n:
        c = sql[i]
        if c.isspace():
            m = space.match(sql, i)
            tokens.append(Token("ws", m.group()))
            i = m.end()
        elif sql.startswith("/*!", i) or sql.startswith("/*M!", i):
            m = re.compile(r"/\*M?!\d*").match(sql, i)
            tokens.append(Token("xopen", m.group()))
            in_xcomment = True
            i = m.end()
        elif sql.startswith("*/", i) and in_xcomment:
            tokens.append(Token("xclose", "*/"))
            in_xcomment = False
            i += 2
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            tokens.append(Token("comment", sql[i:end]))
            i = end
        elif c == "#" or (sql.startswith("--", i) and (i + 2 >= n or sql[i + 2].isspace())):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            tokens.append(Token("comment", sql[i:end]))
            i = end
        elif c == "'" or (c == '"' and not ansi_quotes):
            end = _string_end(sql, i, c, backslash)
            tokens.append(Token("string", sql[i:end]))
            i = end
        elif c == "`" or (c == '"' and ansi_quotes):
            end = _string_end(sql, i, c, False)
            tokens.append(Token("ident" if c == "`" else "dquoted", sql[i:end]))
            i = end
        else:
            m = word.match(sql, i)
            if m:
                tokens.append(Token("word", m.group()))
                i = m.end()
            else:
                tokens.append(Token("punct", c))
                i += 1
    return tokens


def _ident_name(tok: Token) -> str | None:
    if tok.kind == "dquoted":
        return tok.text[1:-1].replace('""', '"')
    return tok.name()


def _next_sig(tokens: list[Token], i: int) -> int:
    """Index of the next significant token after i, or len(tokens)."""
    j = i + 1
    while j < len(tokens) and not tokens[j].significant:
        j += 1
    return j


def _prev_sig(tokens: list[Token], i: int) -> int:
    j = i - 1
    while j >= 0 and not tokens[j].significant:
        j -= 1
    return j


_TABLE_CONTEXT = {"FROM", "JOIN", "INTO", "UPDATE", "TABLE", "CALL", "ON", "EXISTS", "VIEW",
                  "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"}


def strip_qualifier(sql: str, database: str, *, sql_mode: str = "", ambiguous: bool = False,
                    objects: Collection[str] = (), columns: Collection[str] = ()) -> str:
    """Remove `database.` where it qualifies an object: `db`.`t` → `t`, db.t.c → t.c.

    An identifier that is itself the second or third part of a name (`x`.`db`) is left alone.
    When `ambiguous` (a table or view has the database's name, so `db`.`c` could be
    table.column) a two-part name is rewritten only after FROM/JOIN/INTO/UPDATE/TABLE/CALL/
    VIEW/TRIGGER/PROCEDURE/FUNCTION/EVENT, or when its second part is one of `objects` (the
    database's tables, views, routines) and not one of `columns` (of the table named like the
    database). Three-part names are always rewritten.
    """
    tokens = tokenize(sql, sql_mode)
    folded_objects = {o.casefold() for o in objects}
    folded_columns = {c.casefold() for c in columns}
    out: list[str] = []
    skip_until = -1
    for i, tok in enumerate(tokens):
        if i < skip_until:
            continue
        if tok.kind in ("ident", "word", "dquoted") and _ident_name(tok) == database:
            dot = i + 1  # no whitespace allowed between parts here: the server never writes it
            if dot < len(tokens) and tokens[dot].text == "." and dot + 1 < len(tokens) and \
                    tokens[dot + 1].kind in ("ident", "word", "dquoted"):
                prev = _prev_sig(tokens, i)
                if prev >= 0 and tokens[prev].text == ".":
                    out.append(tok.text)
                    continue
                if ambiguous:
                    after = dot + 2
                    three_part = after < len(tokens) and tokens[after].text == "."
                    context = prev >= 0 and tokens[prev].text.upper() in _TABLE_CONTEXT
                    second = (_ident_name(tokens[dot + 1]) or "").casefold()
                    known = second in folded_objects and second not in folded_columns
                    if not (three_part or context or known):
                        out.append(tok.text)
                        continue
                skip_until = dot + 1
                continue
        out.append(tok.text)
    return "".join(out)


_OBJECT_KEYWORDS = {"VIEW", "PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE"}


def remove_definer(sql: str, *, sql_mode: str = "") -> str:
    """Drop a `DEFINER = user[@host]` clause that comes before VIEW/PROCEDURE/FUNCTION/...;
    the object is then created with the restoring account as its definer."""
    tokens = tokenize(sql, sql_mode)
    for i, tok in enumerate(tokens):
        word = tok.text.upper() if tok.kind == "word" else ""
        if word in _OBJECT_KEYWORDS:
            return sql
        if word != "DEFINER":
            continue
        j = _next_sig(tokens, i)
        if j >= len(tokens) or tokens[j].text != "=":
            return sql
        j = _next_sig(tokens, j)  # the user
        if j >= len(tokens):
            return sql
        end = j
        if tokens[j].kind == "word" and tokens[j].text.upper() in ("CURRENT_USER", "CURRENT_ROLE"):
            k = _next_sig(tokens, j)
            if k + 1 < len(tokens) and tokens[k].text == "(" and \
                    tokens[_next_sig(tokens, k)].text == ")":
                end = _next_sig(tokens, k)
        else:
            k = _next_sig(tokens, j)
            if k < len(tokens) and tokens[k].text == "@":
                end = _next_sig(tokens, k)
            elif k < len(tokens) and tokens[k].kind == "word" and tokens[k].text.startswith("@"):
                end = k
        start = i
        if start > 0 and tokens[start - 1].kind == "ws":
            start -= 1  # take one space with it: "CREATE DEFINER=x VIEW" → "CREATE VIEW"
        return "".join(t.text for t in tokens[:start]) + "".join(t.text for t in tokens[end + 1:])
    return sql


def identifiers(sql: str, sql_mode: str = "") -> set[str]:
    """Every identifier-like token in `sql` (for dependency ordering of views)."""
    return {name for tok in tokenize(sql, sql_mode)
            if tok.kind in ("ident", "word", "dquoted") and (name := _ident_name(tok))}


def order_views(definitions: dict[str, str]) -> list[str]:
    """View names so that a view comes after the views it (probably) reads from.

    Dependencies are over-approximated from identifier tokens; cycles that this creates are
    broken in name order (a restore retries views whose dependencies are not there yet).
    """
    names = sorted(definitions)
    deps = {v: {w for w in identifiers(definitions[v]) if w in definitions and w != v}
            for v in names}
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        ready = [v for v in names if v not in placed and deps[v] <= placed]
        if not ready:
            ready = [next(v for v in names if v not in placed)]
        for v in ready:
            done.append(v)
            placed.add(v)
    return done


@dataclass
class TableParts:
    """A CREATE TABLE split at its top-level commas: head `(` elements `)` tail."""

    head: str
    elements: list[str]
    tail: str

    def join(self, elements: list[str] | None = None) -> str:
        return self.head + "(" + ",".join(self.elements if elements is None else elements) + \
            ")" + self.tail


def split_create_table(sql: str) -> TableParts | None:
    """The column and index definitions of a CREATE TABLE (None if it has no such list)."""
    tokens = tokenize(sql)
    depth, start, elements, current = 0, None, [], []
    for i, tok in enumerate(tokens):
        if tok.text == "(" and tok.kind == "punct":
            depth += 1
            if depth == 1 and start is None:
                start = i
                continue
        elif tok.text == ")" and tok.kind == "punct":
            depth -= 1
            if depth == 0 and start is not None:
                elements.append("".join(current))
                return TableParts("".join(t.text for t in tokens[:start]), elements,
                                  "".join(t.text for t in tokens[i + 1:]))
        if start is None:
            continue
        if depth == 1 and tok.text == "," and tok.kind == "punct":
            elements.append("".join(current))
            current = []
        else:
            current.append(tok.text)
    return None


def element_words(element: str) -> list[str]:
    """The significant tokens of one definition, words upper-cased (identifiers unquoted)."""
    out = []
    for tok in tokenize(element):
        if not tok.significant:
            continue
        out.append(tok.text.upper() if tok.kind == "word" else (tok.name() or tok.text))
    return out
