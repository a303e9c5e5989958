"""mysql[].lock_timeout: how long a backup waits for a lock at its start (dr/config.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dr.config import parse_config
from dr.errors import ConfigError
from dr.mysql import DumpError, dump
from dr.mysql.conn import ConnectionSpec
from dr.mysql.dump import DEFAULT_LOCK_TIMEOUT

BASE = ("version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
        "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr}\nstate: {path: /tmp/s}\n"
        "mysql:\n  - {name: lamp, host: h, databases: [app], destination: 'file:///x'%s}\n")


def test_default_is_two_seconds_like_the_engine():
    (m,) = parse_config(BASE % "").mysql
    assert m.lock_timeout == timedelta(seconds=2) == timedelta(seconds=DEFAULT_LOCK_TIMEOUT)


@pytest.mark.parametrize("text, seconds", [("1s", 1), ("5s", 5), ("1m30s", 90), ("10m", 600)])
def test_durations_are_accepted(text, seconds):
    (m,) = parse_config(BASE % f", lock_timeout: {text}").mysql
    assert m.lock_timeout == timedelta(seconds=seconds)


@pytest.mark.parametrize("text, expected", [
    ("11m", "mysql[0].lock_timeout: expected a duration from 1s to 10m (how long a backup waits "
            "for a lock; writers may queue behind it that long), got '11m'"),
    ("0s", "mysql[0].lock_timeout: expected a duration greater than zero"),
    ("soon", "mysql[0].lock_timeout: expected a duration like"),
])
def test_bad_values_say_what_is_expected(text, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(BASE % f", lock_timeout: {text}")
    assert expected in str(e.value)


def test_the_engine_refuses_a_timeout_of_zero():
    with pytest.raises(DumpError, match="lock_timeout must be > 0"):
        dump(ConnectionSpec(host="127.0.0.1"), ["app"], None, lock_timeout=0)
