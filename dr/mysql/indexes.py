"""Deferred secondary indexes: a big InnoDB table loads faster without its secondary indexes,
which one ALTER TABLE then builds by sorting (measured: ~20-25% less server CPU).

Only plain KEY/INDEX/UNIQUE definitions of InnoDB tables are deferred, and only for tables
with no foreign key in either direction and enough rows to be worth an ALTER; FULLTEXT,
SPATIAL, PRIMARY, CHECK and an index the AUTO_INCREMENT column needs stay in CREATE TABLE.

The CREATE TABLE is parsed, never matched on words: its body is tokenised (backquoted
identifiers with doubled backquotes, strings, comments, parentheses) and split into elements at
its top-level commas. What an element is comes from its first token: a quoted identifier starts
a column (`KEY` varchar(40) is a column named KEY), an unquoted keyword an index or constraint.
Names (of columns, key parts, referenced tables) are the identifiers themselves, unquoted.
SHOW CREATE TABLE quotes every identifier (the dump sets sql_quote_show_create=1); an unquoted
word that is no keyword is taken as a column name too.
"""

from __future__ import annotations

from dataclasses import dataclass

from dr.mysql.sqltext import Token, tokenize

#: Fewer rows than this (the dump's estimate) and the table is created with all its indexes.
MIN_ROWS = 20_000

# The keyword (unquoted, any case) an element starts with → what the element is.
_STARTS = {"PRIMARY": "primary", "KEY": "key", "INDEX": "key", "UNIQUE": "unique",
           "FULLTEXT": "fulltext", "SPATIAL": "spatial", "FOREIGN": "foreign", "CHECK": "check",
           "PERIOD": "period", "VECTOR": "vector", "CONSTRAINT": "constraint"}
#: Elements that ALTER TABLE ... ADD can build after the load.
DEFERRABLE = {"key", "unique"}
_NAME_KINDS = ("ident", "dquoted", "word")


@dataclass
class Element:
    """One definition in a CREATE TABLE's parentheses: a column, an index, a constraint."""

    tokens: list[Token]  # every token, whitespace and comments included
    kind: str  # column primary key unique fulltext spatial foreign check period vector other
    name: str | None = None  # the column's name; the index's or constraint's name, if any
    columns: tuple[str | None, ...] = ()  # an index's key parts: column names (None: expression)
    auto_increment: bool = False  # a column declared AUTO_INCREMENT
    references: str | None = None  # a foreign key's parent table (its last name part)

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)


@dataclass
class CreateTable:
    head: str  # up to the opening parenthesis
    elements: list[Element]
    tail: str  # after the closing parenthesis: table options, partitioning

    def render(self, elements: list[Element] | None = None) -> str:
        chosen = self.elements if elements is None else elements
        return self.head + "(" + ",".join(e.text for e in chosen) + ")" + self.tail


def _name(tok: Token) -> str | None:
    if tok.kind == "dquoted":
        return tok.text[1:-1].replace('""', '"')
    return tok.name()  # `x` unquoted (doubled backquotes undone), or a bare word


def _keyword(tok: Token) -> str | None:
    """The keyword an unquoted word spells (upper-cased); None for anything quoted."""
    return tok.text.upper() if tok.kind == "word" else None


def _groups(sig: list[Token], start: int) -> tuple[list[list[Token]], int]:
    """The comma-separated items of the parenthesised list opening at sig[start]; and the
    index just past its closing parenthesis."""
    items, current, depth = [], [], 0
    for i in range(start, len(sig)):
        tok = sig[i]
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
            if depth == 1:
                continue
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
            if depth == 0:
                items.append(current)
                return items, i + 1
        if depth == 1 and tok.kind == "punct" and tok.text == ",":
            items.append(current)
            current = []
        else:
            current.append(tok)
    return items, len(sig)


def _key_parts(sig: list[Token], start: int) -> tuple[str | None, tuple[str | None, ...]]:
    """From sig[start] (just after KEY/INDEX/UNIQUE [KEY]/PRIMARY KEY/...): the index name (if
    any) and its key parts' column names."""
    name = None
    i = start
    while i < len(sig) and not (sig[i].kind == "punct" and sig[i].text == "("):
        kw = _keyword(sig[i])
        if name is None and sig[i].kind in _NAME_KINDS and kw not in ("USING", "KEY", "INDEX"):
            name = _name(sig[i])
        elif kw == "USING":
            i += 1  # USING BTREE|HASH: the type is no name
        i += 1
    if i >= len(sig):
        return name, ()
    items, _ = _groups(sig, i)
    parts = []
    for item in items:
        first = item[0] if item else None
        parts.append(_name(first) if first is not None and first.kind in _NAME_KINDS else None)
    return name, tuple(parts)


def _element(tokens: list[Token]) -> Element:
    sig = [t for t in tokens if t.significant]
    el = Element(tokens=tokens, kind="other")
    if not sig:
        return el
    first = sig[0]
    kind = _STARTS.get(_keyword(first) or "")
    second = _keyword(sig[1]) if len(sig) > 1 else None
    if (kind == "period" and second != "FOR") or \
            (kind == "vector" and second not in ("KEY", "INDEX")):
        kind = None  # PERIOD and VECTOR are no reserved words: here, a column's bare name
    if kind is None:
        if first.kind not in _NAME_KINDS:
            return el
        el.kind, el.name = "column", _name(first)
        depth = 0
        for tok in sig[1:]:
            if tok.kind == "punct" and tok.text in "()":
                depth += 1 if tok.text == "(" else -1
            elif depth == 0 and _keyword(tok) == "AUTO_INCREMENT":
                el.auto_increment = True
        return el
    i = 1
    if kind == "constraint":  # CONSTRAINT [symbol] PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK ...
        symbol = None
        if i < len(sig) and _STARTS.get(_keyword(sig[i]) or "") is None and \
                sig[i].kind in _NAME_KINDS:
            symbol = _name(sig[i])
            i += 1
        kind = _STARTS.get(_keyword(sig[i]) or "", "other") if i < len(sig) else "other"
        if kind in ("constraint", "period", "vector"):
            kind = "other"
        el.name = symbol
        i += 1
    el.kind = kind
    if kind == "primary" or (kind in ("unique", "fulltext", "spatial", "foreign", "vector") and
                             i < len(sig) and _keyword(sig[i]) in ("KEY", "INDEX")):
        i += 1  # PRIMARY KEY, UNIQUE KEY, FULLTEXT INDEX, FOREIGN KEY
    if kind in ("primary", "key", "unique", "fulltext", "spatial", "foreign", "vector"):
        name, el.columns = _key_parts(sig, i)
        el.name = el.name if el.name is not None else name
    if kind == "foreign":
        for j, tok in enumerate(sig):
            if _keyword(tok) == "REFERENCES":
                last = None
                for t in sig[j + 1:]:
                    if t.kind == "punct" and t.text == "(":
                        break
                    if t.kind in _NAME_KINDS:
                        last = _name(t)  # `db`.`t`: the last part
                el.references = last
                break
    return el


def parse_create_table(sql: str) -> CreateTable | None:
    """A CREATE TABLE split into head, elements and tail; None without a definition list."""
    tokens = tokenize(sql)
    depth, start, current, elements = 0, None, [], []
    for i, tok in enumerate(tokens):
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
            if depth == 1 and start is None:
                start = i
                continue
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
            if depth == 0 and start is not None:
                elements.append(_element(current))
                return CreateTable("".join(t.text for t in tokens[:start]), elements,
                                   "".join(t.text for t in tokens[i + 1:]))
        if start is None:
            continue
        if depth == 1 and tok.kind == "punct" and tok.text == ",":
            elements.append(_element(current))
            current = []
        else:
            current.append(tok)
    return None


def referenced_tables(creates: list[str]) -> set[str]:
    """Names of tables that some table's FOREIGN KEY points at."""
    out = set()
    for sql in creates:
        table = parse_create_table(sql)
        for el in table.elements if table else ():
            if el.kind == "foreign" and el.references is not None:
                out.add(el.references)
    return out


def plan(create: str, engine: str, rows_estimate: int, referenced: bool) -> tuple[str, list[str]]:
    """(CREATE TABLE to run now, index definitions to ADD after the load)."""
    if engine.lower() != "innodb" or rows_estimate < MIN_ROWS or referenced:
        return create, []
    table = parse_create_table(create)
    if table is None or any(el.kind == "foreign" for el in table.elements):
        return create, []
    # column names are case-insensitive: compare them folded (they are names, not keywords)
    auto = {el.name.casefold() for el in table.elements
            if el.kind == "column" and el.auto_increment and el.name is not None}
    keep, deferred = [], []
    for el in table.elements:
        first = el.columns[0] if el.columns else None
        if el.kind in DEFERRABLE and first is not None and first.casefold() not in auto:
            deferred.append(el.text.strip())
        else:
            keep.append(el)
    if not deferred:
        return create, []
    return table.render(keep), deferred
