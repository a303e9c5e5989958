"""The S3 diff: two sorted streams merged in constant memory; "changed" without reading metadata."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dr.aws.s3 import ObjectInfo
from dr.backup.s3_diff import diff, in_sync

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def obj(key, size=1, etag='"e"', at=T0):
    return ObjectInfo(key, size, etag, at)


def test_merge_join_yields_each_key_once_in_order():
    src = [obj("a"), obj("b"), obj("d")]
    dst = [obj("b"), obj("c"), obj("d", size=2)]
    got = [(c.action, c.key, c.reason) for c in diff(src, dst)]
    assert got == [("copy", "a", "new"), ("same", "b", "in sync"),
                   ("extra", "c", "only in the destination"),
                   ("copy", "d", "changed: size 2 -> 1")]


@pytest.mark.parametrize("src, dst, same", [
    (obj("k"), obj("k"), True),                                              # identical
    (obj("k", etag='"abc"'), obj("k", etag='"def-3"', at=T0 + timedelta(seconds=5)), True),
    # ^ copied in parts (or under SSE-KMS): other ETag, written after the source: in sync
    (obj("k", etag='"abc"', at=T0 + timedelta(seconds=5)), obj("k", etag='"def"'), False),
    # ^ source modified after the copy
    (obj("k", etag='"abc"'), obj("k", etag='"def"'), False),                # same second: recopy
    (obj("k", size=2), obj("k", size=1, at=T0 + timedelta(days=1)), False),  # size differs
])
def test_in_sync(src, dst, same):
    assert in_sync(src, dst) is same


def test_unicode_keys_follow_s3_binary_order():
    keys = sorted(["a", "Z", "é", "日本", "🎉", "a/b", "a//b", "~"], key=lambda k: k.encode())
    assert keys == sorted(keys)  # code-point order == UTF-8 byte order
    changes = list(diff([obj(k) for k in keys], []))
    assert [c.key for c in changes] == keys


def test_out_of_order_listing_is_an_error_not_a_wrong_diff():
    with pytest.raises(ValueError, match="source listing is not in S3 key order at 'a'"):
        list(diff([obj("b"), obj("a")], []))


def test_a_key_listed_twice_fails_the_resource_with_what_and_where():
    """LocalStack 4.14 lists some keys twice at page boundaries: one resource fails, clearly,
    after the changes before that key (the run does not crash)."""
    from dr.backup.s3 import _in_key_order
    from dr.config import S3Resource
    from dr.errors import OperationFailed

    resource = S3Resource("assets", "prod-assets", "dr-assets", prefix="img/")
    changes = _in_key_order(diff([obj("img/a"), obj("img/b"), obj("img/b")], []), resource)
    assert next(changes).key == "img/a"
    with pytest.raises(OperationFailed) as caught:
        list(changes)
    assert "s3://prod-assets/img/ with s3://dr-assets/img/" in str(caught.value)
    assert "not in S3 key order at 'img/b'" in str(caught.value)
    assert "emulator" in caught.value.hint


def test_streams_are_consumed_lazily():
    def endless():
        i = 0
        while True:
            yield obj(f"{i:012d}")
            i += 1

    changes = diff(endless(), iter([]))
    first = [next(changes) for _ in range(5)]
    assert [c.key for c in first] == [f"{i:012d}" for i in range(5)]


def test_prefetch_keeps_order_and_hands_errors_to_the_consumer():
    from dr.aws.s3 import prefetch

    assert list(prefetch(iter(range(5000)), depth=10)) == list(range(5000))

    def failing():
        yield 1
        raise RuntimeError("listing failed on page 2")

    got = prefetch(failing())
    assert next(got) == 1
    with pytest.raises(RuntimeError, match="page 2"):
        next(got)
