"""The spooling store: nothing is lost while the state store is unreachable."""

from __future__ import annotations

import pytest

from dr.scheduler.spool import SpoolingStore, StoreUnavailable
from dr.state.local import LocalStore
from tests.unit.scheduler.test_scheduler_daemon import FlakyStore


@pytest.fixture
def pair(tmp_path):
    inner = FlakyStore(tmp_path / "state")
    return inner, SpoolingStore(lambda: inner, tmp_path / "spool")


def test_writes_while_down_are_spooled_readable_and_flushed_in_order(pair):
    inner, store = pair
    store.put_json("runs/a.json", {"v": 1})
    inner.down = True
    store.put_json("runs/a.json", {"v": 2})
    store.put_json("runs/b.json", {"v": 1})
    assert store.up is False and "unreachable" in store.last_error
    assert store.get_json("runs/a.json") == {"v": 2}  # the spooled version wins
    assert store.pending() == ["put/runs/a.json", "put/runs/b.json"]
    with pytest.raises(StoreUnavailable):
        store.create_json("locks/x.json", {})
    assert store.flush() == 2  # still down
    inner.down = False
    store.put_json("runs/a.json", {"v": 3})  # never overtakes the spooled older version
    assert inner.get_json("runs/a.json") == {"v": 1}
    assert store.flush() == 0
    assert inner.get_json("runs/a.json") == {"v": 3} and inner.get_json("runs/b.json") == {"v": 1}
    assert store.pending() == [] and store.up is True


def test_list_keys_includes_spooled_keys(pair):
    inner, store = pair
    store.put_json("runs/a.json", {})
    inner.down = True
    store.put_json("runs/b.json", {})
    with pytest.raises(StoreUnavailable):
        store.list_keys("runs/")
    inner.down = False
    assert store.list_keys("runs/") == ["runs/a.json", "runs/b.json"]


def test_local_claims_are_flushed_as_exclusive_creates(pair, caplog):
    inner, store = pair
    assert store.create_local("locks/s/1.json", {"owner": "me"})
    assert not store.create_local("locks/s/1.json", {"owner": "me again"})
    inner.create_json("locks/s/1.json", {"owner": "them"})  # another scheduler got there too
    store.create_local("locks/s/2.json", {"owner": "me"})
    assert store.flush() == 0
    assert inner.get_json("locks/s/1.json") == {"owner": "them"}
    assert inner.get_json("locks/s/2.json") == {"owner": "me"}
    assert "also claimed by another scheduler" in caplog.text


def test_a_store_that_cannot_even_open_is_down_until_it_can(tmp_path):
    attempts = []

    def opener():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("cannot resolve the KMS key: endpoint unreachable")
        return LocalStore(tmp_path / "state")

    store = SpoolingStore(opener, tmp_path / "spool")
    store.put_json("runs/a.json", {"v": 1})
    assert store.up is False and store.description == "state store (opening)"
    assert not store.probe()
    assert store.probe() and store.flush() == 0
    assert LocalStore(tmp_path / "state").get_json("runs/a.json") == {"v": 1}
    assert store.description.startswith("local directory")


def test_bad_keys_are_bugs_not_outages(pair):
    _, store = pair
    with pytest.raises(ValueError):
        store.put_json("../escape", {})
    assert store.up is not False
