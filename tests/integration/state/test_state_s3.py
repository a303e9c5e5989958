"""S3Store beyond the shared contract (tests/unit/state/test_state_contract.py runs that against S3
too): KMS encryption, the bytes stored, prefixes, and `check()` on the moto server."""

from __future__ import annotations

import json

import pytest

from dr.errors import AwsError, DrError
from dr.state import S3Store

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

REGION = "us-west-2"
BUCKET = "acme-dr-state"


@pytest.fixture
def s3(boto):
    client = boto("s3", REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


@pytest.fixture
def key_arn(boto):
    return boto("kms", REGION).create_key(Description="dr state")["KeyMetadata"]["Arn"]


def test_documents_are_encrypted_with_the_given_kms_key(s3, key_arn):
    store = S3Store(s3, BUCKET, prefix="state", kms_key_id=key_arn, region=REGION)
    store.put_json("runs/a.json", {"a": 1})
    assert store.create_json("locks/b.json", {"b": 2})
    for key in ("state/runs/a.json", "state/locks/b.json"):
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_arn
        assert head["ContentType"] == "application/json"
    assert store.get_json("runs/a.json") == {"a": 1}


def test_without_a_kms_key_no_sse_kms_is_requested(s3):
    store = S3Store(s3, BUCKET, region=REGION)
    store.put_json("x.json", {})
    assert s3.head_object(Bucket=BUCKET, Key="x.json").get("ServerSideEncryption") != "aws:kms"


def test_body_is_sorted_utf8_json(s3):
    S3Store(s3, BUCKET).put_json("x.json", {"b": "ünï", "a": 1})
    raw = s3.get_object(Bucket=BUCKET, Key="x.json")["Body"].read()
    assert "ünï".encode() in raw
    assert raw.decode().index('"a"') < raw.decode().index('"b"')
    assert json.loads(raw) == {"b": "ünï", "a": 1}


def test_prefix_is_normalised_and_isolates_stores(s3):
    one = S3Store(s3, BUCKET, prefix="/dr//one/", region=REGION)
    two = S3Store(s3, BUCKET, prefix="dr/two", region=REGION)
    root = S3Store(s3, BUCKET, region=REGION)
    one.put_json("runs/x.json", {"store": 1})
    two.put_json("runs/x.json", {"store": 2})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [
        "dr/one/runs/x.json", "dr/two/runs/x.json"]
    assert one.list_keys("") == ["runs/x.json"]
    assert one.get_json("runs/x.json") == {"store": 1}
    assert two.get_json("runs/x.json") == {"store": 2}
    assert root.list_keys("dr/") == ["dr/one/runs/x.json", "dr/two/runs/x.json"]
    assert one.description == f"s3://{BUCKET}/dr/one ({REGION})"
    assert root.description == f"s3://{BUCKET} ({REGION})"


def test_prefix_sibling_is_not_listed(s3):
    S3Store(s3, BUCKET, prefix="dr-other").put_json("x.json", {})
    assert S3Store(s3, BUCKET, prefix="dr").list_keys("") == []


def test_region_defaults_to_the_clients(s3):
    assert S3Store(s3, BUCKET).region == REGION


def test_check_passes_for_a_bucket_in_the_region(s3):
    S3Store(s3, BUCKET, region=REGION).check()


def test_check_missing_bucket(boto):
    store = S3Store(boto("s3", REGION), "no-such-state", region=REGION)
    with pytest.raises(DrError) as info:
        store.check()
    assert isinstance(info.value, AwsError) and info.value.code == "NoSuchBucket"
    assert str(info.value) == (
        "state bucket no-such-state not found in us-west-2: create it (the terraform foundation "
        "module does) or use state: {path: ./.dr-state}")


def test_check_bucket_in_another_region(boto):
    east = boto("s3", "us-east-1")
    east.create_bucket(Bucket="east-state")  # no LocationConstraint: us-east-1
    store = S3Store(boto("s3", REGION), "east-state", region=REGION)
    with pytest.raises(AwsError) as info:
        store.check()
    assert "east-state is in us-east-1, not us-west-2" in str(info.value)


def test_check_accepts_us_east_1_when_asked_for_it(boto):
    east = boto("s3", "us-east-1")
    east.create_bucket(Bucket="east-state")
    S3Store(east, "east-state", region="us-east-1").check()


def test_io_on_a_missing_bucket_says_how_to_fix_it(boto):
    store = S3Store(boto("s3", REGION), "no-such-state", region=REGION)
    for call in (lambda: store.get_json("x.json"), lambda: store.put_json("x.json", {}),
                 lambda: store.create_json("x.json", {}), lambda: store.list_keys("")):
        with pytest.raises(AwsError, match="state bucket no-such-state not found in us-west-2"):
            call()
