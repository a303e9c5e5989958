"""S3 as dr uses it: bucket checks, listings (with a prefetch thread), objects, server-side copies.

`S3` is one region's S3. Listings come out as `ObjectInfo` in key order; HEAD answers come out as
the HEAD fields dr compares (the content headers, Metadata, ETag, SSE); every error is an
AwsError, translated once (the state store's in its own words: errors.STATE_STORE).
`server_side_copy` is the copy engine's primitive: CopyObject, or UploadPartCopy in parallel
parts above the multipart threshold, never leaving a half-written upload behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from queue import Full, Queue
from typing import Any
from urllib.parse import urlencode

from dr.aws.errors import StoreWhere, aws_call, is_client_error, translate, translate_store
from dr.errors import AwsError, Interrupted


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object of a listing: what the S3 diff compares."""

    key: str
    size: int
    etag: str
    last_modified: datetime


log = logging.getLogger(__name__)

MIN_PART = 5 * 1024**2
MAX_PARTS = 10_000
# What CopyObject keeps with MetadataDirective=COPY (and the multipart copy sets by hand).
HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding",
           "ContentLanguage", "Expires", "WebsiteRedirectLocation")
GONE = ("NoSuchKey", "404", "NotFound")
_CAS_LOST = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


@dataclass(frozen=True)
class Upload:
    """A multipart upload that was started and never completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime | None


class S3:
    """One region's S3."""

    def __init__(self, client: Any, region: str | None = None):
        self.client = client
        self.region = region or client.meta.region_name

    def _where(self, action: str, bucket: str, key: str | None = None) -> dict[str, str]:
        resource = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket}"
        return dict(action=action, resource=resource, region=self.region)

    # -- buckets

    def bucket_region(self, bucket: str, role: str) -> str:
        """The region a bucket lives in, or an AwsError saying it does not exist or cannot be read."""
        try:
            loc = aws_call(self.client.get_bucket_location, Bucket=bucket, action="locating",
                           resource=f"{role} bucket {bucket}", region=self.region)
        except AwsError as exc:
            if exc.code in ("NoSuchBucket", "404"):
                raise AwsError(f"{role} bucket {bucket} does not exist", code=exc.code,
                               hint=f"create it in {self.region}, or fix s3[].{role} in dr.yaml") from exc
            raise
        return loc.get("LocationConstraint") or "us-east-1"

    def versioning(self, bucket: str) -> str | None:
        """Enabled | Suspended | None (never enabled)."""
        return aws_call(self.client.get_bucket_versioning, Bucket=bucket, action="reading versioning of",
                        resource=f"bucket {bucket}", region=self.region).get("Status")

    def default_encryption(self, bucket: str) -> set[str] | None:
        """The SSE algorithms of the default encryption rules; None when there is none."""
        try:
            enc = aws_call(self.client.get_bucket_encryption, Bucket=bucket, action="reading encryption of",
                           resource=f"bucket {bucket}", region=self.region)
        except AwsError as exc:
            if exc.code != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            return None
        rules = enc["ServerSideEncryptionConfiguration"]["Rules"]
        return {r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}

    # -- listing

    def list_objects(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under prefix, in key order, page by page (a generator: nothing is held)."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["Size"], item["ETag"], item["LastModified"])
        except Exception as exc:
            if is_client_error(exc):
                raise translate(exc, action="listing", resource=f"bucket {bucket}",
                                region=self.region) from exc
            raise

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """The keys under prefix, sorted."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(o["Key"] for p in pages for o in p.get("Contents", []))
        except Exception as exc:
            if is_client_error(exc):
                raise translate(exc, action="listing", resource=f"s3://{bucket}/{prefix}",
                                region=self.region) from exc
            raise

    # -- objects

    def head(self, bucket: str, key: str, if_match: str | None = None) -> dict[str, Any]:
        """HEAD: ContentLength, ETag, LastModified, VersionId, Metadata, HEADERS, SSE fields."""
        extra = {"IfMatch": if_match} if if_match else {}
        resp = aws_call(self.client.head_object, Bucket=bucket, Key=key, **extra,
                        **self._where("reading", bucket, key))
        return {k: v for k, v in resp.items() if k != "ResponseMetadata"}

    def tags(self, bucket: str, key: str) -> dict[str, str]:
        tags = aws_call(self.client.get_object_tagging, Bucket=bucket, Key=key,
                        **self._where("reading tags of", bucket, key))["TagSet"]
        return {t["Key"]: t["Value"] for t in tags}

    def get(self, bucket: str, key: str) -> Any:
        """The object's body: a stream with read()."""
        return aws_call(self.client.get_object, Bucket=bucket, Key=key,
                        **self._where("reading", bucket, key))["Body"]

    def put(self, bucket: str, key: str, body: bytes, kms_key_arn: str | None = None, **fields: Any) -> str:
        """PutObject (fields: ContentType, Metadata, Tagging, ...); the new ETag."""
        if kms_key_arn:
            fields.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn)
        return aws_call(self.client.put_object, Bucket=bucket, Key=key, Body=body, **fields,
                        **self._where("writing", bucket, key)).get("ETag", "")

    def delete(self, bucket: str, key: str) -> None:
        aws_call(self.client.delete_object, Bucket=bucket, Key=key, **self._where("deleting", bucket, key))

    # -- multipart

    def start_upload(self, bucket: str, key: str, kms_key_arn: str | None = None,
                     where: dict[str, str] | None = None, **fields: Any) -> str:
        """CreateMultipartUpload (fields: Metadata, Tagging, content headers); the upload id."""
        if kms_key_arn:
            fields.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn)
        return aws_call(self.client.create_multipart_upload, Bucket=bucket, Key=key, **fields,
                        **(where or self._where("uploading", bucket, key)))["UploadId"]

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        return aws_call(self.client.upload_part, Bucket=bucket, Key=key, UploadId=upload_id,
                        PartNumber=number, Body=body, **self._where("uploading", bucket, key))["ETag"]

    def complete_upload(self, bucket: str, key: str, upload_id: str, parts: list[dict],
                        where: dict[str, str] | None = None) -> None:
        aws_call(self.client.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id,
                 MultipartUpload={"Parts": parts}, **(where or self._where("uploading", bucket, key)))

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """Abort; an upload that is gone already is not an error."""
        try:
            aws_call(self.client.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id,
                     **self._where("aborting the upload of", bucket, key))
        except AwsError as exc:
            if exc.code != "NoSuchUpload":
                raise

    def uploads(self, bucket: str, prefix: str) -> list[Upload]:
        """Unfinished multipart uploads under prefix, through all pages."""
        found, kwargs = [], {"Bucket": bucket, "Prefix": prefix}
        where = dict(action="listing unfinished uploads in", resource=f"s3://{bucket}/{prefix}",
                     region=self.region)
        while True:
            resp = aws_call(self.client.list_multipart_uploads, **kwargs, **where)
            for u in resp.get("Uploads", []):
                started = u.get("Initiated")
                found.append(Upload(u["Key"], u["UploadId"], started.astimezone(timezone.utc)
                                    if isinstance(started, datetime) else None))
            if not resp.get("IsTruncated"):
                return found
            kwargs.update(KeyMarker=resp.get("NextKeyMarker", ""),
                          UploadIdMarker=resp.get("NextUploadIdMarker", ""))

    # -- copies (the destination's client does them)

    def copy(self, source_bucket: str, obj: ObjectInfo, bucket: str, kms_key_arn: str) -> str | None:
        """CopyObject of exactly the listed version (If-Match its ETag), metadata and tags kept,
        under the DR key; the source version id."""
        resp = aws_call(
            self.client.copy_object, Bucket=bucket, Key=obj.key,
            CopySource={"Bucket": source_bucket, "Key": obj.key}, CopySourceIfMatch=obj.etag,
            MetadataDirective="COPY", TaggingDirective="COPY",
            ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_arn,
            action="copying", resource=f"s3://{source_bucket}/{obj.key}", region=self.region)
        return resp.get("CopySourceVersionId")

    def copy_part(self, source_bucket: str, obj: ObjectInfo, version: str | None, bucket: str,
                  upload_id: str, number: int, first: int, last: int) -> str:
        source = {"Bucket": source_bucket, "Key": obj.key, **({"VersionId": version} if version else {})}
        resp = aws_call(self.client.upload_part_copy, Bucket=bucket, Key=obj.key, UploadId=upload_id,
                        PartNumber=number, CopySource=source, CopySourceIfMatch=obj.etag,
                        CopySourceRange=f"bytes={first}-{last}", action=f"copying part {number} of",
                        resource=f"s3://{source_bucket}/{obj.key}", region=self.region)
        return resp["CopyPartResult"]["ETag"]

    # -- the state store: its own error wording (errors.STATE_STORE)

    def store_call(self, where: StoreWhere, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:
            if is_client_error(exc):
                raise translate_store(exc, where) from exc
            raise

    def store_get(self, where: StoreWhere) -> tuple[bytes, str | None] | None:
        """(body, ETag) of where.key; None if there is no such key."""
        try:
            response = self.client.get_object(Bucket=where.bucket, Key=where.key)
            return response["Body"].read(), response.get("ETag")
        except Exception as exc:
            if not is_client_error(exc):
                raise
            if _code_of(exc) in ("NoSuchKey", "404"):
                return None
            raise translate_store(exc, where) from exc

    def store_put(self, where: StoreWhere, body: bytes, **extra: str) -> str | None:
        """One PutObject: its ETag; None when a conditional write lost (If-Match/If-None-Match)."""
        lost: tuple[str, ...] = ()  # only a conditional write can lose
        if extra:
            lost = _CAS_LOST + (("NoSuchKey",) if "IfMatch" in extra else ())
        if where.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=where.kms_key_id)
        try:
            response = self.store_call(where, "put_object", Bucket=where.bucket, Key=where.key,
                                       Body=body, ContentType="application/json", **extra)
        except AwsError as exc:
            if _code_of(exc) in lost:
                raise LostRace() from exc
            raise
        return response.get("ETag")

    def store_list(self, where: StoreWhere) -> list[str]:
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=where.bucket, Prefix=where.key):
                keys.extend(obj["Key"] for obj in page.get("Contents", ()))
        except Exception as exc:
            if is_client_error(exc):
                raise translate_store(exc, where) from exc
            raise
        return keys

    def store_delete(self, where: StoreWhere) -> None:
        try:
            self.store_call(where, "delete_object", Bucket=where.bucket, Key=where.key)
        except AwsError as exc:
            if _code_of(exc) not in ("NoSuchKey", "404"):
                raise

    def store_location(self, where: StoreWhere) -> str | None:
        """HeadBucket, then the bucket's LocationConstraint as S3 sends it."""
        self.store_call(where, "head_bucket", Bucket=where.bucket)
        return self.store_call(where, "get_bucket_location", Bucket=where.bucket).get("LocationConstraint")


class LostRace(Exception):
    """A conditional PUT found another version there (or another conditional write in flight)."""


def _code_of(exc: BaseException) -> str:
    """The raw S3 code of a botocore error, or of the one behind a translated state-store error
    (the store's wording may rename it)."""
    raw = exc.__cause__ if isinstance(exc, AwsError) else exc
    return str((getattr(raw, "response", None) or {}).get("Error", {}).get("Code", "")) \
        or getattr(exc, "code", "")


# ---------------------------------------------------------------------------- listing ahead


_END = object()


def prefetch(items: Iterator, depth: int = 2000) -> Iterator:
    """Iterate `items` on a background thread, up to `depth` ahead (about two list pages).

    Errors are re-raised in the consumer; a consumer that stops early lets the thread end."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.2)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(_END)
        except BaseException as exc:  # handed to the consumer
            queue.put(exc)

    threading.Thread(target=produce, name="dr-s3-list", daemon=True).start()
    try:
        while True:
            item = queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# ---------------------------------------------------------------------------- the copy primitive


def part_size_for(size: int) -> int:
    """At least 5 MiB, at most 10,000 parts; about 4 parts for small objects, 64 MiB for big ones."""
    return max(MIN_PART, -(-size // MAX_PARTS), min(64 * 1024**2, -(-size // 4)))


def server_side_copy(src: S3, source_bucket: str, dst: S3, bucket: str, obj: ObjectInfo, kms_key_arn: str,
                     multipart_threshold: int, cancel: threading.Event) -> tuple[str | None, datetime]:
    """Copy `obj` exactly as listed (its ETag) into `bucket` under the DR key.

    Returns (source version id, source LastModified of what was copied)."""
    if obj.size <= multipart_threshold:
        return dst.copy(source_bucket, obj, bucket, kms_key_arn), obj.last_modified
    head = src.head(source_bucket, obj.key, if_match=obj.etag)
    tags = src.tags(source_bucket, obj.key)
    headers = {k: head[k] for k in HEADERS if head.get(k) is not None}
    metadata = dict(head.get("Metadata", {}))
    metadata["dr-source-etag"] = obj.etag.strip('"')
    if head.get("VersionId"):
        metadata["dr-source-version"] = head["VersionId"]
    where = dict(action="copying in parts", resource=f"s3://{source_bucket}/{obj.key}", region=dst.region)
    upload_id = dst.start_upload(bucket, obj.key, kms_key_arn, where, Metadata=metadata,
                                 Tagging=urlencode(tags), **headers)
    try:
        parts = _copy_parts(dst, source_bucket, bucket, obj, upload_id, head.get("VersionId"), cancel)
        dst.complete_upload(bucket, obj.key, upload_id, parts, where)
    except BaseException:
        # Never leave a half-written object behind (an incomplete upload is invisible, but
        # costs money until aborted).
        try:
            dst.abort_upload(bucket, obj.key, upload_id)
        except Exception:  # noqa: BLE001 - the original error matters more
            log.warning("could not abort multipart upload %s of %s", upload_id, obj.key)
        raise
    return head.get("VersionId"), head["LastModified"]


def _copy_parts(dst: S3, source_bucket: str, bucket: str, obj: ObjectInfo, upload_id: str,
                version: str | None, cancel: threading.Event) -> list[dict]:
    part_size = part_size_for(obj.size)
    ranges = [(n + 1, start, min(start + part_size, obj.size) - 1)
              for n, start in enumerate(range(0, obj.size, part_size))]

    def one(part: tuple[int, int, int]) -> dict:
        number, first, last = part
        if cancel.is_set():
            raise Interrupted(f"interrupted copying {obj.key}")
        etag = dst.copy_part(source_bucket, obj, version, bucket, upload_id, number, first, last)
        return {"PartNumber": number, "ETag": etag}

    with ThreadPoolExecutor(max_workers=min(4, len(ranges)), thread_name_prefix="dr-s3-part") as pool:
        return list(pool.map(one, ranges))
