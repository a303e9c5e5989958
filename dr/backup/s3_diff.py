"""Pure: diff two S3 listings as two sorted streams, in constant memory.

S3 lists keys in UTF-8 binary order, which for valid Unicode is code-point order, i.e. Python's
`str` order. A merge-join over the two streams yields one `Change` per key as soon as both sides
have moved past it, so copying starts before listing ends and memory stays flat however many
objects there are.

"Changed" without reading object metadata (no per-object HEAD): an object is in sync when the
sizes match and either the ETags match or the destination was written after the source's last
modification. ETags alone cannot decide: an SSE-KMS copy or a copy made in parts has a different
ETag for the same bytes. A copy is made with CopySourceIfMatch on the listed ETag, and S3 stamps
the copy with the time the request started, so any later change to the source has a newer
LastModified than the copy and is caught by the next run. Equal timestamps (S3 lists whole
seconds) count as changed: one extra copy, never a missed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dr.aws.s3 import ObjectInfo


@dataclass(frozen=True, slots=True)
class Change:
    """`action`: "copy" (new or changed), "same" (in sync), or "extra" (only in the destination)."""

    action: str
    key: str
    source: ObjectInfo | None
    destination: ObjectInfo | None
    reason: str


def in_sync(src: ObjectInfo, dst: ObjectInfo) -> bool:
    if src.size != dst.size:
        return False
    return src.etag == dst.etag or src.last_modified < dst.last_modified


def _why_changed(src: ObjectInfo, dst: ObjectInfo) -> str:
    if src.size != dst.size:
        return f"changed: size {dst.size} -> {src.size}"
    return "changed: modified after the last copy"


def diff(source: Iterable[ObjectInfo], destination: Iterable[ObjectInfo]) -> Iterator[Change]:
    """Merge-join two listings sorted by key. Raises ListingOrderError (a ValueError) if either
    is out of order."""
    src_it, dst_it = _ordered(source, "source"), _ordered(destination, "destination")
    src, dst = next(src_it, None), next(dst_it, None)
    while src is not None or dst is not None:
        if dst is None or (src is not None and src.key < dst.key):
            yield Change("copy", src.key, src, None, "new")
            src = next(src_it, None)
        elif src is None or dst.key < src.key:
            yield Change("extra", dst.key, None, dst, "only in the destination")
            dst = next(dst_it, None)
        else:
            if in_sync(src, dst):
                yield Change("same", src.key, src, dst, "in sync")
            else:
                yield Change("copy", src.key, src, dst, _why_changed(src, dst))
            src, dst = next(src_it, None), next(dst_it, None)


class ListingOrderError(ValueError):
    """A listing not strictly in S3 key order (UTF-8 byte order, each key once): the diff of
    anything after it would be wrong, so it stops there."""


def _ordered(items: Iterable[ObjectInfo], side: str) -> Iterator[ObjectInfo]:
    previous = None
    for item in items:
        if previous is not None and item.key <= previous:
            raise ListingOrderError(f"the {side} listing is not in S3 key order at {item.key!r} "
                             f"(after {previous!r})")
        previous = item.key
        yield item
