"""LocalStore beyond the shared contract (tests/unit/state/test_state_contract.py): permissions,
crash safety, the bytes on disk, and clear errors."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dr.errors import DrError, OperationFailed
from dr.state import LocalStore
from dr.state.base import TEMP_PREFIX
from dr.state.local import LOCK_FILE
from tests.support.state_contract import ROUNDS, THREADS, assert_no_lost_update, increment_with_cas


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """Run with umask 0, so the modes checked are the ones the store sets, not the umask's."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_root_is_made_0700_on_first_write_and_files_are_0600(tmp_path, open_umask):
    root = tmp_path / "deep" / ".dr-state"
    store = LocalStore(root)
    assert store.get_json("runs/x.json") is None
    assert store.list_keys("") == []
    assert not root.exists()  # reads create nothing

    store.put_json("runs/x.json", {"a": 1})
    assert store.create_json("locks/run.json", {"b": 2})
    assert _mode(root) == 0o700
    assert _mode(root / "runs") == 0o700
    assert _mode(root / "locks") == 0o700
    assert _mode(root / "runs" / "x.json") == 0o600
    assert _mode(root / "locks" / "run.json") == 0o600


def test_description_names_the_directory(tmp_path):
    assert LocalStore(tmp_path / "s").description == f"local directory {tmp_path / 's'}"


def test_documents_are_sorted_utf8_json(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("x.json", {"b": "ünï", "a": {"d": 1, "c": 2}})
    raw = (tmp_path / "x.json").read_bytes()
    assert "ünï".encode() in raw  # UTF-8, not \u escapes
    text = raw.decode()
    assert text.index('"a"') < text.index('"b"') and text.index('"c"') < text.index('"d"')
    assert json.loads(text) == {"b": "ünï", "a": {"d": 1, "c": 2}}


def test_crash_before_rename_keeps_the_old_document(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    store.put_json("runs/x.json", {"version": 1})

    def crash(src, dst):
        raise KeyboardInterrupt  # dies between the temp write and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put_json("runs/x.json", {"version": 2})
    with pytest.raises(KeyboardInterrupt):
        store.put_json("runs/new.json", {"version": 1})
    monkeypatch.undo()

    assert store.get_json("runs/x.json") == {"version": 1}
    assert store.get_json("runs/new.json") is None
    assert store.list_keys("") == ["runs/x.json"]
    assert sorted(os.listdir(tmp_path / "runs")) == ["x.json"]  # the temp file was cleaned up


def test_rename_failure_is_a_clear_error(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OperationFailed) as info:
        store.put_json("runs/x.json", {})
    assert str(tmp_path / "runs" / "x.json") in str(info.value)
    assert "No space left" in str(info.value)


def test_temp_files_left_by_a_hard_crash_are_invisible(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("runs/x.json", {"version": 1})
    (tmp_path / "runs" / ".tmp-abc123").write_text('{"half": ')  # kill -9 after the temp write
    assert store.list_keys("") == ["runs/x.json"]
    assert store.get_json("runs/x.json") == {"version": 1}


def test_create_crash_before_link_leaves_no_key(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(KeyboardInterrupt):
        store.create_json("locks/run.json", {})
    monkeypatch.undo()
    assert store.list_keys("") == []
    assert os.listdir(tmp_path / "locks") == []
    assert store.create_json("locks/run.json", {})


def test_corrupt_document_names_the_file(tmp_path):
    store = LocalStore(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(OperationFailed, match="bad.json.*not valid JSON"):
        store.get_json("bad.json")
    with pytest.raises(OperationFailed, match="not an object"):
        store.get_json("list.json")


def test_key_that_is_both_file_and_folder_is_a_clear_error(tmp_path):
    # S3 allows "a" and "a/b" side by side; a filesystem does not. Callers use distinct names
    # (documents end in .json), and the store says what happened if they don't.
    store = LocalStore(tmp_path)
    store.put_json("a", {})
    with pytest.raises(DrError, match="cannot write state file"):
        store.put_json("a/b", {})


def test_unwritable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OperationFailed, match="cannot write state file") as info:
        LocalStore(blocker / "state").put_json("x.json", {})
    assert "writable directory" in str(info.value)


# -- compare-and-swap: the lock file and processes --------------------------------------------


def _increment_in_a_process(root: str) -> list[int]:
    """One process of the test below: THREADS // 4 threads of read-increment-CAS (spawned, so
    it shares nothing with the test process but the directory)."""
    store = LocalStore(root)
    with ThreadPoolExecutor(THREADS // 4) as pool:
        return [n for wrote in pool.map(lambda _: increment_with_cas(store, "counter.json", ROUNDS),
                                        range(THREADS // 4)) for n in wrote]


def test_cas_is_atomic_across_processes(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("counter.json", {"n": 0})
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        per_process = pool.map(_increment_in_a_process, [str(tmp_path)] * 4)
    assert all(per_process)  # every process took part and won sometimes
    assert_no_lost_update(store, "counter.json", [n for wrote in per_process for n in wrote], ROUNDS)


def test_the_lock_file_is_reserved_and_never_listed(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("x.json", {})
    assert store.put_json_if("y.json", {}, None)
    store.delete("x.json")
    assert (tmp_path / LOCK_FILE).is_file() and LOCK_FILE.startswith(TEMP_PREFIX)
    assert _mode(tmp_path / LOCK_FILE) & 0o077 == 0
    assert store.list_keys("") == ["y.json"]
    with pytest.raises(ValueError):
        store.get_json(LOCK_FILE)


def test_delete_on_a_store_never_written_makes_nothing(tmp_path):
    LocalStore(tmp_path / "state").delete("runs/x.json")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("write", [
    lambda s: s.put_json("x.json", {"v": 2}),
    lambda s: s.create_json("new.json", {}),
    lambda s: s.put_json_if("x.json", {"v": 2}, s.get_json_versioned("x.json")[1]),
    lambda s: s.delete("x.json"),
], ids=["put_json", "create_json", "put_json_if", "delete"])
def test_every_write_waits_for_the_lock_and_reads_do_not(tmp_path, write):
    """So an unconditional write cannot land between a CAS's compare and its rename."""
    store = LocalStore(tmp_path)
    store.put_json("x.json", {"v": 1})
    version = store.get_json_versioned("x.json")[1]
    done = threading.Event()
    with open(tmp_path / LOCK_FILE, "a") as held:  # another process's CAS, mid-compare
        fcntl.flock(held, fcntl.LOCK_EX)
        writer = threading.Thread(target=lambda: (write(store), done.set()))
        writer.start()
        assert not done.wait(0.3)
        assert store.get_json_versioned("x.json") == ({"v": 1}, version)  # readers go on
        assert store.list_keys("") == ["x.json"]
    writer.join(5)
    assert done.is_set()


def test_versioned_read_takes_bytes_and_version_from_one_file(tmp_path, monkeypatch):
    """A put_json landing between the read and the stat must not pair old bytes with a new version."""
    store = LocalStore(tmp_path)
    store.put_json("x.json", {"v": 1})
    real_fstat, raced = os.fstat, []

    def replace_then_fstat(fd):
        monkeypatch.setattr(os, "fstat", real_fstat)
        store.put_json("x.json", {"v": 2})  # lands after the bytes were read
        raced.append(True)
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", replace_then_fstat)
    doc, stale = store.get_json_versioned("x.json")
    assert raced and doc == {"v": 1}
    assert store.put_json_if("x.json", {"v": 3}, stale) is None  # the version is v1's: stale
    assert store.get_json("x.json") == {"v": 2}


def test_cas_crash_before_the_rename_keeps_the_old_document(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    store.put_json("runs/x.json", {"version": 1})
    version = store.get_json_versioned("runs/x.json")[1]

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put_json_if("runs/x.json", {"version": 2}, version)
    monkeypatch.undo()
    assert store.get_json_versioned("runs/x.json") == ({"version": 1}, version)
    assert sorted(os.listdir(tmp_path / "runs")) == ["x.json"]
    assert store.put_json_if("runs/x.json", {"version": 2}, version)  # the lock was released


def test_cas_on_a_folder_key_loses(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("a/b.json", {})
    assert store.put_json_if("a", {}, None) is None  # a folder is there: no document, no create
    assert store.create_json("a", {}) is False
    assert store.list_keys("") == ["a/b.json"]
