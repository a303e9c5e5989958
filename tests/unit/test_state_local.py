"""LocalStore beyond the shared contract (tests/unit/test_state_contract.py): permissions,
crash safety, the bytes on disk, and clear errors."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dr.errors import DrError, OperationFailed
from dr.state import LocalStore


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
