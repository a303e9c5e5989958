"""Backup files in the DR region: streamed, visible only when complete, never half-written."""

from __future__ import annotations

import os

import pytest

from dr.aws import AwsSession
from dr.backup import destination as dest_mod
from dr.backup.destination import Destination
from dr.errors import OperationFailed

pytestmark = pytest.mark.integration


@pytest.fixture
def s3dest(endpoint, boto, monkeypatch):
    monkeypatch.setattr(dest_mod, "PART_SIZE", 5 * 1024 * 1024)  # S3's minimum part size
    kms = boto("kms", "us-west-2")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    boto("s3", "us-west-2").create_bucket(
        Bucket="acme-dr-backups", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    d = Destination("s3://acme-dr-backups/mysql", AwsSession(endpoint_url=endpoint), "us-west-2", key)
    d.check()
    return d, key, boto("s3", "us-west-2")


def test_s3_stream_is_multipart_encrypted_and_complete_only_on_commit(s3dest):
    d, key, s3 = s3dest
    data = os.urandom(12 * 1024 * 1024 + 7)
    writer = d.open_writer("lamp/b1.dr")
    for i in range(0, len(data), 1 << 20):
        writer.write(data[i:i + (1 << 20)])
    assert s3.list_objects_v2(Bucket="acme-dr-backups").get("KeyCount", 0) == 0  # not visible yet
    writer.commit()
    head = s3.head_object(Bucket="acme-dr-backups", Key="mysql/lamp/b1.dr")
    assert head["ContentLength"] == len(data) and head["SSEKMSKeyId"] == key
    assert head["ETag"].endswith('-3"')  # three parts: streamed, not staged
    assert d.open_reader("lamp/b1.dr").read() == data
    assert d.list("lamp/") == ["lamp/b1.dr"]


def test_s3_failure_leaves_nothing_behind(s3dest):
    d, _, s3 = s3dest
    with pytest.raises(RuntimeError):
        with d.open_writer("lamp/b2.dr") as writer:
            writer.write(os.urandom(6 * 1024 * 1024))
            raise RuntimeError("the MySQL server went away")
    assert s3.list_objects_v2(Bucket="acme-dr-backups").get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket="acme-dr-backups").get("Uploads", []) == []


def test_destination_in_wrong_region_is_refused(endpoint, boto):
    boto("s3", "us-east-1").create_bucket(Bucket="wrong-place")
    d = Destination("s3://wrong-place/x/", AwsSession(endpoint_url=endpoint), "us-west-2")
    with pytest.raises(OperationFailed, match="is in us-east-1, not in the DR region us-west-2"):
        d.check()


def test_file_destination_is_atomic(tmp_path):
    d = Destination(f"file://{tmp_path}/backups")
    d.check()
    with pytest.raises(ValueError):
        with d.open_writer("lamp/b1.dr") as w:
            w.write(b"partial")
            raise ValueError("boom")
    assert d.list("lamp/") == [] and not any((tmp_path / "backups" / "lamp").iterdir())
    with d.open_writer("lamp/b1.dr") as w:
        w.write(b"whole")
    assert d.open_reader("lamp/b1.dr").read() == b"whole"
    assert oct((tmp_path / "backups" / "lamp" / "b1.dr").stat().st_mode & 0o777) == "0o600"
    d.put_json("lamp/b1.manifest.json", {"ok": True})
    assert d.get_json("lamp/b1.manifest.json") == {"ok": True}
    assert d.get_json("lamp/none.json") is None
