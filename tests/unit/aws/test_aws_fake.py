"""The AWS adapter contract (tests/support/aws_contract.py) run against tests.support.aws_fake.FakeAws.

The same cases run against the real adapters on the moto sandbox in
tests/integration/aws/test_aws_contract.py.
"""

from __future__ import annotations

import pytest

from tests.support.aws_fake import FakeAws
from dr.aws.rds import INSTANCE
from tests.support.aws_contract import AwsContract, AwsWorld, unique

PRIMARY, DR = "us-east-1", "us-west-2"


class TestFakeAwsContract(AwsContract):
    @pytest.fixture
    def world(self) -> AwsWorld:
        aws = FakeAws()
        instance = unique("acme-db")
        aws.add_source(PRIMARY, INSTANCE, instance, kms_key_id="arn:aws:kms:us-east-1:1:key/p")
        source_bucket, dest_bucket = unique("src"), unique("dst")
        aws.add_bucket(source_bucket, PRIMARY)
        aws.add_bucket(dest_bucket, DR)
        key = aws.kms(DR).create_key("alias/dr-backups", "dr backups")
        return AwsWorld(aws, PRIMARY, DR, instance, source_bucket, dest_bucket, key)


def test_the_fake_refuses_raw_clients():
    """Code under test that reaches past the adapters fails loudly instead of half-working."""
    with pytest.raises(AssertionError, match="typed adapters"):
        FakeAws().client("rds", PRIMARY)


def test_published_messages_are_kept():
    aws = FakeAws()
    assert aws.sns(DR).publish("arn:aws:sns:us-west-2:1:t", "subject", "body") == "msg-1"
    assert aws.world.published == [{"topic": "arn:aws:sns:us-west-2:1:t", "subject": "subject", "message": "body"}]
