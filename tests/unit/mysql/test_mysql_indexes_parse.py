"""The deferred-index planner parses CREATE TABLE: identifiers that spell keywords (`KEY`,
`INDEX`, `UNIQUE`, ...), quoted, mixed-case, with doubled backquotes, commas and parentheses
inside names, strings and comments never change what is deferred.

A seeded generator writes CREATE TABLE statements the way SHOW CREATE TABLE does (and some with
lower-case keywords and odd spacing); for each, what `plan` defers must be exactly the
generated secondary indexes (KEY/UNIQUE whose first column is not the AUTO_INCREMENT column),
in order, and what it keeps must be everything else, untouched.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from dr.mysql.indexes import MIN_ROWS, parse_create_table, plan, referenced_tables
from dr.mysql.sqltext import quote_ident

SEED = 20240612
CASES = 1500

#: Column and index names: keywords, their lower/mixed case, quoting hazards.
NAMES = ["KEY", "INDEX", "UNIQUE", "PRIMARY", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN",
         "CHECK", "REFERENCES", "AUTO_INCREMENT", "USING", "PERIOD", "VECTOR", "FOR", "NOT",
         "key", "Key", "kEy", "index", "unique", "primary", "constraint", "foreign", "check",
         "a`b", "``", "`KEY`", "a,b", "x(y", "p)q", "c -- d", "/*x*/", "#h", "it's", 'dq"x',
         "ünï", "日本", "id", "KEY INDEX", "UNIQUE KEY", "k e y", "(", ")", ",", "AS"]
#: Text for DEFAULT and COMMENT strings: looks like SQL, is data.
STRINGS = ["KEY (x), UNIQUE", "a,b) KEY `k` (`c`", "it''s", "back\\\\slash", "/* no */",
           "-- nor", "`KEY`", "PRIMARY KEY (`id`)", "FOREIGN KEY (a) REFERENCES t (b)", ""]


@dataclass
class Case:
    sql: str
    deferred: list[str]  # the index definitions plan() must defer, in order
    kept: list[str]  # every other element, in order
    columns: list[str]  # the column names, unquoted
    auto: str | None
    references: set[str] = field(default_factory=set)


def kw(rng: random.Random, word: str) -> str:
    """A keyword as SHOW CREATE writes it, or (sometimes) in another case."""
    return word if rng.random() < 0.8 else rng.choice([word.lower(), word.title()])


def make_case(rng: random.Random) -> Case:
    n = rng.randint(1, 6)
    cols = []
    for c in rng.sample(NAMES, len(NAMES)):  # column names are case-insensitive: one of each
        if len(cols) < n and c.casefold() not in {x.casefold() for x in cols}:
            cols.append(c)
    q = quote_ident
    auto = cols[0] if rng.random() < 0.5 else None
    text_col = None
    defs = []
    for c in cols:
        if c == auto:
            d = f"{q(c)} int(11) {kw(rng, 'NOT')} NULL {kw(rng, 'AUTO_INCREMENT')}"
        elif rng.random() < 0.5:
            d = f"{q(c)} varchar(40) {kw(rng, 'DEFAULT')} '{rng.choice(STRINGS)}'"
            text_col = text_col or c
        else:
            d = f"{q(c)} int(11) {kw(rng, 'NOT')} NULL"
        if rng.random() < 0.3:
            d += f" {kw(rng, 'COMMENT')} '{rng.choice(STRINGS)}'"
        if rng.random() < 0.1:
            d += f" {kw(rng, 'CHECK')} ({q(c)} is not null)"
        defs.append(d)
    deferred, kept = [], list(defs)
    if auto is not None or rng.random() < 0.5:
        pk = auto or rng.choice(cols)
        kept.append(f"{kw(rng, 'PRIMARY')} {kw(rng, 'KEY')} ({q(pk)})")
    for _ in range(rng.randint(0, 4)):
        parts = rng.sample(cols, rng.randint(1, min(3, len(cols))))
        keys = ",".join(q(p) + ("(10)" if p == text_col and rng.random() < 0.5 else "")
                        for p in parts)
        name = q(rng.choice(NAMES + ["k1", "k2"]))
        using = f" {kw(rng, 'USING')} {kw(rng, 'BTREE')}" if rng.random() < 0.2 else ""
        comment = f" {kw(rng, 'COMMENT')} '{rng.choice(STRINGS)}'" if rng.random() < 0.2 else ""
        how = rng.choice(["KEY", "UNIQUE KEY", "INDEX", "UNIQUE", "UNIQUE INDEX"])
        d = " ".join(kw(rng, w) for w in how.split()) + f" {name}{using} ({keys}){comment}"
        (kept if parts[0] == auto else deferred).append(d)
    if text_col is not None and rng.random() < 0.3:
        kept.append(f"{kw(rng, 'FULLTEXT')} {kw(rng, 'KEY')} {q(rng.choice(NAMES))} "
                    f"({q(text_col)})")
    if rng.random() < 0.2:
        kept.append(f"{kw(rng, 'SPATIAL')} {kw(rng, 'KEY')} {q('sp')} ({q(cols[-1])})")
    if rng.random() < 0.3:
        kept.append(f"{kw(rng, 'CONSTRAINT')} {q(rng.choice(NAMES))} {kw(rng, 'CHECK')} "
                    f"({q(cols[0])} <> '{rng.choice(STRINGS)}')")
    references = set()
    if rng.random() < 0.15:
        parent = rng.choice(NAMES)
        references.add(parent)
        qualified = (q("otherdb") + "." if rng.random() < 0.3 else "") + q(parent)
        kept.append(f"{kw(rng, 'CONSTRAINT')} {q(rng.choice(NAMES))} {kw(rng, 'FOREIGN')} "
                    f"{kw(rng, 'KEY')} ({q(cols[-1])}) {kw(rng, 'REFERENCES')} {qualified} "
                    f"({q(rng.choice(NAMES))})")
    order = kept[:len(defs)] + rng.sample(kept[len(defs):] + deferred,
                                          len(kept) - len(defs) + len(deferred))
    sep = rng.choice([",\n  ", ", ", ",", " ,\n\t"])
    table = q(rng.choice(NAMES))
    tail = rng.choice(["", f" COMMENT='{rng.choice(STRINGS)}'",
                       " PARTITION BY HASH (`x`) PARTITIONS 2"])
    sql = (f"CREATE TABLE {table} (\n  " + sep.join(order) +
           f"\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4{tail}")
    deferred_in_order = [d for d in order if d in deferred]
    kept_in_order = [d for d in order if d not in deferred]
    if references:
        deferred_in_order, kept_in_order = [], order
    return Case(sql, deferred_in_order, kept_in_order, cols, auto, references)


def cases():
    rng = random.Random(SEED)
    return [make_case(rng) for _ in range(CASES)]


def test_generated_tables_defer_exactly_their_secondary_indexes():
    seen_deferred = seen_kept_kw_columns = 0
    for i, case in enumerate(cases()):
        create, deferred = plan(case.sql, "InnoDB", MIN_ROWS, referenced=False)
        assert deferred == case.deferred, f"case {i} (seed {SEED}):\n{case.sql}"
        seen_deferred += bool(deferred)
        if not deferred:
            assert create == case.sql, f"case {i}"
            continue
        parsed = parse_create_table(create)
        assert [el.text.strip() for el in parsed.elements] == case.kept, f"case {i}:\n{create}"
        assert [el.name for el in parsed.elements if el.kind == "column"] == case.columns
        seen_kept_kw_columns += any(c.upper() in ("KEY", "INDEX", "UNIQUE") for c in case.columns)
        assert create.startswith(case.sql[:case.sql.index("(")]) and \
            create.endswith(case.sql[case.sql.rindex(")"):])
    assert seen_deferred > CASES // 3 and seen_kept_kw_columns > 50  # the generator's reach


def test_generated_tables_parse_into_their_parts():
    for i, case in enumerate(cases()):
        parsed = parse_create_table(case.sql)
        columns = [el for el in parsed.elements if el.kind == "column"]
        assert [el.name for el in columns] == case.columns, f"case {i}:\n{case.sql}"
        assert [el.name for el in columns if el.auto_increment] == \
            ([case.auto] if case.auto else []), f"case {i}"
        assert parsed.render() == case.sql
        assert referenced_tables([case.sql]) == case.references, f"case {i}:\n{case.sql}"


@pytest.mark.parametrize("column", ["KEY", "INDEX", "UNIQUE", "key", "Unique", "PRIMARY",
                                    "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK"])
def test_a_column_named_like_a_keyword_stays_a_column(column):
    """The issue's case: SHOW CREATE TABLE of a key/value table."""
    q = quote_ident(column)
    ddl = (f"CREATE TABLE `kv` (\n  {q} varchar(40) NOT NULL,\n  `value` text,\n"
           f"  `n` int(11) DEFAULT NULL,\n  PRIMARY KEY ({q}),\n  KEY `by_n` (`n`,{q})\n"
           ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
    create, deferred = plan(ddl, "InnoDB", MIN_ROWS, referenced=False)
    assert deferred == [f"KEY `by_n` (`n`,{q})"]
    assert f"  {q} varchar(40) NOT NULL," in create and f"PRIMARY KEY ({q})" in create


def test_doubled_backquotes_and_odd_names():
    ddl = ("CREATE TABLE `t``1` (\n  `a``b` int(11) NOT NULL AUTO_INCREMENT,\n"
           "  `KEY` varchar(9) DEFAULT 'x,y) KEY `z` (',\n  `c,d` int(11),\n"
           "  PRIMARY KEY (`c,d`),\n  KEY `KEY` (`a``b`),\n  UNIQUE KEY `UNIQUE` (`KEY`(3)),\n"
           "  KEY `INDEX` (`c,d`,`KEY`) COMMENT 'KEY (`a``b`)'\n) ENGINE=InnoDB")
    create, deferred = plan(ddl, "InnoDB", MIN_ROWS, referenced=False)
    # `a``b` is the AUTO_INCREMENT column: the index starting with it stays
    assert deferred == ["UNIQUE KEY `UNIQUE` (`KEY`(3))",
                        "KEY `INDEX` (`c,d`,`KEY`) COMMENT 'KEY (`a``b`)'"]
    assert "KEY `KEY` (`a``b`)" in create and "DEFAULT 'x,y) KEY `z` ('" in create
    parsed = parse_create_table(ddl)
    assert [el.name for el in parsed.elements if el.kind == "column"] == ["a`b", "KEY", "c,d"]
    assert [el.columns for el in parsed.elements if el.kind in ("key", "unique")] == \
        [("a`b",), ("KEY",), ("c,d", "KEY")]


def test_foreign_keys_and_auto_increment_are_found_on_tokens_only():
    fk = ("CREATE TABLE `child` (\n  `REFERENCES` int(11) NOT NULL,\n  `FOREIGN` int(11),\n"
          "  `AUTO_INCREMENT` int(11) COMMENT 'AUTO_INCREMENT',\n  KEY `k` (`AUTO_INCREMENT`),\n"
          "  KEY `f` (`FOREIGN`)\n) ENGINE=InnoDB")
    # columns named FOREIGN/REFERENCES/AUTO_INCREMENT are no foreign key and no AUTO_INCREMENT
    assert plan(fk, "InnoDB", MIN_ROWS, referenced=False)[1] == \
        ["KEY `k` (`AUTO_INCREMENT`)", "KEY `f` (`FOREIGN`)"]
    assert referenced_tables([fk]) == set()
    real = fk.replace("  KEY `f`", "  CONSTRAINT `c` FOREIGN KEY (`FOREIGN`) REFERENCES "
                                   "`par``ent` (`KEY`),\n  KEY `f`")
    assert plan(real, "InnoDB", MIN_ROWS, referenced=False) == (real, [])
    assert referenced_tables([real]) == {"par`ent"}


def test_other_elements_are_kept():
    ddl = ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `g` point NOT NULL,\n"
           "  `s` timestamp(6) GENERATED ALWAYS AS ROW START,\n"
           "  `e` timestamp(6) GENERATED ALWAYS AS ROW END,\n"
           "  `period` int(11),\n  `v` int(11),\n"
           "  PRIMARY KEY (`id`,`e`),\n  SPATIAL KEY `sp` (`g`),\n  KEY `fn` ((`v` + 1)),\n"
           "  KEY `p` (`period`),\n  PERIOD FOR SYSTEM_TIME (`s`, `e`)\n"
           ") ENGINE=InnoDB WITH SYSTEM VERSIONING")
    create, deferred = plan(ddl, "InnoDB", MIN_ROWS, referenced=False)
    assert deferred == ["KEY `p` (`period`)"]
    assert "PERIOD FOR SYSTEM_TIME" in create and "KEY `fn` ((`v` + 1))" in create
    bare = "CREATE TABLE t (period int, vector int, x int, KEY k (x))"
    assert [el.kind for el in parse_create_table(bare).elements] == \
        ["column", "column", "column", "key"]
