"""Files written so a crash or a reader never sees half of them, and streams read in full.

`atomic_write` is the one way dr replaces a file: the data goes to a temporary file in the same
directory, is fsynced, renamed over the target (a reader sees the old file or the whole new
one), and the directory is fsynced so the new name survives a power cut. `write_temp` is its
first half for callers that put the file in place themselves (under a lock, or with a link so
an existing file is never replaced). `read_exactly` reads n bytes from a stream that may return
short reads (a pipe, a socket, a raw file).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path | str) -> None:
    """Make new directory entries durable (best effort: not every OS or filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(directory: Path | str, data: bytes, *, prefix: str, mode: int = 0o600) -> str:
    """A new temporary file in `directory` holding `data`, fsynced; its path. Removed again if
    writing fails."""
    fd, temp = tempfile.mkstemp(prefix=prefix, dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode != 0o600:
            os.chmod(temp, mode)
    except BaseException:
        _unlink(temp)
        raise
    return temp


def atomic_write(path: Path | str, data: bytes, *, mode: int = 0o600, prefix: str | None = None) -> None:
    """Replace `path` with `data` all at once: temp file, fsync, rename, directory fsync. The
    directory must exist; OSError passes through (the temporary file is removed)."""
    path = Path(path)
    temp = write_temp(path.parent, data, prefix=prefix or f".{path.name}.", mode=mode)
    try:
        os.replace(temp, path)
    except BaseException:
        _unlink(temp)
        raise
    fsync_dir(path.parent)


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    """n bytes, or fewer only at the end of the stream (a raw stream may return short reads)."""
    data = stream.read(n) or b""
    if len(data) >= n or not data:
        return bytes(data)
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
