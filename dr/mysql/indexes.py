"""Deferred secondary indexes: a big InnoDB table loads faster without its secondary indexes,
which one ALTER TABLE then builds by sorting (measured: ~20-25% less server CPU).

Only plain KEY/INDEX/UNIQUE definitions of InnoDB tables are deferred, and only for tables
with no foreign key in either direction and enough rows to be worth an ALTER; FULLTEXT,
SPATIAL, PRIMARY, CHECK and an index the AUTO_INCREMENT column needs stay in CREATE TABLE.
"""

from __future__ import annotations

from dr.mysql.sqltext import element_words, split_create_table

#: Fewer rows than this (the dump's estimate) and the table is created with all its indexes.
MIN_ROWS = 20_000
_INDEX_WORDS = {"KEY", "INDEX", "UNIQUE"}


def referenced_tables(creates: list[str]) -> set[str]:
    """Names of tables that some table's FOREIGN KEY points at."""
    out = set()
    for sql in creates:
        words = element_words(sql)
        for i, w in enumerate(words[:-1]):
            if w == "REFERENCES":
                out.add(words[i + 1])
    return out


def plan(create: str, engine: str, rows_estimate: int, referenced: bool) -> tuple[str, list[str]]:
    """(CREATE TABLE to run now, index definitions to ADD after the load)."""
    if engine.lower() != "innodb" or rows_estimate < MIN_ROWS or referenced:
        return create, []
    parts = split_create_table(create)
    if parts is None:
        return create, []
    auto_columns = set()
    for element in parts.elements:
        words = element_words(element)
        if "REFERENCES" in words or "FOREIGN" in words:
            return create, []
        if "AUTO_INCREMENT" in words and words:
            auto_columns.add(words[0])
    keep, deferred = [], []
    for element in parts.elements:
        words = element_words(element)
        first_column = words[words.index("(") + 1] if "(" in words else None
        if words and words[0] in _INDEX_WORDS and first_column not in auto_columns:
            deferred.append(element.strip())
        else:
            keep.append(element)
    if not deferred:
        return create, []
    return parts.join(keep), deferred
