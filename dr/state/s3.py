"""S3Store: the state store in an S3 bucket in the DR region (`state: {bucket: acme-dr-state}`).

A PutObject is atomic (the object appears whole or not at all), so put_json is one PUT.
Compare-and-swap is S3's conditional write, which S3 evaluates atomically (one writer wins; a
loser gets 412 PreconditionFailed, or 409 ConditionalRequestConflict while a competing write is
in flight): the version is the object's ETag (from GetObject, with the body, so they belong
together), put_json_if is a PUT with `If-Match: <etag>` (or `If-None-Match: *` for "only if
absent", which is also create_json) and returns the ETag of the new object. An If-Match on a
missing key is 404 NoSuchKey: also a lost race. The ETag is the MD5 of the body unless SSE-KMS is
used, so rewriting identical bytes may keep the version (see dr.state.base).
S3 itself is dr.aws.s3.S3 (the caller's session.s3(region), or a client, which it wraps); its errors
read as the state store's (dr.aws.errors.STATE_STORE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dr.aws.errors import StoreWhere
from dr.aws.s3 import S3, LostRace
from dr.errors import AwsError
from dr.state.base import decode_document, encode_document, validate_key, validate_prefix, validate_version

class S3Store:
    def __init__(self, client, bucket: str, prefix: str = "", kms_key_id: str | None = None,
                 region: str | None = None):
        self.s3 = client if isinstance(client, S3) else S3(client, region)
        self.bucket = bucket
        self.prefix = "/".join(part for part in prefix.split("/") if part)
        if self.prefix:
            validate_key(self.prefix)
        self.kms_key_id = kms_key_id
        self.region = region or self.s3.region
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
        except LostRace:
            return False
        return True

    def get_json_versioned(self, key: str) -> tuple[dict, str] | None:
        found = self._get(key)
        return (found[0], self._etag(found[1], key)) if found else None

    def put_json_if(self, key: str, document: Mapping[str, Any], version: str | None) -> str | None:
        condition = {"IfNoneMatch": "*"} if validate_version(version) is None else {"IfMatch": version}
        try:
            etag = self._put(key, document, **condition)
        except LostRace:
            return None
        return self._etag(etag, key)

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        keys = self.s3.store_list(self._where("list", base + prefix))
        return sorted(key[len(base):] for key in keys)

    def delete(self, key: str) -> None:
        self.s3.store_delete(self._where("delete", self._full(key)))

    def check(self) -> None:
        """Fail with a clear DrError unless the bucket exists, is reachable, and is in `region`."""
        location = self.s3.store_location(self._where("check", None))
        actual = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
        if self.region and actual != self.region:
            raise AwsError(
                f"state bucket {self.bucket} is in {actual}, not {self.region}",
                code="WrongRegion",
                hint=f"keep the state in the DR region: use a bucket in {self.region} "
                "(the terraform foundation module creates one) or set the state region to match",
            )

    # -- helpers ----------------------------------------------------------------------------

    def _where(self, action: str, key: str | None) -> StoreWhere:
        return StoreWhere(action, self.bucket, key, self.region, self.kms_key_id)

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _get(self, key: str) -> tuple[dict, str | None] | None:
        """The document and the ETag it came with (None if there is no such key)."""
        full = self._full(key)
        found = self.s3.store_get(self._where("read", full))
        if found is None:
            return None
        return decode_document(found[0], f"s3://{self.bucket}/{full}"), found[1]

    def _put(self, key: str, document: Mapping[str, Any], **condition: str) -> str | None:
        """One PutObject, returning its ETag; a conditional one that loses raises LostRace."""
        full = self._full(key)
        return self.s3.store_put(self._where("write", full), encode_document(document), **condition)

    def _etag(self, etag: str | None, key: str) -> str:
        """The version: S3 always sends an ETag; an endpoint that does not cannot do CAS."""
        if not etag:
            raise AwsError(f"s3://{self.bucket}/{self._full(key)}: the endpoint sent no ETag",
                           code="NoETag", hint="compare-and-swap needs AWS S3 or an endpoint "
                           "that supports conditional writes (If-Match)")
        return etag
