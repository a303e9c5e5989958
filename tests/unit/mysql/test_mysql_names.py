"""Database names outside [A-Za-z0-9_$-]: `café`, `my db`, `a.b`, `it's` are MySQL database
names (dr quotes every identifier); what the server refuses is refused with the reason."""

from __future__ import annotations

import pytest

from dr.config import parse_config
from dr.mysql import MysqlUriError, parse_uri
from tests.unit.config.test_config import FULL, error_of

NAMES = ["café", "my db", "a.b", "it's", 'say "hi"', "a`b", "a/b", "ÄÖÜß€", "x-1$", "Ω" * 64]


def mysql_config(databases: str) -> str:
    return FULL.replace("mysql: null\n", "") + (
        f"mysql:\n  - {{name: lamp, host: h, databases: {databases}, "
        "destination: 'file:///x'}\n")


def test_names_the_server_accepts_are_accepted():
    from dr.identifiers import mysql_database_name_problem

    for name in NAMES:
        assert mysql_database_name_problem(name) is None, name
    flow = "[" + ", ".join("'" + n.replace("'", "''") + "'" for n in NAMES) + "]"
    (m,) = parse_config(mysql_config(flow)).mysql
    assert list(m.databases) == NAMES


@pytest.mark.parametrize("databases, message", [
    ("['app', 'x ']", "mysql[0].databases[1]: 'x ' is not a MySQL database name: it ends with "
                      "a space"),
    ("['😀']", "mysql[0].databases[0]: '😀' is not a MySQL database name: it contains '😀' "
               "(U+1F600), a character outside the Basic Multilingual Plane"),
    ("['']", "mysql[0].databases[0]: '' is not a MySQL database name: it is empty"),
    ("['" + "a" * 65 + "']", "it has 65 characters, more than 64"),
    ("[app, app]", "mysql[0].databases[1]: 'app' is not a MySQL database name: it is listed "
                   "twice"),
    ("[2024]", "mysql[0].databases[0]: 2024 is not a MySQL database name: it is not a string "
               "(write it in quotes)"),
    ("['#mysql50#old']", "it starts with #mysql50#, which the server reserves"),
    ("[]", "mysql[0].databases: expected a non-empty list of database names like [app]"),
])
def test_names_the_server_refuses_are_refused_saying_why(databases, message):
    assert message in error_of(mysql_config(databases))


def test_uris_carry_any_database_name_percent_encoded():
    assert parse_uri("mysql://root@db:3306/caf%C3%A9")[1] == "café"
    assert parse_uri("mysql://root@db/café")[1] == "café"
    assert parse_uri("mysql://root@db/my%20db")[1] == "my db"
    assert parse_uri("mysql://root@db/a%2Fb")[1] == "a/b"  # a / in a name, encoded
    assert parse_uri("mysql://root@db/a.b?tls=off")[1] == "a.b"
    with pytest.raises(MysqlUriError, match="the path must be one database name"):
        parse_uri("mysql://root@db/a/b")
    with pytest.raises(MysqlUriError, match="'x ' is not a database name: it ends with a space"):
        parse_uri("mysql://root@db/x%20")
    with pytest.raises(MysqlUriError, match="not percent-encoded UTF-8"):
        parse_uri("mysql://root@db/%FF")
