"""S3 copies against a moto server process: after each run, look in the DR bucket and check."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from dr.aws import AwsSession
from dr.backup.service import run_backup
from dr.cli import main
from dr.clock import FixedClock
from dr.config import load_config
from dr.context import make_context
from dr.errors import Interrupted
from dr.state.local import LocalStore

from tests.integration.conftest import FakeRaw

pytestmark = [pytest.mark.integration, pytest.mark.localstack]
MiB = 1024 * 1024
SRC, DST = "acme-assets", "acme-assets-dr"
TAGS_BUG = ("a cross-region CopyObject (TaggingDirective COPY) drops the source's tags: "
            "since 4.14 LocalStack looks them up in the destination region's tag store")


def s3_error(status: int, code: str):
    from botocore.awsrequest import AWSResponse

    body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    return AWSResponse("http://injected", status, {}, FakeRaw(body))


class Buckets:
    """A source bucket in us-east-1, a destination in us-west-2, the DR key, a dr.yaml."""

    def __init__(self, endpoint, boto, tmp_path, **s3_options):
        self.endpoint, self.tmp = endpoint, tmp_path
        self.src, self.dst = boto("s3", "us-east-1"), boto("s3", "us-west-2")
        kms = boto("kms", "us-west-2")
        self.key_arn = kms.create_key(Description="dr")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/dr-backups", TargetKeyId=self.key_arn)
        self.src.create_bucket(Bucket=SRC)
        self.dst.create_bucket(Bucket=DST, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        self.config_path = tmp_path / "dr.yaml"
        self.write_config(**s3_options)

    def write_config(self, **options):
        entry = {"name": "assets", "source": SRC, "destination": DST, "schedule": "every 15m",
                 **options}
        self.config_path.write_text(
            "version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
            f"aws: {{endpoint_url: '{self.endpoint}'}}\nobjectives: {{rpo: 1h, rto: 30m}}\n"
            "kms: {dr_key: alias/dr-backups}\n"
            f"state: {{path: '{self.tmp / 'state'}'}}\n"
            f"s3:\n  - {json.dumps(entry)}\n")

    def context(self, clock=None):
        return make_context(load_config(self.config_path), clock=clock)

    def put(self, key, body=b"x", **kw):
        self.src.put_object(Bucket=SRC, Key=key, Body=body, **kw)

    def dst_keys(self):
        pages = self.dst.get_paginator("list_objects_v2").paginate(Bucket=DST)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def dst_body(self, key):
        return self.dst.get_object(Bucket=DST, Key=key)["Body"].read()

    def manifests(self):
        store = LocalStore(self.tmp / "state")
        return [store.get_json(k) for k in store.list_keys("manifests/s3/assets/")]


@pytest.fixture
def buckets(endpoint, boto, tmp_path):
    return Buckets(endpoint, boto, tmp_path)


def count_calls(ctx):
    calls = []
    ctx.aws.boto_session.events.register("before-call.s3", lambda model, **kw: calls.append(model.name))
    return calls


@pytest.mark.localstack_bug(TAGS_BUG, since="4.14")
def test_first_copy_is_server_side_encrypted_with_dr_key_and_keeps_metadata_and_tags(buckets):
    buckets.put("img/a.jpg", b"jpeg-bytes", ContentType="image/jpeg", CacheControl="max-age=60",
                ContentDisposition='attachment; filename="a.jpg"', Metadata={"owner": "ann"},
                Tagging="kind=photo&team=web")
    buckets.put("empty", b"")
    assert main(["--config", str(buckets.config_path), "backup", "run", "--only", "s3"]) == 0
    assert sorted(buckets.dst_keys()) == ["empty", "img/a.jpg"]
    head = buckets.dst.head_object(Bucket=DST, Key="img/a.jpg")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == buckets.key_arn
    assert head["ContentType"] == "image/jpeg" and head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == 'attachment; filename="a.jpg"'
    assert head["Metadata"] == {"owner": "ann"}
    tags = buckets.dst.get_object_tagging(Bucket=DST, Key="img/a.jpg")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"kind": "photo", "team": "web"}
    assert buckets.dst_body("img/a.jpg") == b"jpeg-bytes" and buckets.dst_body("empty") == b""
    (manifest,) = buckets.manifests()
    assert manifest["copied"] == 2 and manifest["copied_bytes"] == 10 and manifest["failed"] == 0
    newest = buckets.src.head_object(Bucket=SRC, Key="empty")["LastModified"]
    assert datetime.fromisoformat(manifest["newest_source_modified"]) >= newest.replace(microsecond=0)


def test_rerun_with_nothing_changed_lists_once_per_page_and_copies_nothing(buckets):
    for i in range(1100):  # two list pages on each side
        buckets.put(f"k/{i:05d}", b"v")
    assert run_backup(buckets.context(), only="s3").record.status == "completed"
    ctx = buckets.context()
    calls = count_calls(ctx)
    outcome = run_backup(ctx, only="s3")
    assert outcome.record.results[0].summary["skipped_in_sync"] == 1100
    assert calls.count("ListObjectsV2") == 4
    assert "CopyObject" not in calls and "HeadObject" not in calls
    assert len(calls) <= 4 + 2  # + locating the two buckets


def test_changed_objects_are_copied_again(buckets):
    buckets.put("a", b"one")
    buckets.put("b", b"same")
    run_backup(buckets.context(), only="s3")
    buckets.put("a", b"one, longer")
    buckets.put("c", b"new")
    ctx = buckets.context()
    calls = count_calls(ctx)
    run_backup(ctx, only="s3")
    assert calls.count("CopyObject") == 2
    assert buckets.dst_body("a") == b"one, longer" and buckets.dst_body("c") == b"new"


@pytest.mark.localstack_bug(TAGS_BUG, only=["5242880-0"], since="4.14")  # part copies keep the tags
@pytest.mark.parametrize("size, parts", [(5 * MiB, 0), (5 * MiB + 1, 2), (12 * MiB + 3, 3)])
def test_multipart_threshold(buckets, size, parts):
    buckets.write_config(multipart_threshold="5MiB")
    body = os.urandom(size)
    buckets.put("big.bin", body, ContentType="application/x-big", Metadata={"m": "1"},
                Tagging="t=1")
    ctx = buckets.context()
    calls = count_calls(ctx)
    assert run_backup(ctx, only="s3").record.status == "completed"
    assert calls.count("UploadPartCopy") == parts
    assert calls.count("CopyObject") == (0 if parts else 1)
    got = buckets.dst_body("big.bin")
    assert len(got) == size and hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
    head = buckets.dst.head_object(Bucket=DST, Key="big.bin")
    assert head["SSEKMSKeyId"] == buckets.key_arn and head["ContentType"] == "application/x-big"
    assert head["Metadata"]["m"] == "1"
    tags = buckets.dst.get_object_tagging(Bucket=DST, Key="big.bin")["TagSet"]
    assert tags == [{"Key": "t", "Value": "1"}]
    if parts:
        assert head["Metadata"]["dr-source-etag"] == \
            buckets.src.head_object(Bucket=SRC, Key="big.bin")["ETag"].strip('"')


def test_part_copy_is_in_sync_on_rerun_although_etags_differ(buckets):
    buckets.write_config(multipart_threshold="5MiB")
    buckets.put("big.bin", os.urandom(6 * MiB))
    time.sleep(1.1)  # S3 lists whole seconds: copy strictly after the source was written
    run_backup(buckets.context(), only="s3")
    src_etag = buckets.src.head_object(Bucket=SRC, Key="big.bin")["ETag"]
    assert buckets.dst.head_object(Bucket=DST, Key="big.bin")["ETag"] != src_etag
    ctx = buckets.context()
    calls = count_calls(ctx)
    run_backup(ctx, only="s3")
    assert "UploadPartCopy" not in calls and "CreateMultipartUpload" not in calls


HOSTILE_KEYS = ["with space.txt", "unicodé/ß/日本語/🎉.png", "plus+sign", "percent%20encoded",
                "question?mark", "hash#tag", "a//b", "../x", "./y", "trailing/", "~tilde",
                "quote'and\"dq", "semi;colon&amp=", "k" * 1024, "zero-byte"]


def test_hostile_keys_and_zero_byte_objects_are_copied_exactly(buckets):
    for key in HOSTILE_KEYS:
        buckets.put(key, b"" if key == "zero-byte" else key.encode())
    assert run_backup(buckets.context(), only="s3").record.status == "completed"
    assert sorted(buckets.dst_keys()) == sorted(HOSTILE_KEYS)
    for key in HOSTILE_KEYS:
        assert buckets.dst_body(key) == (b"" if key == "zero-byte" else key.encode()), key


def test_delete_keep_never_deletes(buckets):
    buckets.put("a")
    buckets.put("b")
    run_backup(buckets.context(), only="s3")
    buckets.src.delete_object(Bucket=SRC, Key="a")
    later = FixedClock(datetime.now(timezone.utc) + timedelta(days=30))
    run_backup(buckets.context(clock=later), only="s3")
    assert sorted(buckets.dst_keys()) == ["a", "b"]


def test_delete_mirror_waits_for_the_grace_period(buckets):
    buckets.write_config(delete="mirror", delete_grace="24h")
    for k in "abc":
        buckets.put(k)
    now = datetime.now(timezone.utc)
    run_backup(buckets.context(clock=FixedClock(now)), only="s3")
    buckets.src.delete_object(Bucket=SRC, Key="a")
    buckets.src.delete_object(Bucket=SRC, Key="b")
    out = run_backup(buckets.context(clock=FixedClock(now + timedelta(hours=1))), only="s3")
    assert out.record.results[0].summary["pending_delete"] == 2
    assert sorted(buckets.dst_keys()) == ["a", "b", "c"]  # a mass deletion does not propagate
    buckets.put("b")  # b comes back: no longer pending
    out = run_backup(buckets.context(clock=FixedClock(now + timedelta(hours=26))), only="s3")
    assert out.record.results[0].summary["deleted"] == 1
    assert sorted(buckets.dst_keys()) == ["b", "c"]


def test_versioned_source_records_the_copied_version(buckets):
    buckets.src.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    buckets.put("doc", b"v1")
    buckets.put("doc", b"v2")
    current = buckets.src.head_object(Bucket=SRC, Key="doc")["VersionId"]
    run_backup(buckets.context(), only="s3")
    assert buckets.dst_body("doc") == b"v2"
    (manifest,) = buckets.manifests()
    assert manifest["copied_sample"][0]["version_id"] == current


def test_missing_destination_fails_before_any_copy(buckets, capsys):
    buckets.put("a")
    buckets.dst.delete_bucket(Bucket=DST)
    assert main(["--config", str(buckets.config_path), "backup", "run"]) == 1
    out = capsys.readouterr().out
    assert f"destination bucket {DST} does not exist" in out


def test_a_state_store_error_after_the_copy_fails_the_run_with_its_own_message(buckets, capsys,
                                                                              monkeypatch):
    """The objects are copied and the resource recorded; writing its manifest then fails: the
    run fails (exit 1) saying what failed, never as an internal error."""
    from dr.backup import s3
    from dr.errors import OperationFailed

    def denied(*args, **kwargs):
        raise OperationFailed("state store: cannot write manifests/assets/x.json: access denied")

    buckets.put("a")
    monkeypatch.setattr(s3, "save_manifest", denied)
    assert main(["--config", str(buckets.config_path), "backup", "run", "--only", "s3"]) == 1
    err = capsys.readouterr().err
    assert "cannot write manifests/assets/x.json: access denied" in err
    assert "internal error" not in err and "IllegalTransition" not in err


def test_destination_in_wrong_region_fails_before_any_copy(buckets, capsys):
    buckets.put("a")
    buckets.dst.delete_bucket(Bucket=DST)
    buckets.src.create_bucket(Bucket=DST)  # in us-east-1: would not survive the region
    assert main(["--config", str(buckets.config_path), "backup", "run"]) == 1
    assert f"destination bucket {DST} is in us-east-1, not in us-west-2" in capsys.readouterr().out
    assert buckets.src.list_objects_v2(Bucket=DST).get("KeyCount", 0) == 0


def test_object_deleted_during_the_run_is_skipped_not_failed(buckets, boto):
    for k in ("a", "b", "c"):
        buckets.put(k)
    ctx = buckets.context()
    remover = boto("s3", "us-east-1")

    def delete_b_first(params, model, **kw):
        if model.name == "CopyObject" and params.get("Key") == "b":
            remover.delete_object(Bucket=SRC, Key="b")

    ctx.aws.boto_session.events.register("before-parameter-build.s3.CopyObject", delete_b_first)
    outcome = run_backup(ctx, only="s3")
    assert outcome.record.status == "completed"
    summary = outcome.record.results[0].summary
    assert summary["vanished"] == ["b"] and summary["copied"] == 2 and summary["failed"] == 0


def test_interrupted_run_then_rerun_copies_only_what_is_missing(buckets):
    for i in range(60):
        buckets.put(f"obj-{i:03d}", b"payload")
    buckets.write_config(concurrency=2)
    ctx = buckets.context()
    copies = []

    def interrupt_after_ten(model, **kw):
        copies.append(model.name)
        if len(copies) == 10:
            os.kill(os.getpid(), signal.SIGINT)

    ctx.aws.boto_session.events.register("before-call.s3.CopyObject", interrupt_after_ten)
    with pytest.raises(Interrupted):
        run_backup(ctx, only="s3")
    done = len(buckets.dst_keys())
    assert 10 <= done < 60
    ctx2 = buckets.context()
    calls = count_calls(ctx2)
    assert run_backup(ctx2, only="s3").record.status == "completed"
    assert calls.count("CopyObject") == 60 - done
    assert len(buckets.dst_keys()) == 60


def test_slowdown_and_503_back_off_and_succeed(buckets):
    buckets.put("a", b"1")
    ctx = buckets.context()
    replies = [s3_error(503, "SlowDown"), s3_error(503, "ServiceUnavailable")]
    ctx.aws.boto_session.events.register(
        "before-send.s3.CopyObject", lambda **kw: replies.pop() if replies else None)
    assert run_backup(ctx, only="s3").record.status == "completed"
    assert replies == [] and buckets.dst_body("a") == b"1"


def test_verify_reports_missing_and_different_objects_with_exit_3(buckets, capsys):
    for k in ("a", "b", "c"):
        buckets.put(k, k.encode())
    run_backup(buckets.context(), only="s3")
    args = ["--config", str(buckets.config_path), "backup", "verify", "--name", "assets"]
    assert main(args) == 0
    buckets.dst.delete_object(Bucket=DST, Key="a")
    buckets.put("b", b"bigger now")
    capsys.readouterr()
    assert main(["--output", "json"] + args) == 3
    doc = json.loads(capsys.readouterr().out)["assets"]
    assert doc["missing"] == 1 and doc["different"] == 1 and doc["in_sync"] == 1
    assert any(e.startswith("a: missing") for e in doc["examples"])


@pytest.mark.localstack_bug(TAGS_BUG, since="4.14")
def test_deep_verify_finds_lost_metadata_tags_and_key_that_listings_cannot(buckets, boto, capsys):
    """A listing sees the same keys and sizes; only --deep sees what travels with the bytes."""
    for k in ("a", "b", "c", "d"):
        buckets.put(k, b"12345", ContentType="text/plain", Metadata={"owner": "ann"},
                    Tagging="team=web")
    run_backup(buckets.context(), only="s3")
    args = ["--output", "json", "--config", str(buckets.config_path), "backup", "verify",
            "--name", "assets", "--deep", "all"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)["assets"]
    assert doc["deep"] == {"checked": 4, "different": 0, "changed_while_checking": 0, "examples": []}
    # The DR copies lose what a careless copy loses, each in one way; sizes and keys stay.
    other = boto("kms", "us-west-2").create_key(Description="not dr")["KeyMetadata"]["Arn"]
    dst = buckets.dst
    dst.copy_object(Bucket=DST, Key="a", CopySource={"Bucket": DST, "Key": "a"},
                    MetadataDirective="REPLACE", ContentType="text/plain", Metadata={},
                    ServerSideEncryption="aws:kms", SSEKMSKeyId=buckets.key_arn)
    dst.delete_object_tagging(Bucket=DST, Key="b")
    dst.copy_object(Bucket=DST, Key="c", CopySource={"Bucket": DST, "Key": "c"},
                    MetadataDirective="COPY", ServerSideEncryption="aws:kms", SSEKMSKeyId=other)
    assert main(args[:-3] + ["assets"]) == 0  # the listings alone still say all is well
    capsys.readouterr()
    assert main(args) == 3
    doc = json.loads(capsys.readouterr().out)["assets"]
    assert doc["ok"] is False and doc["in_sync"] == 4
    assert doc["deep"]["checked"] == 4 and doc["deep"]["different"] == 3
    assert doc["deep"]["examples"] == [
        "a: metadata missing owner",
        "b: tags missing team",
        f"c: under KMS key {other}, not the DR key {buckets.key_arn}",
    ]
    # A sample checks that many objects, chosen at random, and says so in text too.
    assert main(args[2:-1] + ["2"]) in (0, 3)
    out = capsys.readouterr().out
    assert "deep: 2 object(s) checked (headers, metadata, tags, DR key)" in out


def test_deep_verify_rejects_a_sample_that_is_not_a_number_or_all(buckets, capsys):
    base = ["--config", str(buckets.config_path), "backup", "verify", "--deep"]
    assert main(base + ["0"]) == 2
    assert "give a number of objects (e.g. 100) or 'all'" in capsys.readouterr().err


def test_verify_options_a_kind_does_not_take_are_usage_errors_naming_both(buckets, capsys):
    cfg = ["--config", str(buckets.config_path)]
    assert main(cfg + ["backup", "verify", "--name", "assets", "--backup", "x-20300101-1000"]) == 2
    assert "--backup x-20300101-1000: assets is not a mysql resource" in capsys.readouterr().err


def test_dry_run_copies_nothing_and_says_what_would_move(buckets):
    buckets.put("a", b"12345")
    ctx = buckets.context()
    calls = count_calls(ctx)
    outcome = run_backup(ctx, only="s3", dry_run=True)
    assert outcome.record is None and buckets.dst_keys() == []
    assert "copy 1 object(s), 5 bytes" in outcome.plan[0].actions[0]
    assert not [c for c in calls if not c.startswith(("List", "Get", "Head"))]


def test_readiness_checks_versioning_and_default_encryption(buckets, capsys):
    args = ["--config", str(buckets.config_path), "validate", "--readiness"]
    assert main(args) == 3
    out = capsys.readouterr().out
    assert "versioning is off" in out and "default encryption" in out
    buckets.dst.put_bucket_versioning(Bucket=DST, VersioningConfiguration={"Status": "Enabled"})
    buckets.dst.put_bucket_encryption(Bucket=DST, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": buckets.key_arn}}]})
    capsys.readouterr()
    assert main(args) == 3
    assert "no complete copy yet" in capsys.readouterr().out
    buckets.put("a")
    assert run_backup(buckets.context(), only="s3").record.status == "completed"
    assert main(args) == 0


def test_backup_list_shows_runs_with_age_and_counts(buckets, capsys):
    buckets.put("a", b"1")
    run_backup(buckets.context(), only="s3")
    capsys.readouterr()
    assert main(["--config", str(buckets.config_path), "backup", "list", "--name", "assets"]) == 0
    out = capsys.readouterr().out
    assert "COPIED" in out and "assets" in out and "completed" in out
    assert main(["--output", "json", "--config", str(buckets.config_path), "backup", "list"]) == 0
    (run,) = json.loads(capsys.readouterr().out)["s3_runs"]
    assert run["copied"] == 1 and run["newest_source_modified"]
