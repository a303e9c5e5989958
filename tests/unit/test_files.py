"""dr/files.py: the one atomic write, directory fsync and exact read."""

from __future__ import annotations

import io
import os
import stat

import pytest

from dr import files


class Trickle(io.RawIOBase):
    """A stream that returns at most `step` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return out


def test_read_exactly_gathers_short_reads_and_stops_at_the_end():
    assert files.read_exactly(Trickle(b"abcdefgh", 3), 7) == b"abcdefg"
    assert files.read_exactly(Trickle(b"abc", 2), 5) == b"abc"  # fewer only at the end
    assert files.read_exactly(Trickle(b"", 2), 5) == b""
    assert isinstance(files.read_exactly(io.BytesIO(bytearray(b"xy")), 2), bytes)


def test_atomic_write_replaces_whole_files_with_the_mode_asked_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    files.atomic_write(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    files.atomic_write(target, b"newer")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_atomic_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    target.write_text("old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        files.atomic_write(target, b"new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_write_temp_fsyncs_into_the_directory_and_fsync_dir_is_best_effort(tmp_path):
    temp = files.write_temp(tmp_path, b"data", prefix=".tmp-")
    assert os.path.dirname(temp) == str(tmp_path) and os.path.basename(temp).startswith(".tmp-")
    assert open(temp, "rb").read() == b"data"
    files.fsync_dir(tmp_path)
    files.fsync_dir(tmp_path / "missing")  # no error: durability is best effort
