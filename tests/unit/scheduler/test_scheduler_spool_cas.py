"""SpoolingStore's compare-and-swap: only against the real store, never against a spooled write."""

from __future__ import annotations

import pytest

from dr.scheduler.spool import SpoolingStore, StoreUnavailable
from tests.unit.scheduler.test_scheduler_daemon import FlakyStore


class FlakyCasStore(FlakyStore):
    """FlakyStore (a LocalStore that can be switched off) whose CAS calls fail while it is down."""

    def get_json_versioned(self, key):
        self._check()
        return super().get_json_versioned(key)

    def put_json_if(self, key, document, version):
        self._check()
        return super().put_json_if(key, document, version)


@pytest.fixture
def pair(tmp_path):
    inner = FlakyCasStore(tmp_path / "state")
    return inner, SpoolingStore(lambda: inner, tmp_path / "spool")


def test_cas_reads_and_writes_through_to_the_real_store(pair):
    inner, store = pair
    v1 = store.put_json_if("locks/s.json", {"owner": "a"}, None)
    assert v1 and inner.get_json_versioned("locks/s.json") == ({"owner": "a"}, v1)
    assert store.get_json_versioned("locks/s.json") == ({"owner": "a"}, v1)
    v2 = store.put_json_if("locks/s.json", {"owner": "b"}, v1)
    assert v2 and store.put_json_if("locks/s.json", {"owner": "c"}, v1) is None
    assert inner.get_json("locks/s.json") == {"owner": "b"}
    assert store.get_json_versioned("locks/none.json") is None
    assert store.pending() == [] and store.up is True


def test_cas_needs_the_real_store(pair):
    inner, store = pair
    version = store.put_json_if("locks/s.json", {"owner": "a"}, None)
    inner.down = True
    with pytest.raises(StoreUnavailable):
        store.get_json_versioned("locks/s.json")
    with pytest.raises(StoreUnavailable):
        store.put_json_if("locks/s.json", {"owner": "b"}, version)
    assert store.up is False and store.pending() == []  # a CAS is never spooled
    inner.down = False
    assert store.put_json_if("locks/s.json", {"owner": "b"}, version)


def test_a_key_with_a_spooled_write_has_no_version_until_flushed(pair):
    """Its version in the store belongs to an older document, and a CAS against it would be
    overwritten when the flush replays the spooled put: refused until the flush."""
    inner, store = pair
    version = store.put_json_if("journals/r.json", {"step": 1}, None)
    inner.down = True
    store.put_json("journals/r.json", {"step": 2})  # spooled
    inner.down = False
    with pytest.raises(StoreUnavailable, match="not yet flushed"):
        store.get_json_versioned("journals/r.json")
    with pytest.raises(StoreUnavailable, match="not yet flushed"):
        store.put_json_if("journals/r.json", {"step": 3}, version)
    assert inner.get_json("journals/r.json") == {"step": 1}  # the CAS did not reach the store
    assert store.get_json_versioned("journals/other.json") is None  # other keys are unaffected

    assert store.flush() == 0
    doc, current = store.get_json_versioned("journals/r.json")
    assert doc == {"step": 2}
    assert store.put_json_if("journals/r.json", {"step": 3}, version) is None  # stale now
    assert store.put_json_if("journals/r.json", {"step": 3}, current)
    assert inner.get_json("journals/r.json") == {"step": 3}


def test_a_local_claim_also_blocks_cas_until_flushed(pair):
    _, store = pair
    assert store.create_local("locks/s/1.json", {"owner": "me"})
    with pytest.raises(StoreUnavailable):
        store.put_json_if("locks/s/1.json", {"owner": "other"}, None)
    assert store.flush() == 0
    assert store.get_json_versioned("locks/s/1.json")[0] == {"owner": "me"}


def test_bad_keys_and_versions_are_bugs_not_outages(pair):
    _, store = pair
    with pytest.raises(ValueError):
        store.get_json_versioned("../x.json")
    with pytest.raises(ValueError):
        store.put_json_if("../x.json", {}, None)
    with pytest.raises(ValueError):
        store.put_json_if("x.json", {}, "")
    assert store.up is None  # nothing was called
