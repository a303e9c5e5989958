"""Where backup files go: an S3 bucket in the DR region, or a local directory.

A backup file is written as a stream (never staged whole on disk or in memory) and only becomes
visible when it is complete: S3 through a multipart upload completed on `commit()` (aborted on
failure), a directory through a temp file renamed on `commit()` (removed on failure). So a failed
run never leaves an object that could pass for a good backup.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from dr.aws import AwsSession, aws_call
from dr.errors import AwsError, ConfigError, OperationFailed

PART_SIZE = 16 * 1024**2
PARTS_IN_FLIGHT = 2


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

    def open_writer(self, name: str) -> BackupWriter:
        if self.scheme == "file":
            return _FileWriter(self.root / name)
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
        with self.open_writer(name) as writer:
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
                          if p.is_file() and ".partial-" not in p.name)
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


class BackupWriter:
    """A write-only stream that becomes visible on commit() and vanishes on abort()."""

    bytes_written = 0

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
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tmp = path.with_name(f"{path.name}.partial-{secrets.token_hex(4)}")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, "wb")
        self.bytes_written = 0

    def write(self, data) -> int:
        n = self.file.write(data)
        self.bytes_written += n
        return n

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)


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
