"""`verify --deep`: what a DR copy must keep besides its bytes, compared field by field."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

from dr.backup.s3_deep import Side, differences, sample
from dr.aws.s3 import ObjectInfo

KEY = "arn:aws:kms:us-west-2:123456789012:key/dr"
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


def source(**head):
    return Side({"ContentLength": 5, "ETag": '"abc"', "ContentType": "image/jpeg",
                 "Metadata": {"owner": "ann"}, **head}, {"team": "web"})


def copy(tags=None, **head):
    return Side({"ContentLength": 5, "ETag": '"xyz"', "ContentType": "image/jpeg",
                 "Metadata": {"owner": "ann"}, "ServerSideEncryption": "aws:kms",
                 "SSEKMSKeyId": KEY, **head}, {"team": "web"} if tags is None else tags)


def test_a_faithful_copy_has_no_differences_although_its_etag_differs():
    assert differences(source(), copy(), KEY) == []


def test_the_metadata_dr_adds_to_part_copies_is_not_a_difference_but_a_stale_one_is():
    assert differences(source(), copy(Metadata={"owner": "ann", "dr-source-etag": "abc"}), KEY) == []
    assert differences(source(), copy(Metadata={"owner": "ann", "dr-source-etag": "old"}), KEY) == [
        "copied from source ETag old, the source is now abc"]


def test_each_difference_is_named():
    found = differences(
        source(CacheControl="max-age=60"),
        copy(tags={"team": "ops", "extra": "1"}, ContentLength=6, ContentType="binary/octet-stream",
             Metadata={}, ServerSideEncryption="AES256"), KEY)
    assert found == [
        "size 6 (source 5)",
        "ContentType 'binary/octet-stream' (source 'image/jpeg')",
        "CacheControl None (source 'max-age=60')",
        "metadata missing owner",
        "tags extra extra; different team",
        "encrypted with AES256, not SSE-KMS",
    ]


def test_a_copy_under_another_key_is_named_with_both_keys():
    other = "arn:aws:kms:us-west-2:123456789012:key/other"
    assert differences(source(), copy(SSEKMSKeyId=other), KEY) == [
        f"under KMS key {other}, not the DR key {KEY}"]
    assert differences(source(), copy(ServerSideEncryption=None), KEY) == [
        "encrypted with nothing, not SSE-KMS"]


def test_sample_takes_all_or_a_uniform_sample_in_key_order():
    objs = [ObjectInfo(f"k{i:03d}", 1, '"e"', T0) for i in range(200)]
    assert sample(iter(objs), None) == objs
    assert sample(iter(objs[:3]), 10) == objs[:3]
    got = sample(iter(objs), 10, random.Random(1))
    assert len(got) == 10 and len({o.key for o in got}) == 10
    assert [o.key for o in got] == sorted(o.key for o in got)
    # uniform: over many draws every object is chosen about equally often (10/200 each time)
    counts = Counter(o.key for seed in range(2000) for o in sample(iter(objs), 10, random.Random(seed)))
    assert len(counts) == 200 and max(counts.values()) < 3 * min(counts.values())
