"""Timeouts for restore and verify connections: values, and the errors they end in."""

from __future__ import annotations

import pymysql
import pytest

from dr.mysql import ConnectionSpec
from dr.mysql.conn import STATEMENT_TIMEOUT, Timeouts, query_error

SPEC = ConnectionSpec(host="10.0.0.5", user="restore")


def test_the_default_bounds_every_statement_read_and_write():
    t = Timeouts()
    assert (t.statement, t.read, t.write) == (STATEMENT_TIMEOUT, STATEMENT_TIMEOUT + 60,
                                             STATEMENT_TIMEOUT + 60) == (3600, 3660, 3660)
    assert Timeouts.for_statements(600) == Timeouts(600, 660, 660)
    assert Timeouts.for_statements(None) == Timeouts(None, None, None)
    assert t.describe() == "statement 3600s, read 3660s, write 3660s"


@pytest.mark.parametrize("bad", [0, -1])
def test_a_timeout_must_be_positive(bad):
    with pytest.raises(ValueError, match="must be > 0"):
        Timeouts(statement=bad)


def test_a_read_timeout_says_so():
    e = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query "
                                           "(timed out)")
    err = query_error(SPEC, e, "restoring")
    assert "did not answer in time while restoring" in err.message
    assert "raise the timeouts" in err.hint
    e = pymysql.err.OperationalError(2006, "MySQL server has gone away (TimeoutError('timed "
                                           "out'))")
    assert "did not answer in time" in query_error(SPEC, e, "restoring").message


@pytest.mark.parametrize("code, text", [
    (1969, "Query execution was interrupted (max_statement_time exceeded)"),
    (3024, "Query execution was interrupted, maximum statement execution time exceeded"),
])
def test_a_statement_timeout_says_so(code, text):
    err = query_error(SPEC, pymysql.err.OperationalError(code, text), "verifying app")
    assert f"({code})" in err.message and "statement timeout" in err.hint


def test_a_lost_connection_is_still_a_lost_connection():
    err = query_error(SPEC, pymysql.err.OperationalError(2013, "Lost connection"), "restoring")
    assert err.message.startswith("lost the connection")
