"""The AWS adapter contract (tests/support/aws_contract.py) run against dr.aws's real adapters on the moto
sandbox: what the unit tests' FakeAws promises is what AWS (as the sandbox plays it) does."""

from __future__ import annotations

import boto3
import pytest

from dr.aws import AwsSession
from dr.sandbox import world as W
from tests.support.aws_contract import AwsContract, AwsWorld, unique
from tests.conftest import LOCALSTACK

pytestmark = pytest.mark.skipif(LOCALSTACK, reason="the contract's RDS cases need the moto sandbox")


class TestAwsSessionContract(AwsContract):
    @pytest.fixture
    def world(self, seeded) -> AwsWorld:
        buckets = []
        for region in (W.PRIMARY, W.DR):
            name = unique("contract")
            client = boto3.client("s3", region_name=region, endpoint_url=seeded.endpoint,
                                  aws_access_key_id="dr-sandbox", aws_secret_access_key="dr-sandbox")
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            client.create_bucket(Bucket=name, **extra)
            buckets.append(name)
        return AwsWorld(AwsSession(endpoint_url=seeded.endpoint), W.PRIMARY, W.DR, W.INSTANCE,
                        buckets[0], buckets[1], seeded.dr_key_arn, checks_copy_preconditions=False)
