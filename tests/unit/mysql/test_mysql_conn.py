"""parse_uri and ConnectionSpec: no server needed."""

from __future__ import annotations

import pytest

from dr.errors import EXIT_USAGE
from dr.mysql import ConnectionSpec, MysqlUriError, parse_uri
from dr.mysql.conn import connect_error


def test_full_uri():
    spec, db = parse_uri("mysql://backup:s%40cret@db.example.com:3307/app?tls=required"
                         "&ca=/etc/ca.pem&connect_timeout=2.5")
    assert spec == ConnectionSpec(host="db.example.com", port=3307, user="backup",
                                  tls="required", ca_file="/etc/ca.pem", connect_timeout=2.5)
    assert spec.password == "s@cret" and db == "app"


def test_defaults_and_no_database():
    spec, db = parse_uri("mysql://db.example.com")
    assert (spec.host, spec.port, spec.user, spec.password, spec.tls, db) == \
        ("db.example.com", 3306, "root", None, "preferred", None)
    assert parse_uri("mariadb://u@h/")[1] is None


def test_password_from_the_caller_wins():
    spec, _ = parse_uri("mysql://u:inuri@h/db", password="fromenv")
    assert spec.password == "fromenv"


def test_socket_and_ipv6_and_escapes():
    spec, db = parse_uri("mysql://root@localhost/my%20db?socket=/run/mysqld/mysqld.sock")
    assert spec.unix_socket == "/run/mysqld/mysqld.sock" and db == "my db"
    assert spec.address == "socket /run/mysqld/mysqld.sock"
    spec, _ = parse_uri("mysql://u@[::1]:3310/x")
    assert spec.host == "::1" and spec.address == "[::1]:3310"
    spec, _ = parse_uri("mysql://%C3%BCser@h/x")
    assert spec.user == "üser"


@pytest.mark.parametrize("uri, message", [
    ("postgres://u@h/db", "must start with mysql://"),
    ("mysql:///db", "no host"),
    ("mysql://u@h:99999/db", "invalid MySQL URI"),
    ("mysql://u@h/db?tls=maybe", "tls must be one of"),
    ("mysql://u@h/db?sslmode=require", "unknown option 'sslmode'"),
    ("mysql://u@h/a/b", "one database name"),
    ("mysql://u@h/db?connect_timeout=soon", "connect_timeout must be a number"),
])
def test_bad_uris(uri, message):
    with pytest.raises(MysqlUriError, match=message) as e:
        parse_uri(uri)
    assert e.value.exit_code == EXIT_USAGE


def test_password_never_in_errors_or_repr():
    with pytest.raises(MysqlUriError) as e:
        parse_uri("mysql://u:hunter2@h:99999/db")
    assert "hunter2" not in str(e.value) and "***" in str(e.value)
    with pytest.raises(MysqlUriError) as e:
        parse_uri("mysql://u:hunter2@h/db?bogus=1")
    assert "hunter2" not in str(e.value)
    spec = ConnectionSpec(host="h", password="hunter2")
    assert "hunter2" not in repr(spec) and "hunter2" not in spec.describe()
    assert spec == ConnectionSpec(host="h", password="other")  # passwords are not identity


def test_spec_validation():
    with pytest.raises(MysqlUriError):
        ConnectionSpec(host="h", tls="sometimes")
    with pytest.raises(MysqlUriError):
        ConnectionSpec(host="h", port=0)
    assert ConnectionSpec(host="h", port=3307, user="bk").describe() == "bk@h:3307"


def test_connect_error_messages():
    import pymysql

    spec = ConnectionSpec(host="10.0.0.5", user="backup", password="pw", connect_timeout=10)
    auth = connect_error(spec, pymysql.err.OperationalError(
        1045, "Access denied for user 'backup'@'10.0.0.9' (using password: YES)"))
    assert str(auth).startswith("access denied for user backup@10.0.0.5:3306: check the "
                                "password (mysql[].password)")
    down = connect_error(spec, pymysql.err.OperationalError(
        2003, "Can't connect to MySQL server on '10.0.0.5' (timed out)"))
    assert str(down).startswith("cannot reach MySQL at 10.0.0.5:3306 within 10s: timed out")
    refused = connect_error(spec, pymysql.err.OperationalError(
        2003, "Can't connect to MySQL server on '10.0.0.5' ([Errno 111] Connection refused)"))
    assert "connection refused" in str(refused)
