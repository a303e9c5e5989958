"""The state-store contract: ONE suite of cases that every StateStore backend must pass.

`StateStoreContract` holds the cases; each backend's test module subclasses it and provides a
`backend` fixture (a `Backend`):

* tests/unit/test_state_contract.py          LocalStore (pure filesystem, always runs)
* tests/integration/test_state_contract_s3.py S3Store on the moto server (marked integration)

Why a helper module rather than one parametrized fixture: `make unit` runs tests/unit without
a marker filter, and unit tests must not need the moto server; a subclass per backend keeps the
S3 half in tests/integration while a new case added here runs against both automatically.
Backend-specific behaviour: tests/unit/test_state_local.py, tests/integration/test_state_s3.py,
tests/unit/test_state_s3_errors.py.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from dr.errors import UsageError
from dr.state import ResourceResult, RunRecord, RunStore, StateStore, StepRecord, iso, new_run_id


@dataclass
class Backend:
    name: str
    store: StateStore
    unreachable: StateStore  # same backend, pointing where any I/O would fail or find nothing
    io_threads: int = 8


DOC = {"name": "app-db", "n": 3, "ratio": 0.5, "ok": True, "none": None,
       "nested": {"b": [1, "two", {"c": 3}], "a": "ünïcødé ✓"}}

BAD_KEYS = ["", "/runs/x.json", "runs/", "runs//x.json", "../x.json", "runs/../x.json",
            "runs/./x.json", ".", "a b", "a\\b", "ünï", "a:b", "x" * 513,
            "a" * 256, ".tmp-abc", "runs/.tmp-1"]

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _record(kind: str, at: datetime, **kw) -> RunRecord:
    return RunRecord(run_id=new_run_id(kind, at), kind=kind, status="completed",
                     started_at=iso(at), **kw)


class StateStoreContract:
    """Subclass as `Test<Backend>Contract` and define a `backend` fixture returning a Backend."""

    # -- documents -----------------------------------------------------------------------------

    def test_satisfies_the_protocol(self, backend):
        assert isinstance(backend.store, StateStore)
        assert backend.store.description

    def test_put_get_round_trip(self, backend):
        backend.store.put_json("runs/backup-1.json", DOC)
        assert backend.store.get_json("runs/backup-1.json") == DOC

    def test_longest_valid_key_round_trips(self, backend):
        key = "a" * 255 + "/" + "b" * 255  # 511 characters
        backend.store.put_json(key, {"x": 1})
        assert backend.store.get_json(key) == {"x": 1}
        assert backend.store.list_keys("a") == [key]

    def test_get_absent_is_none(self, backend):
        assert backend.store.get_json("runs/nothing.json") is None
        backend.store.put_json("runs/x.json", {})
        assert backend.store.get_json("runs") is None  # a "folder" is not a document
        assert backend.store.get_json("runs/x.json/deeper") is None

    def test_replace_last_write_wins(self, backend):
        for i in range(5):
            backend.store.put_json("locks/state.json", {"version": i})
        assert backend.store.get_json("locks/state.json") == {"version": 4}

    def test_replace_is_atomic_for_concurrent_readers(self, backend):
        big_a = {"which": "a", "pad": "a" * 200_000}
        big_b = {"which": "b", "pad": "b" * 200_000}
        backend.store.put_json("doc.json", big_a)
        seen, stop = [], threading.Event()

        def reader():
            while not stop.is_set():
                seen.append(backend.store.get_json("doc.json"))

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(20):
                backend.store.put_json("doc.json", big_b if i % 2 == 0 else big_a)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert seen
        assert all(doc in (big_a, big_b) for doc in seen)  # never None, never a torn document

    # -- conditional create --------------------------------------------------------------------

    def test_create_is_exclusive(self, backend):
        assert backend.store.create_json("locks/run.json", {"owner": "first"}) is True
        assert backend.store.create_json("locks/run.json", {"owner": "second"}) is False
        assert backend.store.get_json("locks/run.json") == {"owner": "first"}
        assert backend.store.list_keys("locks/") == ["locks/run.json"]

    def test_create_after_delete_succeeds(self, backend):
        assert backend.store.create_json("locks/run.json", {"owner": "first"})
        backend.store.delete("locks/run.json")
        assert backend.store.create_json("locks/run.json", {"owner": "second"})
        assert backend.store.get_json("locks/run.json") == {"owner": "second"}

    def test_create_does_not_clobber_a_put_document(self, backend):
        backend.store.put_json("locks/run.json", {"owner": "put"})
        assert backend.store.create_json("locks/run.json", {"owner": "create"}) is False
        assert backend.store.get_json("locks/run.json") == {"owner": "put"}

    def test_concurrent_create_has_exactly_one_winner(self, backend):
        barrier = threading.Barrier(8)

        def attempt(i: int) -> bool:
            barrier.wait()
            return backend.store.create_json("locks/race.json", {"owner": i})

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
        assert results.count(True) == 1
        assert backend.store.get_json("locks/race.json") == {"owner": results.index(True)}

    # -- listing and deleting ------------------------------------------------------------------

    def test_list_keys_sorted_and_prefix_filtered(self, backend):
        keys = ["runs/b.json", "runs/a.json", "runs/sub/c.json", "runsx/d.json", "locks/e.json", "top"]
        for key in random.sample(keys, len(keys)):
            backend.store.put_json(key, {"key": key})
        store = backend.store
        assert store.list_keys("") == sorted(keys)
        assert store.list_keys("runs/") == ["runs/a.json", "runs/b.json", "runs/sub/c.json"]
        assert store.list_keys("runs") == ["runs/a.json", "runs/b.json", "runs/sub/c.json", "runsx/d.json"]
        assert store.list_keys("runs/a") == ["runs/a.json"]
        assert store.list_keys("nothing/") == []

    def test_list_keys_on_an_empty_store(self, backend):
        assert backend.store.list_keys("") == []
        assert backend.store.list_keys("runs/") == []

    def test_list_keys_returns_more_than_one_page(self, backend):
        keys = [f"many/{i:05d}.json" for i in range(1100)]  # S3 pages hold 1000 keys
        with ThreadPoolExecutor(backend.io_threads) as pool:
            list(pool.map(lambda k: backend.store.put_json(k, {}), keys))
        backend.store.put_json("other.json", {})
        assert backend.store.list_keys("many/") == keys

    def test_delete(self, backend):
        backend.store.put_json("runs/x.json", {})
        backend.store.delete("runs/x.json")
        assert backend.store.get_json("runs/x.json") is None
        assert backend.store.list_keys("") == []
        backend.store.delete("runs/x.json")  # absent is fine
        backend.store.delete("never/was.json")

    # -- keys are checked before any I/O -------------------------------------------------------

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_invalid_keys_are_rejected_before_io(self, backend, key):
        store = backend.unreachable  # any I/O here would raise a DrError or return None, not ValueError
        with pytest.raises(ValueError):
            store.put_json(key, {})
        with pytest.raises(ValueError):
            store.get_json(key)
        with pytest.raises(ValueError):
            store.create_json(key, {})
        with pytest.raises(ValueError):
            store.delete(key)

    @pytest.mark.parametrize("prefix", ["/runs", "../", "runs//", "a b/"])
    def test_invalid_list_prefixes_are_rejected_before_io(self, backend, prefix):
        with pytest.raises(ValueError):
            backend.unreachable.list_keys(prefix)

    def test_non_json_documents_are_rejected(self, backend):
        with pytest.raises(TypeError):
            backend.store.put_json("x.json", {"when": datetime.now(timezone.utc)})
        with pytest.raises(ValueError):
            backend.store.put_json("x.json", {"nan": float("nan")})
        assert backend.store.get_json("x.json") is None

    # -- run records ---------------------------------------------------------------------------

    def test_run_record_save_load_round_trip(self, backend):
        runs = RunStore(backend.store)
        record = _record("backup", T0, command="dr backup run --only rds", dr_version="0.1.0",
                         plan=[{"action": "snapshot", "name": "app-db"}])
        record.status = "running"
        runs.save(record)
        assert runs.load(record.run_id) == record

        record.results.append(ResourceResult(
            name="app-db", kind="rds-instance", status="completed", started_at=iso(T0),
            finished_at=iso(T0 + timedelta(minutes=3)),
            steps=[StepRecord(name="snapshot", status="completed", started_at=iso(T0), detail="d")],
            recovery_points=[{"id": "snap-1", "region": "us-west-2", "arn": "arn:x", "created": iso(T0),
                              "kms_key_id": "arn:k", "role": "copy"}],
        ))
        record.status, record.finished_at = "completed", iso(T0 + timedelta(minutes=4))
        runs.save(record)  # saved again as it changes: replaced, not duplicated
        loaded = runs.load(record.run_id)
        assert loaded == record
        assert isinstance(loaded.results[0], ResourceResult)
        assert isinstance(loaded.results[0].steps[0], StepRecord)
        assert backend.store.list_keys("runs/") == [f"runs/{record.run_id}.json"]

    def test_run_list_newest_first_with_kind_filter_and_limit(self, backend):
        runs = RunStore(backend.store)
        made = [_record("backup", T0 + timedelta(hours=h)) for h in (3, 0, 5, 1)]
        made += [_record("prune", T0 + timedelta(hours=h)) for h in (2, 4)]
        made += [_record("backup-verify", T0 + timedelta(hours=6))]  # "backup-" prefix, other kind
        for record in random.sample(made, len(made)):
            runs.save(record)

        def hours(records):
            return [(r.kind, int((datetime.fromisoformat(r.started_at) - T0).total_seconds() // 3600))
                    for r in records]

        assert hours(runs.list()) == [("backup-verify", 6), ("backup", 5), ("prune", 4), ("backup", 3),
                                      ("prune", 2), ("backup", 1), ("backup", 0)]
        assert hours(runs.list(kind="backup")) == [("backup", 5), ("backup", 3), ("backup", 1), ("backup", 0)]
        assert hours(runs.list(kind="prune", limit=1)) == [("prune", 4)]
        assert hours(runs.list(limit=2)) == [("backup-verify", 6), ("backup", 5)]
        assert runs.list(kind="drill") == []

    def test_run_list_same_second_orders_by_started_at(self, backend):
        runs = RunStore(backend.store)
        first = _record("backup", T0)
        second = _record("backup", T0 + timedelta(microseconds=500_000))
        for record in (second, first):
            runs.save(record)
        assert [r.run_id for r in runs.list()] == [second.run_id, first.run_id]
        assert [r.run_id for r in runs.list(limit=1)] == [second.run_id]

    def test_run_load_missing_is_a_usage_error(self, backend):
        runs = RunStore(backend.store)
        with pytest.raises(UsageError) as info:
            runs.load("backup-20240501T120000Z-abcd")
        message = str(info.value)
        assert "backup-20240501T120000Z-abcd" in message
        assert backend.store.description in message
        assert "dr runs list" in message
        with pytest.raises(UsageError):
            runs.load("../../etc/passwd")
