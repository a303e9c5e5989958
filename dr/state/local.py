"""LocalStore: the state store as a directory of JSON files (`state: {path: ./.dr-state}`).

Writes go to a temp file (named `.tmp-…`) in the target's directory, are fsynced, and then
appear in one step: `os.replace` for put_json (atomic replace), `os.link` for create_json
(atomic and exclusive: it fails if the name exists). A crash before that step leaves only a
temp file, which list_keys ignores. Directories are 0700 and files 0600: run records can name
resources and hosts.

Compare-and-swap (put_json_if) must compare and rename as one step, across threads and processes:
every write (put_json, create_json, put_json_if, delete) renames or unlinks while holding an
exclusive `fcntl.flock` on `<root>/.tmp-lock` (LOCK_FILE). The name is in the reserved temp
namespace, so it can be no key and list_keys never returns it; it is never deleted (a lock on an
unlinked file would lock nothing). Each operation opens its own descriptor, so threads of one
process exclude each other as processes do. The slow part, writing and fsyncing the temp file,
happens before the lock is taken. Readers take no lock: files are never changed in place.

A version is `<inode>-<mtime_ns>-<sha256 of the bytes>` (hex; `_version`). The digest makes equal
versions mean equal bytes. Inode and mtime make a rewrite of identical bytes a new version: every
write renames in a new file, made while the file it replaces still exists, so its inode differs
from the replaced one. (An older version can come back only if a freed inode is reused within one
timestamp tick with the same bytes, which is harmless: the CAS then replaces exactly what its
caller read.) get_json_versioned reads the bytes and fstat()s the same open file, so the document
and the version always belong together.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dr.errors import OperationFailed
from dr.files import fsync_dir, write_temp
from dr.state.base import (TEMP_PREFIX, decode_document, encode_document, validate_key, validate_prefix,
                           validate_version)

LOCK_FILE = TEMP_PREFIX + "lock"  # in the root; mkstemp's names (.tmp-XXXXXXXX) are longer


class LocalStore:
    def __init__(self, root: Path | str):
        self.root = Path(root).absolute()
        self.description = f"local directory {self.root}"

    # -- the contract -----------------------------------------------------------------------

    def put_json(self, key: str, document: Mapping[str, Any]) -> None:
        path = self._path(key)
        data = encode_document(document)
        with self._io("write", path):
            temp = self._write_temp(path.parent, data)
            try:
                with self._locked():
                    os.replace(temp, path)
                    fsync_dir(path.parent)
            except BaseException:
                _unlink(temp)
                raise

    def get_json(self, key: str) -> dict | None:
        path = self._path(key)
        with self._io("read", path):
            try:
                data = path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        return decode_document(data, str(path))

    def create_json(self, key: str, document: Mapping[str, Any]) -> bool:
        return self.put_json_if(key, document, None) is not None

    def get_json_versioned(self, key: str) -> tuple[dict, str] | None:
        path = self._path(key)
        with self._io("read", path):
            found = _read_versioned(path)
        if found is None:
            return None
        data, version = found
        return decode_document(data, str(path)), version

    def put_json_if(self, key: str, document: Mapping[str, Any], version: str | None) -> str | None:
        path = self._path(key)
        validate_version(version)
        data = encode_document(document)
        with self._io("write", path):
            temp = self._write_temp(path.parent, data)
            try:
                with self._locked():
                    found = _read_versioned(path)
                    if (found[1] if found else None) != version:
                        return None
                    if version is None:
                        try:  # a link is exclusive even if something ignores the lock
                            os.link(temp, path)
                        except FileExistsError:  # e.g. a folder of that name
                            return None
                    else:
                        os.replace(temp, path)
                    fsync_dir(path.parent)
                    return _version(os.stat(path), data)
            finally:
                _unlink(temp)  # gone already after a replace; the spare name after a link

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names in full; filter the rest by string.
        start = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        return sorted(key for key in self._walk(start) if key.startswith(prefix))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not self.root.is_dir():
            return  # no store yet, so no key (and no lock file to make)
        with self._io("delete", path), self._locked():
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                pass

    # -- helpers ----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _io(self, action: str, path: Path):
        return _os_errors(action, path, self.root)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the store's write lock (see the module docstring); the root must exist."""
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write_temp(self, directory: Path, data: bytes) -> str:
        self._make_dirs(directory)
        return write_temp(directory, data, prefix=TEMP_PREFIX)

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            if directory == self.root:
                break
            directory = directory.parent
        for d in reversed(missing):
            try:
                d.mkdir(mode=0o700, parents=d == self.root)
            except FileExistsError:
                pass  # a concurrent writer made it
            else:
                os.chmod(d, 0o700)  # whatever the umask

    def _walk_error(self, exc: OSError) -> None:
        if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # absent: nothing to list
            raise OperationFailed(f"cannot list state directory {exc.filename}: {exc.strerror}",
                                  hint=f"check the permissions of {self.root}") from exc

    def _walk(self, start: Path) -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(start, onerror=self._walk_error):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    yield name if rel == "." else f"{rel}/{name}"


@contextmanager
def _os_errors(action: str, path: Path, root: Path) -> Iterator[None]:
    """Turn an OSError into a DrError that names the file and the fix."""
    try:
        yield
    except OSError as exc:
        raise OperationFailed(
            f"cannot {action} state file {path}: {exc.strerror or exc}",
            hint=f"check that {root} is a writable directory with free space "
            "(and that no key is both a file and a folder)",
        ) from exc


def _read_versioned(path: Path) -> tuple[bytes, str] | None:
    """The file's bytes and version, both from one open file (None if there is no such file)."""
    try:
        with open(path, "rb") as f:
            return (data := f.read()), _version(os.fstat(f.fileno()), data)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _version(st: os.stat_result, data: bytes) -> str:
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{hashlib.sha256(data).hexdigest()[:32]}"


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
