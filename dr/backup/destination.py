"""Where backup files go: an S3 bucket in the DR region, or a local directory.

A backup file is written as a stream (never staged whole on disk or in memory) and only becomes
visible when it is complete: S3 through a multipart upload completed on `commit()` (aborted on
failure), a directory through a temp file renamed on `commit()` (removed on failure). So a failed
run never leaves an object that could pass for a good backup.

A write that fails (a full disk, a quota, a read-only mount) removes the temp file *before*
anything else (closing it would flush again into the full disk) and raises `DestinationWriteError`,
which says what failed, where, how much was written and what to do. What a process killed
mid-write leaves (`<name>.partial-<hex>` files, unfinished multipart uploads) is listed by
`unfinished()` and removed by `discard()`; dr.backup.cleanup decides which are stale.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from dr.aws import AwsSession, aws_call
from dr.errors import AwsError, ConfigError, DrError, OperationFailed

PART_SIZE = 16 * 1024**2
PARTS_IN_FLIGHT = 2
PARTIAL_MARK = ".partial-"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DestinationWriteError(OperationFailed):
    """Writing a backup file failed; the partial file is already gone."""

    def __init__(self, message: str, *, hint: str | None = None, no_space: bool = False,
                 written: int = 0):
        super().__init__(message, hint=hint)
        self.no_space = no_space
        self.written = written


@dataclass(frozen=True)
class Unfinished:
    """A write that never completed: a `.partial-` file or an S3 multipart upload."""

    name: str  # the file it would have become, relative to the destination
    token: str  # the partial file's name, or the upload id
    started: datetime | None  # the file's last change, or when the upload was initiated
    where: str  # for messages

    def to_dict(self) -> dict:
        return {"name": self.name, "token": self.token, "where": self.where,
                "started": self.started.isoformat() if self.started else None}


class Destination:
    """`s3://bucket/prefix/` (in the DR region, SSE-KMS with the DR key) or `file:///path`."""

    def __init__(self, url: str, session: AwsSession | None = None, region: str | None = None,
                 kms_key_arn: str | None = None):
        self.url = url
        parsed = urlparse(url)
        self.scheme = parsed.scheme
        if parsed.scheme == "s3":
            if session is None or region is None:
                raise ConfigError(f"{url}: an s3 destination needs AWS access")
            self.bucket, self.prefix = parsed.netloc, parsed.path.lstrip("/")
            if self.prefix and not self.prefix.endswith("/"):
                self.prefix += "/"
            self.region, self.kms_key_arn = region, kms_key_arn
            self.client = session.client("s3", region)
            self.session = session
        elif parsed.scheme == "file":
            self.root = Path(unquote(parsed.path))
        else:
            raise ConfigError(f"{url}: expected s3://BUCKET/PREFIX/ or file:///PATH")

    # -- checks

    def check(self) -> None:
        """The bucket exists in the DR region (s3), or the directory can be created (file)."""
        if self.scheme == "file":
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            return
        from dr.backup.s3 import bucket_region

        actual = bucket_region(self.session, self.bucket, self.region, "destination")
        if actual != self.region:
            raise OperationFailed(f"destination bucket {self.bucket} is in {actual}, not in the DR "
                                  f"region {self.region}", hint="create it in the DR region")

    # -- streams

    def open_writer(self, name: str,
                    expected_bytes: int | Callable[[], int | None] | None = None) -> BackupWriter:
        """A writer for `name`. `expected_bytes` (a size, or a function asked only if a write
        fails, e.g. for the previous backup's size) says how much space a failed write needed."""
        if self.scheme == "file":
            return _FileWriter(self.root / name, expected_bytes)
        return _S3Writer(self.client, self.bucket, self.prefix + name, self.kms_key_arn,
                         self.region)

    def open_reader(self, name: str) -> BinaryIO:
        if self.scheme == "file":
            try:
                return open(self.root / name, "rb")
            except FileNotFoundError:
                raise OperationFailed(f"backup file {self.root / name} not found") from None
        resp = aws_call(self.client.get_object, Bucket=self.bucket, Key=self.prefix + name,
                        action="reading", resource=f"s3://{self.bucket}/{self.prefix}{name}",
                        region=self.region)
        return resp["Body"]

    # -- small documents (manifests) and listing

    def put_json(self, name: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, indent=1, sort_keys=True).encode()
        with self.open_writer(name, expected_bytes=len(body)) as writer:
            writer.write(body)

    def get_json(self, name: str) -> dict[str, Any] | None:
        try:
            with self.open_reader(name) as reader:
                return json.loads(reader.read())
        except OperationFailed:
            return None
        except AwsError as exc:
            if exc.code in ("NoSuchKey", "404"):
                return None
            raise

    def list(self, prefix: str) -> list[str]:
        """Names under prefix (relative to the destination), sorted."""
        if self.scheme == "file":
            base = self.root / prefix
            if not base.is_dir():
                return []
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*")
                          if p.is_file() and PARTIAL_MARK not in p.name)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            return sorted(o["Key"][len(self.prefix):] for p in pages for o in p.get("Contents", []))
        except Exception as exc:
            from dr.aws import is_client_error, translate

            if is_client_error(exc):
                raise translate(exc, action="listing", resource=f"s3://{self.bucket}/{self.prefix}",
                                region=self.region) from exc
            raise

    def delete(self, name: str) -> None:
        if self.scheme == "file":
            (self.root / name).unlink(missing_ok=True)
            return
        aws_call(self.client.delete_object, Bucket=self.bucket, Key=self.prefix + name,
                 action="deleting", resource=f"s3://{self.bucket}/{self.prefix}{name}",
                 region=self.region)

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}" if self.scheme == "s3" \
            else str(self.root / name)

    # -- what interrupted writes left

    def unfinished(self, prefix: str) -> list[Unfinished]:
        """Writes under `prefix` that never completed: `.partial-` files (file) or multipart
        uploads (s3), including those of writes still in progress (the caller decides)."""
        if self.scheme == "file":
            base = self.root / prefix
            if not base.is_dir():
                return []
            found = []
            for p in sorted(base.rglob(f"*{PARTIAL_MARK}*")):
                try:
                    st = p.stat()
                except FileNotFoundError:  # finished (renamed) or removed meanwhile
                    continue
                if not p.is_file():
                    continue
                final = p.name[:p.name.rindex(PARTIAL_MARK)]
                found.append(Unfinished(
                    str(p.with_name(final).relative_to(self.root)), p.name,
                    datetime.fromtimestamp(st.st_mtime, timezone.utc), str(p)))
            return found
        found, kwargs = [], {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        where = dict(action="listing unfinished uploads in", resource=f"s3://{self.bucket}/"
                     f"{self.prefix}{prefix}", region=self.region)
        while True:
            resp = aws_call(self.client.list_multipart_uploads, **kwargs, **where)
            for u in resp.get("Uploads", []):
                started = u.get("Initiated")
                found.append(Unfinished(
                    u["Key"][len(self.prefix):], u["UploadId"],
                    started.astimezone(timezone.utc) if isinstance(started, datetime) else None,
                    f"s3://{self.bucket}/{u['Key']} (upload {u['UploadId'][:16]}…)"))
            if not resp.get("IsTruncated"):
                return found
            kwargs.update(KeyMarker=resp.get("NextKeyMarker", ""),
                          UploadIdMarker=resp.get("NextUploadIdMarker", ""))

    def discard(self, item: Unfinished) -> None:
        """Remove a partial file / abort a multipart upload (gone already: nothing to do)."""
        if self.scheme == "file":
            (self.root / item.name).with_name(item.token).unlink(missing_ok=True)
            return
        try:
            aws_call(self.client.abort_multipart_upload, Bucket=self.bucket,
                     Key=self.prefix + item.name, UploadId=item.token, action="aborting the upload of",
                     resource=f"s3://{self.bucket}/{self.prefix}{item.name}", region=self.region)
        except AwsError as exc:
            if exc.code != "NoSuchUpload":
                raise


class BackupWriter:
    """A write-only stream that becomes visible on commit() and vanishes on abort()."""

    bytes_written = 0
    failure: DrError | None = None  # the first write error, when the writer keeps it

    def write(self, data) -> int:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class _FileWriter(BackupWriter):
    """A temp file next to the target, renamed on commit. Any OSError removes the temp file
    first (closing a file on a full disk flushes into it again and fails again) and comes out
    as DestinationWriteError; `failure` keeps it, for callers whose wrappers raise over it."""

    def __init__(self, path: Path, expected_bytes: int | Callable[[], int | None] | None = None):
        self.path, self.expected = path, expected_bytes
        self.bytes_written = 0
        self.failure: DestinationWriteError | None = None
        self.tmp = path.with_name(f"{path.name}{PARTIAL_MARK}{secrets.token_hex(4)}")
        self.file = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise self._failed(exc, "creating") from None
        self.file = os.fdopen(fd, "wb")

    def write(self, data) -> int:
        if self.failure is not None:
            raise self.failure
        try:
            n = self.file.write(data)
        except OSError as exc:
            raise self._failed(exc, "writing") from None
        self.bytes_written += n
        return n

    def commit(self) -> None:
        if self.failure is not None:
            raise self.failure
        try:
            self.file.flush()
            os.fsync(self.file.fileno())  # a full disk or quota may only show here (NFS, XFS)
            self.file.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise self._failed(exc, "finishing") from None
        from dr.files import fsync_dir

        fsync_dir(self.path.parent)

    def abort(self) -> None:
        self._remove()

    def _remove(self) -> None:
        """Unlink first, then close without caring: the space comes back either way."""
        try:
            self.tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if self.file is not None and not self.file.closed:
            try:
                self.file.close()  # flushes into the full disk again: fails, but closes the fd
            except OSError:
                pass

    def _failed(self, exc: OSError, doing: str) -> DestinationWriteError:
        written = self.bytes_written
        if self.file is not None and not self.file.closed:
            try:  # what reached the disk before it filled (the buffer may hold more)
                written = max(written, os.fstat(self.file.fileno()).st_size)
            except OSError:
                pass
        self._remove()
        if self.failure is None:
            self.failure = _write_error(exc, doing, self.path, written, self.expected)
        return self.failure


def _write_error(exc: OSError, doing: str, path: Path, written: int,
                 expected) -> DestinationWriteError:
    """What the user reads when a backup file cannot be written: what, where, how much, the fix."""
    folder = path.parent
    estimate = callable(expected)
    if estimate:
        expected = expected()
    try:
        st = os.statvfs(folder)
        free = f"; {st.f_bavail * st.f_frsize:,} bytes are free there now"
    except OSError:
        free = ""
    if exc.errno in _NO_SPACE:
        what = "no space left" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        if expected and expected > written:
            need = f"about {expected:,} bytes are needed (the size of the newest backup)" \
                if estimate else f"{expected:,} bytes are needed"
        else:
            need = f"more than {max(written, expected or 0):,} bytes are needed"
        return DestinationWriteError(
            f"{what} on the destination {folder} while {doing} {path.name}: {written:,} bytes "
            f"were written, {need}{free}. The partial file was removed: nothing from this attempt "
            "was kept",
            hint=f"free space on the filesystem of {folder} (`df -h {folder}`), apply retention "
                 "(`dr backup prune`), or point destination at a larger disk or an s3:// bucket; "
                 "then run the backup again", no_space=True, written=written)
    reason = exc.strerror or str(exc)
    hint = {errno.EACCES: f"give the user running dr write access to {folder}",
            errno.EPERM: f"give the user running dr write access to {folder}",
            errno.EROFS: f"{folder} is on a read-only filesystem: remount it read-write or choose "
                         "another destination"}.get(exc.errno,
                                                    f"check the disk and the filesystem of {folder}")
    return DestinationWriteError(
        f"cannot write the backup file {path} while {doing} it: {reason} (errno {exc.errno}) "
        f"after {written:,} bytes{free}. The partial file was removed: nothing from this attempt "
        "was kept", hint=hint, written=written)


class _S3Writer(BackupWriter):
    """A streaming multipart upload: PART_SIZE buffers, PARTS_IN_FLIGHT uploads at a time."""

    def __init__(self, client, bucket: str, key: str, kms_key_arn: str | None, region: str):
        self.client, self.bucket, self.key, self.region = client, bucket, key, region
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
        self.where = dict(action="uploading", resource=f"s3://{bucket}/{key}", region=region)
        self.upload_id = aws_call(client.create_multipart_upload, Bucket=bucket, Key=key,
                                  **extra, **self.where)["UploadId"]
        self.buffer = bytearray()
        self.parts: list[dict] = []
        self.pending: deque[Future] = deque()
        self.pool = ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="dr-upload")
        self.lock = threading.Lock()
        self.bytes_written = 0
        self.done = False

    def write(self, data) -> int:
        self.buffer += data
        self.bytes_written += len(data)
        while len(self.buffer) >= PART_SIZE:
            chunk = bytes(self.buffer[:PART_SIZE])
            del self.buffer[:PART_SIZE]
            self._send(chunk)
        return len(data)

    def _send(self, chunk: bytes) -> None:
        while len(self.pending) >= PARTS_IN_FLIGHT:  # bounded memory: wait for the oldest part
            self.parts.append(self.pending.popleft().result())
        number = len(self.parts) + len(self.pending) + 1
        self.pending.append(self.pool.submit(self._upload_part, number, chunk))

    def _upload_part(self, number: int, chunk: bytes) -> dict:
        resp = aws_call(self.client.upload_part, Bucket=self.bucket, Key=self.key,
                        UploadId=self.upload_id, PartNumber=number, Body=chunk, **self.where)
        return {"PartNumber": number, "ETag": resp["ETag"]}

    def commit(self) -> None:
        try:
            if self.buffer or not (self.parts or self.pending):
                self._send(bytes(self.buffer))
                self.buffer.clear()
            while self.pending:
                self.parts.append(self.pending.popleft().result())
            aws_call(self.client.complete_multipart_upload, Bucket=self.bucket, Key=self.key,
                     UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}, **self.where)
            self.done = True
        except BaseException:
            self.abort()
            raise
        finally:
            self.pool.shutdown(wait=True)

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                               UploadId=self.upload_id)
        except Exception:  # noqa: BLE001 - the original error is what the user needs
            pass
