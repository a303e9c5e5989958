"""S3Store: the state store in an S3 bucket in the DR region (`state: {bucket: acme-dr-state}`).

A PutObject is atomic (the object appears whole or not at all), so put_json is one PUT.
Compare-and-swap is S3's conditional write, which S3 evaluates atomically (one writer wins; a
loser gets 412 PreconditionFailed, or 409 ConditionalRequestConflict while a competing write is
in flight): the version is the object's ETag (from GetObject, with the body, so they belong
together), put_json_if is a PUT with `If-Match: <etag>` (or `If-None-Match: *` for "only if
absent", which is also create_json) and returns the ETag of the new object. An If-Match on a
missing key is 404 NoSuchKey: also a lost race. The ETag is the MD5 of the body unless SSE-KMS is
used, so rewriting identical bytes may keep the version (see dr.state.base).
The boto3 client comes from the caller (dr.aws is the one place clients are made).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dr.errors import AwsError
from dr.state.base import decode_document, encode_document, validate_key, validate_prefix, validate_version

IAM_ACTIONS = "s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject"
_NOT_FOUND = ("NoSuchBucket", "404", "NotFound")
_DENIED = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")
_CAS_LOST = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class S3Store:
    def __init__(self, client, bucket: str, prefix: str = "", kms_key_id: str | None = None,
                 region: str | None = None):
        self.client = client
        self.bucket = bucket
        self.prefix = "/".join(part for part in prefix.split("/") if part)
        if self.prefix:
            validate_key(self.prefix)
        self.kms_key_id = kms_key_id
        self.region = region or client.meta.region_name
        where = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.description = f"{where} ({self.region})"

    # -- the contract -----------------------------------------------------------------------

    def put_json(self, key: str, document: Mapping[str, Any]) -> None:
        self._put(key, document)

    def get_json(self, key: str) -> dict | None:
        found = self._get(key)
        return found[0] if found else None

    def create_json(self, key: str, document: Mapping[str, Any]) -> bool:
        try:
            self._put(key, document, IfNoneMatch="*")
        except _LostRace:
            return False
        return True

    def get_json_versioned(self, key: str) -> tuple[dict, str] | None:
        found = self._get(key)
        return (found[0], self._etag(found[1], key)) if found else None

    def put_json_if(self, key: str, document: Mapping[str, Any], version: str | None) -> str | None:
        condition = {"IfNoneMatch": "*"} if validate_version(version) is None else {"IfMatch": version}
        try:
            response = self._put(key, document, **condition)
        except _LostRace:
            return None
        return self._etag(response, key)

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix
            ):
                keys.extend(obj["Key"][len(base):] for obj in page.get("Contents", ()))
        except ClientError as exc:
            raise self._error(exc, "list", base + prefix) from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, "list", base + prefix) from exc
        return sorted(keys)

    def delete(self, key: str) -> None:
        full = self._full(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _code(exc) not in ("NoSuchKey", "404"):
                raise self._error(exc, "delete", full) from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, "delete", full) from exc

    def check(self) -> None:
        """Fail with a clear DrError unless the bucket exists, is reachable, and is in `region`."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            location = self.client.get_bucket_location(Bucket=self.bucket).get("LocationConstraint")
        except ClientError as exc:
            raise self._error(exc, "check", None) from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, "check", None) from exc
        actual = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
        if self.region and actual != self.region:
            raise AwsError(
                f"state bucket {self.bucket} is in {actual}, not {self.region}",
                code="WrongRegion",
                hint=f"keep the state in the DR region: use a bucket in {self.region} "
                "(the terraform foundation module creates one) or set the state region to match",
            )

    # -- helpers ----------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _get(self, key: str) -> tuple[dict, dict] | None:
        """The document and the GetObject response it came in (None if there is no such key)."""
        full = self._full(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=full)
            data = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, "read", full) from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, "read", full) from exc
        return decode_document(data, f"s3://{self.bucket}/{full}"), response

    def _put(self, key: str, document: Mapping[str, Any], **extra: str) -> dict:
        """One PutObject, returning its response; a conditional one that loses raises _LostRace."""
        full = self._full(key)
        body = encode_document(document)
        lost: tuple[str, ...] = ()  # only a conditional write can lose
        if extra:
            lost = _CAS_LOST + (("NoSuchKey",) if "IfMatch" in extra else ())
        if self.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        try:
            return self.client.put_object(Bucket=self.bucket, Key=full, Body=body,
                                          ContentType="application/json", **extra)
        except ClientError as exc:
            if _code(exc) in lost:
                raise _LostRace() from exc
            raise self._error(exc, "write", full) from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc, "write", full) from exc

    def _etag(self, response: dict, key: str) -> str:
        """The version: S3 always sends an ETag; an endpoint that does not cannot do CAS."""
        if not response.get("ETag"):
            raise AwsError(f"s3://{self.bucket}/{self._full(key)}: the endpoint sent no ETag",
                           code="NoETag", hint="compare-and-swap needs AWS S3 or an endpoint "
                           "that supports conditional writes (If-Match)")
        return response["ETag"]

    def _error(self, exc: ClientError, action: str, key: str | None) -> AwsError:
        code = _code(exc)
        what = f"s3://{self.bucket}/{key}" if key is not None else f"bucket {self.bucket}"
        if code in _NOT_FOUND:
            return AwsError(
                f"state bucket {self.bucket} not found in {self.region}: create it (the terraform "
                "foundation module does) or use state: {path: ./.dr-state}",
                code="NoSuchBucket",
            )
        if code in _DENIED:
            return AwsError(
                f"access denied to {action} {what} in {self.region}",
                code=code,
                hint=f"the state store needs {IAM_ACTIONS} on {self.bucket}"
                + (f" and kms:GenerateDataKey, kms:Decrypt on {self.kms_key_id}" if self.kms_key_id else ""),
            )
        if code.startswith("KMS.") or code == "KMSAccessDenied":
            return AwsError(
                f"cannot {action} {what}: KMS key {self.kms_key_id} refused ({code})",
                code=code,
                hint="check that the key exists in the bucket's region, is enabled, and that "
                "this identity may use it (kms:GenerateDataKey, kms:Decrypt)",
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return AwsError(
            f"cannot {action} {what} in {self.region}: {code}: {message}".rstrip(": "),
            code=code,
            hint="retry; if it persists, check the bucket's policy and the AWS status page",
        )

    def _unreachable(self, exc: BotoCoreError, action: str, key: str | None) -> AwsError:
        what = f"s3://{self.bucket}/{key}" if key is not None else f"bucket {self.bucket}"
        return AwsError(f"cannot {action} {what}: {exc}", code=type(exc).__name__,
                        hint="check the network, the endpoint URL and the credentials")


class _LostRace(Exception):
    """A conditional PUT found another version there (or another conditional write in flight)."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
