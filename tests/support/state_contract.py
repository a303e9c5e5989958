"""The state-store contract: ONE suite of cases that every StateStore backend must pass.

`StateStoreContract` holds the cases; each backend's test module subclasses it and provides a
`backend` fixture (a `Backend`):

* tests/unit/state/test_state_contract.py          LocalStore (pure filesystem, always runs)
* tests/integration/state/test_state_contract_s3.py S3Store on the moto server (marked integration)

The concurrency cases take `race_backend` (by default the same Backend). The S3 runner points it
at `dr.sandbox.server.EmbeddedAws`: plain moto checks a conditional PUT's precondition and then
stores the object without a lock, so two concurrent CAS writes can both win there, which AWS
never allows; the sandbox's fidelity patches are where moto is made to behave like AWS.

Why a helper module rather than one parametrized fixture: `make unit` runs tests/unit without
a marker filter, and unit tests must not need the moto server; a subclass per backend keeps the
S3 half in tests/integration while a new case added here runs against both automatically.
Backend-specific behaviour: tests/unit/state/test_state_local.py, tests/integration/state/test_state_s3.py,
tests/unit/state/test_state_s3_errors.py.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import iso
from dr.errors import UsageError
from dr.state import ResourceResult, RunRecord, RunStore, StateStore, StepRecord, new_run_id


@dataclass
class Backend:
    name: str
    store: StateStore
    unreachable: StateStore  # same backend, pointing where any I/O would fail or find nothing
    io_threads: int = 8
    # Does rewriting identical bytes give a new version? LocalStore: yes. S3: the ETag is the MD5
    # of the body (unless SSE-KMS on AWS; always on moto), so no (see dr.state.base).
    identical_rewrite_changes_version: bool = True


DOC = {"name": "app-db", "n": 3, "ratio": 0.5, "ok": True, "none": None,
       "nested": {"b": [1, "two", {"c": 3}], "a": "ünïcødé ✓"}}

BAD_KEYS = ["", "/runs/x.json", "runs/", "runs//x.json", "../x.json", "runs/../x.json",
            "runs/./x.json", ".", "a b", "a\\b", "ünï", "a:b", "x" * 513,
            "a" * 256, ".tmp-abc", "runs/.tmp-1"]

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
THREADS, ROUNDS = 16, 50


def increment_with_cas(store: StateStore, key: str, rounds: int) -> list[int]:
    """`rounds` read-increment-CAS attempts on the counter {"n": …} at `key` (no retries); returns
    the values this caller's successful CAS calls wrote."""
    wrote = []
    for _ in range(rounds):
        doc, version = store.get_json_versioned(key)
        if store.put_json_if(key, {"n": doc["n"] + 1}, version) is not None:
            wrote.append(doc["n"] + 1)
    return wrote


def assert_no_lost_update(store: StateStore, key: str, written: list[int], rounds: int) -> None:
    """Every successful CAS wrote a different value, 1..len(written), and the counter holds the
    last: no two CAS calls won with the same expected version, none was overwritten.

    Progress: a CAS loses only if another caller's CAS won between its read and its write, and a
    win can make at most one pending attempt of each other caller lose, so at least
    attempts / callers = `rounds` calls must have won (callers making `rounds` attempts each)."""
    assert sorted(written) == list(range(1, len(written) + 1))
    assert store.get_json(key) == {"n": len(written)}
    assert len(written) >= rounds


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

    # -- compare-and-swap ----------------------------------------------------------------------

    @pytest.fixture
    def race_backend(self, backend) -> Backend:
        """The backend for the concurrency cases (see the module docstring)."""
        return backend

    def test_versioned_get_of_a_missing_key_is_none(self, backend):
        assert backend.store.get_json_versioned("locks/none.json") is None
        backend.store.put_json("runs/x.json", {})
        assert backend.store.get_json_versioned("runs") is None  # a "folder" is not a document

    def test_versioned_get_returns_the_document_and_its_version(self, backend):
        backend.store.put_json("locks/a.json", DOC)
        doc, version = backend.store.get_json_versioned("locks/a.json")
        assert doc == DOC
        assert isinstance(version, str) and version
        assert backend.store.get_json_versioned("locks/a.json") == (DOC, version)  # reads change nothing

    def test_version_changes_on_every_put(self, backend):
        store, key = backend.store, "locks/a.json"
        versions = []
        for i in range(3):
            store.put_json(key, {"n": i})
            versions.append(store.get_json_versioned(key)[1])
        versions.append(store.put_json_if(key, {"n": 3}, versions[-1]))
        assert store.get_json_versioned(key) == ({"n": 3}, versions[-1])
        assert len(set(versions)) == 4

        store.put_json(key, {"n": 3})  # the same bytes again
        rewritten = store.get_json_versioned(key)[1]
        again = store.put_json_if(key, {"n": 3}, rewritten)
        assert again and store.get_json_versioned(key) == ({"n": 3}, again)
        if backend.identical_rewrite_changes_version:
            assert len({versions[-1], rewritten, again}) == 3

    def test_cas_with_the_current_version_wins(self, backend):
        store, key = backend.store, "locks/lease.json"
        v1 = store.put_json_if(key, {"owner": "a"}, None)
        assert v1 and store.get_json_versioned(key) == ({"owner": "a"}, v1)
        v2 = store.put_json_if(key, {"owner": "b", "renewed": 1}, v1)
        assert v2 and v2 != v1
        assert store.get_json_versioned(key) == ({"owner": "b", "renewed": 1}, v2)

    def test_cas_with_a_stale_version_loses_and_writes_nothing(self, backend):
        store, key = backend.store, "locks/lease.json"
        v1 = store.put_json_if(key, {"owner": "a"}, None)
        v2 = store.put_json_if(key, {"owner": "b"}, v1)
        assert store.put_json_if(key, {"owner": "c"}, v1) is None
        assert store.get_json_versioned(key) == ({"owner": "b"}, v2)
        store.put_json(key, {"owner": "d"})  # an unconditional write makes every older version stale
        assert store.put_json_if(key, {"owner": "e"}, v2) is None
        assert store.get_json(key) == {"owner": "d"}
        assert store.list_keys("") == [key]

    def test_cas_with_none_creates_only_if_absent(self, backend):
        store, key = backend.store, "locks/lease.json"
        assert store.put_json_if(key, {"owner": "a"}, None)
        assert store.put_json_if(key, {"owner": "b"}, None) is None
        assert store.create_json(key, {"owner": "c"}) is False
        assert store.get_json(key) == {"owner": "a"}
        store.delete(key)
        assert store.put_json_if(key, {"owner": "d"}, None)
        assert store.get_json(key) == {"owner": "d"}
        assert store.create_json("locks/other.json", {})  # create_json is the same condition
        assert store.put_json_if("locks/other.json", {"owner": "e"}, None) is None

    def test_cas_on_a_missing_key_with_a_version_loses(self, backend):
        store, key = backend.store, "locks/lease.json"
        version = store.put_json_if(key, {"owner": "a"}, None)
        store.delete(key)
        assert store.put_json_if(key, {"owner": "b"}, version) is None
        assert store.get_json(key) is None
        assert store.put_json_if("locks/never.json", {"owner": "b"}, version) is None
        assert store.list_keys("") == []

    def test_concurrent_cas_has_exactly_one_winner(self, race_backend):
        store, key = race_backend.store, "locks/lease.json"
        version = store.put_json_if(key, {"owner": None}, None)
        barrier = threading.Barrier(8)

        def attempt(i: int) -> str | None:
            barrier.wait()
            return store.put_json_if(key, {"owner": i}, version)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
        winners = [i for i, result in enumerate(results) if result is not None]
        assert len(winners) == 1
        assert store.get_json_versioned(key) == ({"owner": winners[0]}, results[winners[0]])

    def test_concurrent_read_increment_cas_loses_no_update(self, race_backend):
        store, key = race_backend.store, "counter.json"
        store.put_json(key, {"n": 0})
        with ThreadPoolExecutor(THREADS) as pool:
            per_thread = list(pool.map(lambda _: increment_with_cas(store, key, ROUNDS), range(THREADS)))
        assert_no_lost_update(store, key, [n for wrote in per_thread for n in wrote], ROUNDS)

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
        with pytest.raises(ValueError):
            store.get_json_versioned(key)
        for version in (None, "v1"):
            with pytest.raises(ValueError):
                store.put_json_if(key, {}, version)

    @pytest.mark.parametrize("version", ["", 0, b"v1"])
    def test_invalid_versions_are_rejected_before_io(self, backend, version):
        with pytest.raises(ValueError):  # an empty If-Match would be no condition at all
            backend.unreachable.put_json_if("locks/a.json", {}, version)

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
