"""The shared state-store contract (tests/state_contract.py) run against S3Store on the moto
server: a bucket in us-west-2, documents encrypted with a KMS key there, under a prefix.

The same cases run against LocalStore in tests/unit/test_state_contract.py.
"""

from __future__ import annotations

import pytest

from dr.state import S3Store
from tests.state_contract import Backend, StateStoreContract

pytestmark = pytest.mark.integration

REGION = "us-west-2"


class TestS3StoreContract(StateStoreContract):
    @pytest.fixture
    def backend(self, boto) -> Backend:
        s3 = boto("s3", REGION)
        s3.create_bucket(Bucket="dr-state", CreateBucketConfiguration={"LocationConstraint": REGION})
        key_arn = boto("kms", REGION).create_key()["KeyMetadata"]["Arn"]
        return Backend(
            "s3",
            S3Store(s3, "dr-state", prefix="dr/state", kms_key_id=key_arn, region=REGION),
            S3Store(s3, "no-such-bucket", region=REGION),  # any I/O raises AwsError
        )
