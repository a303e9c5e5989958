"""`dr backup verify --deep`: the copy of an object is its bytes *and* what travels with them.

A listing proves the keys and sizes; only HEAD and GetObjectTagging on both sides prove what the
README promises a copy keeps: user metadata, the content headers, the tags, and that the DR copy
is encrypted under the DR key. `differences` is the pure comparison; `check` fetches the two sides
of a sample of in-sync objects (or all of them) in parallel and compares each.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dr.aws import AwsSession
from dr.aws.s3 import GONE, HEADERS, S3
from dr.aws.s3 import ObjectInfo
from dr.config import Config, S3Resource
from dr.errors import AwsError

# User metadata dr itself adds to objects it copies in parts (not the source's).
DR_METADATA = ("dr-source-etag", "dr-source-version")
EXAMPLES = 20


@dataclass(frozen=True)
class Side:
    """One side of an object as HEAD and GetObjectTagging see it."""

    head: dict
    tags: dict[str, str]


def differences(source: Side, copy: Side, dr_key_arn: str) -> list[str]:
    """Each way the DR copy differs from its source, in words (empty: a faithful copy)."""
    src, dst = source.head, copy.head
    found = []
    if src.get("ContentLength") != dst.get("ContentLength"):
        found.append(f"size {dst.get('ContentLength')} (source {src.get('ContentLength')})")
    for name in HEADERS:
        if src.get(name) != dst.get(name):
            found.append(f"{name} {dst.get(name)!r} (source {src.get(name)!r})")
    src_meta = src.get("Metadata") or {}
    dst_meta = {k: v for k, v in (dst.get("Metadata") or {}).items() if k not in DR_METADATA}
    if src_meta != dst_meta:
        found.append(f"metadata {_changed(src_meta, dst_meta)}")
    copied_from = (dst.get("Metadata") or {}).get("dr-source-etag")
    if copied_from is not None and copied_from != str(src.get("ETag", "")).strip('"'):
        found.append(f"copied from source ETag {copied_from}, the source is now "
                     f"{str(src.get('ETag', '')).strip(chr(34))}")
    if source.tags != copy.tags:
        found.append(f"tags {_changed(source.tags, copy.tags)}")
    if dst.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse"):
        found.append(f"encrypted with {dst.get('ServerSideEncryption') or 'nothing'}, not SSE-KMS")
    elif dst.get("SSEKMSKeyId") != dr_key_arn:
        found.append(f"under KMS key {dst.get('SSEKMSKeyId')}, not the DR key {dr_key_arn}")
    return found


def _changed(source: dict, copy: dict) -> str:
    missing = sorted(set(source) - set(copy))
    extra = sorted(set(copy) - set(source))
    other = sorted(k for k in set(source) & set(copy) if source[k] != copy[k])
    parts = ([f"missing {', '.join(missing)}"] if missing else []) \
        + ([f"extra {', '.join(extra)}"] if extra else []) \
        + ([f"different {', '.join(other)}"] if other else [])
    return "; ".join(parts)


def sample(objects: Iterable[ObjectInfo], size: int | None,
           rng: random.Random | None = None) -> list[ObjectInfo]:
    """`size` objects chosen uniformly at random (reservoir sampling: one pass, `size` held), or
    every object when size is None; in key order."""
    if size is None:
        return list(objects)
    rng = rng or random.Random()
    chosen: list[ObjectInfo] = []
    for seen, obj in enumerate(objects):
        if seen < size:
            chosen.append(obj)
        else:
            slot = rng.randrange(seen + 1)
            if slot < size:
                chosen[slot] = obj
    return sorted(chosen, key=lambda o: o.key.encode())


@dataclass
class DeepResult:
    checked: int = 0
    different: int = 0
    skipped: int = 0  # changed or deleted at the source while being checked
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"checked": self.checked, "different": self.different,
                "changed_while_checking": self.skipped, "examples": self.examples}


def check(session: AwsSession, config: Config, resource: S3Resource, objects: list[ObjectInfo],
          dr_key_arn: str) -> DeepResult:
    """HEAD and GetObjectTagging both sides of each listed source object (up to
    resource.concurrency at a time). An object changed or deleted at the source since it was
    listed is counted apart, not as a difference."""
    src, dst = session.s3(config.regions.primary), session.s3(config.regions.dr)

    def one(obj: ObjectInfo) -> list[str] | None:
        source = _side(src, resource.source, obj.key)
        if source is None or source.head.get("ETag") != obj.etag:
            return None
        copy = _side(dst, resource.destination, obj.key)
        if copy is None:
            return ["deleted from the DR bucket while being checked"]
        return differences(source, copy, dr_key_arn)

    result = DeepResult()
    with ThreadPoolExecutor(max_workers=max(1, min(resource.concurrency, 16))) as pool:
        for key, found in zip((o.key for o in objects), pool.map(one, objects)):
            if found is None:
                result.skipped += 1
                continue
            result.checked += 1
            if found:
                result.different += 1
                if len(result.examples) < EXAMPLES:
                    result.examples.append(f"{key}: {'; '.join(found)}")
    return result


def _side(s3: S3, bucket: str, key: str) -> Side | None:
    try:
        return Side(s3.head(bucket, key), s3.tags(bucket, key))
    except AwsError as exc:
        if exc.code in GONE:
            return None
        raise
