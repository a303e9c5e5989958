"""The AWS adapter contract: ONE suite of cases that dr.aws's adapters and tests/support/aws_fake.py must pass.

`AwsContract` holds the cases; each runner subclasses it and provides a `world` fixture (an
`AwsWorld`):

* tests/unit/aws/test_aws_fake.py              FakeAws (in memory, always runs)
* tests/integration/aws/test_aws_contract.py   AwsSession on the moto sandbox (marked integration)

So the fake the unit tests lean on answers as the real adapters do: None for what does not
exist, AwsError with AWS's code for what fails, the same domain types (Snapshot, ObjectInfo,
Stack) with the same fields filled. A case added here runs against both (restic's backend
conformance tests; tests/support/state_contract.py is the same idea for state stores).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest

from dr.aws.rds import INSTANCE, TAG_CREATED_AT, TAG_MANAGED, TAG_NAME
from dr.aws.s3 import GONE
from dr.errors import AwsError

TEMPLATE = json.dumps({
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Env": {"Type": "String"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"EnvOut": {"Value": {"Ref": "Env"}}},
})


@dataclass
class AwsWorld:
    aws: Any             # an AwsSession, or a FakeAws
    primary: str
    dr: str
    instance: str        # a DB instance in the primary region (encrypted)
    source_bucket: str   # an empty bucket in the primary region
    dest_bucket: str     # an empty bucket in the DR region
    dr_key_arn: str      # a customer managed key in the DR region
    # AWS refuses a CopyObject whose CopySourceIfMatch no longer holds (412); moto copies anyway
    # (no fidelity patch covers it), so that case runs only where the endpoint plays it.
    checks_copy_preconditions: bool = True


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class AwsContract:
    # -- RDS -----------------------------------------------------------------------------------

    def test_what_does_not_exist_is_none(self, world: AwsWorld):
        rds = world.aws.rds(world.primary)
        assert rds.source(INSTANCE, "no-such-db") is None
        assert rds.snapshot(INSTANCE, "no-such-snapshot") is None
        assert world.aws.cfn(world.primary).describe("no-such-stack") is None

    def test_source_is_described(self, world: AwsWorld):
        source = world.aws.rds(world.primary).source(INSTANCE, world.instance)
        assert source is not None and source.id == world.instance and source.encrypted
        assert source.arn.startswith("arn:aws:rds:")

    def test_snapshot_create_find_list_delete(self, world: AwsWorld):
        rds = world.aws.rds(world.primary)
        snap_id = unique("dr-contract")
        when = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
        tags = {TAG_MANAGED: "true", TAG_NAME: "app-db", TAG_CREATED_AT: when.isoformat()}
        made = rds.create_snapshot(INSTANCE, world.instance, snap_id, tags)
        assert (made.id, made.region, made.source_id) == (snap_id, world.primary, world.instance)
        found = rds.snapshot(INSTANCE, snap_id)
        assert found is not None and found.status == "available" and found.managed_name == "app-db"
        assert found.arn.startswith("arn:aws:rds:") and found.created is not None
        # AWS stamps OriginalSnapshotCreateTime on every snapshot: it is the recovery time
        assert found.recovery_time is not None and found.recovery_time <= found.created
        assert snap_id in [s.id for s in rds.snapshots(INSTANCE, world.instance)]
        rds.delete_snapshot(INSTANCE, snap_id)
        assert rds.snapshot(INSTANCE, snap_id) is None

    def test_a_second_snapshot_of_the_same_name_is_already_exists(self, world: AwsWorld):
        rds = world.aws.rds(world.primary)
        snap_id = unique("dr-twice")
        rds.create_snapshot(INSTANCE, world.instance, snap_id, {})
        with pytest.raises(AwsError) as info:
            rds.create_snapshot(INSTANCE, world.instance, snap_id, {})
        assert info.value.code == INSTANCE.already_exists

    def test_copy_lands_in_the_dr_region_under_the_key_with_the_tags(self, world: AwsWorld):
        snap_id = unique("dr-copy")
        when = datetime(2026, 11, 2, 8, 30, tzinfo=timezone.utc)
        source = world.aws.rds(world.primary).create_snapshot(
            INSTANCE, world.instance, snap_id, {TAG_CREATED_AT: when.isoformat()})
        dr = world.aws.rds(world.dr)
        dr.copy_snapshot(INSTANCE, source, snap_id, world.dr_key_arn,
                         {TAG_CREATED_AT: when.isoformat(), "dr:role": "copy"})
        copy = dr.snapshot(INSTANCE, snap_id)
        assert copy is not None and copy.region == world.dr and copy.encrypted
        assert copy.kms_key_id.rsplit("/", 1)[-1] == world.dr_key_arn.rsplit("/", 1)[-1]
        assert copy.tags["dr:role"] == "copy"
        assert copy.recovery_time == source.recovery_time  # a copy keeps when the data was captured
        assert world.aws.rds(world.primary).snapshot(INSTANCE, snap_id) is not None  # the source stays

    # -- S3 ------------------------------------------------------------------------------------

    def test_buckets_are_located_and_a_missing_one_is_named(self, world: AwsWorld):
        assert world.aws.s3(world.primary).bucket_region(world.source_bucket, "source") == world.primary
        assert world.aws.s3(world.dr).bucket_region(world.dest_bucket, "destination") == world.dr
        with pytest.raises(AwsError, match="does not exist") as info:
            world.aws.s3(world.dr).bucket_region(unique("no-such-bucket"), "destination")
        assert info.value.code in ("NoSuchBucket", "404")

    def test_objects_list_in_key_order_with_what_head_and_tags_say(self, world: AwsWorld):
        s3 = world.aws.s3(world.primary)
        for key in ("b/2.txt", "a.txt", "b/1.txt", "c.txt"):
            s3.put(world.source_bucket, key, key.encode() * 3, ContentType="text/plain",
                   Metadata={"who": "contract"}, Tagging="kind=test")
        listed = list(s3.list_objects(world.source_bucket, "b/"))
        assert [o.key for o in listed] == ["b/1.txt", "b/2.txt"]
        assert [o.size for o in listed] == [21, 21] and all(o.etag.startswith('"') for o in listed)
        head = s3.head(world.source_bucket, "a.txt")
        assert head["ContentLength"] == 15 and head["ContentType"] == "text/plain"
        assert head["Metadata"] == {"who": "contract"} and head["ETag"] == s3.head(world.source_bucket, "a.txt")["ETag"]
        assert s3.tags(world.source_bucket, "a.txt") == {"kind": "test"}
        assert s3.get(world.source_bucket, "c.txt").read() == b"c.txt" * 3
        s3.delete(world.source_bucket, "c.txt")
        with pytest.raises(AwsError) as info:
            s3.head(world.source_bucket, "c.txt")
        assert info.value.code in GONE

    def test_server_side_copy_keeps_metadata_and_tags_under_the_dr_key(self, world: AwsWorld):
        src, dst = world.aws.s3(world.primary), world.aws.s3(world.dr)
        src.put(world.source_bucket, "photo.jpg", b"jpeg" * 100, ContentType="image/jpeg",
                Metadata={"by": "user-1"}, Tagging="kind=photo")
        (listed,) = list(src.list_objects(world.source_bucket, "photo"))
        dst.copy(world.source_bucket, listed, world.dest_bucket, world.dr_key_arn)
        head = dst.head(world.dest_bucket, "photo.jpg")
        assert head["ContentType"] == "image/jpeg" and head["Metadata"] == {"by": "user-1"}
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == world.dr_key_arn
        assert dst.tags(world.dest_bucket, "photo.jpg") == {"kind": "photo"}
        assert [o.key for o in dst.list_objects(world.dest_bucket, "")] == ["photo.jpg"]

    def test_a_copy_of_a_changed_object_is_refused(self, world: AwsWorld):
        if not world.checks_copy_preconditions:
            pytest.skip("this endpoint ignores CopySourceIfMatch (AWS answers 412 PreconditionFailed)")
        src, dst = world.aws.s3(world.primary), world.aws.s3(world.dr)
        src.put(world.source_bucket, "doc.txt", b"first")
        (listed,) = list(src.list_objects(world.source_bucket, "doc"))
        src.put(world.source_bucket, "doc.txt", b"second, longer")
        with pytest.raises(AwsError) as info:
            dst.copy(world.source_bucket, listed, world.dest_bucket, world.dr_key_arn)
        assert info.value.code in ("PreconditionFailed", "412")

    # -- CloudFormation ------------------------------------------------------------------------

    def test_stack_create_describe_update_delete(self, world: AwsWorld):
        cfn = world.aws.cfn(world.dr)
        name = unique("dr-contract")
        args = {"StackName": name, "TemplateBody": TEMPLATE,
                "Parameters": [{"ParameterKey": "Env", "ParameterValue": "one"}],
                "Tags": [{"Key": "dr:run", "Value": "r1"}]}
        stack_id = cfn.create(args)
        stack = cfn.describe(name)
        assert stack is not None and stack.id == stack_id and stack.name == name
        assert stack.status == "CREATE_COMPLETE" and not stack.in_progress
        assert stack.parameters == {"Env": "one"} and stack.tags == {"dr:run": "r1"}
        assert cfn.describe(stack_id) == stack
        assert name in [s.name for s in cfn.list_stacks()]
        assert cfn.update({**args, "Parameters": [{"ParameterKey": "Env", "ParameterValue": "two"}]})
        assert cfn.describe(name).parameters == {"Env": "two"}
        assert cfn.events(stack_id) and all(e.timestamp for e in cfn.events(stack_id))
        cfn.delete(stack_id)
        assert cfn.describe(name) is None

    def test_a_second_stack_of_the_same_name_is_already_exists(self, world: AwsWorld):
        cfn = world.aws.cfn(world.dr)
        args = {"StackName": unique("dr-twice"), "TemplateBody": TEMPLATE,
                "Parameters": [{"ParameterKey": "Env", "ParameterValue": "one"}]}
        cfn.create(args)
        with pytest.raises(AwsError) as info:
            cfn.create(args)
        assert info.value.code == "AlreadyExistsException"

    # -- KMS -----------------------------------------------------------------------------------

    def test_keys_are_described_and_a_missing_one_is_not_found(self, world: AwsWorld):
        kms = world.aws.kms(world.dr)
        assert kms.describe(world.dr_key_arn)["Arn"] == world.dr_key_arn
        with pytest.raises(AwsError) as info:
            kms.describe("alias/no-such-key")
        assert info.value.code == "NotFoundException"
