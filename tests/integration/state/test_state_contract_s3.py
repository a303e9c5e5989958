"""The shared state-store contract (tests/support/state_contract.py) run against S3Store on the moto
server: a bucket in us-west-2, documents encrypted with a KMS key there, under a prefix.

The concurrency cases (`race_backend`) run against the sandbox users run, `EmbeddedAws` (moto
plus dr's fidelity patches, dr/sandbox/fidelity/), because plain moto does not evaluate a
conditional PUT atomically (see tests/support/state_contract.py).

The same cases run against LocalStore in tests/unit/state/test_state_contract.py.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.config import Config

from dr.sandbox.server import EmbeddedAws
from dr.state import S3Store
from tests.conftest import LOCALSTACK, LOCALSTACK_ENDPOINT
from tests.support.state_contract import THREADS, Backend, StateStoreContract

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

REGION = "us-west-2"


def _backend(s3, kms) -> Backend:
    bucket = f"dr-state-{uuid.uuid4().hex[:12]}"  # fresh per test, also on a shared server
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    return Backend(
        "s3",
        S3Store(s3, bucket, prefix="dr/state", kms_key_id=key_arn, region=REGION),
        S3Store(s3, "no-such-bucket", region=REGION),  # any I/O raises AwsError
        identical_rewrite_changes_version=False,  # the ETag is the body's MD5 on moto
    )


@pytest.fixture(scope="module")
def sandbox_endpoint():
    if LOCALSTACK:  # the emulator under test: its own conditional PUTs must not both win
        yield LOCALSTACK_ENDPOINT
        return
    with EmbeddedAws() as aws:
        yield aws.endpoint


class TestS3StoreContract(StateStoreContract):
    @pytest.fixture
    def backend(self, boto) -> Backend:
        return _backend(boto("s3", REGION), boto("kms", REGION))

    @pytest.fixture
    def race_backend(self, sandbox_endpoint) -> Backend:
        config = Config(max_pool_connections=THREADS * 2)  # one connection per thread, no warnings
        return _backend(
            boto3.client("s3", region_name=REGION, endpoint_url=sandbox_endpoint, config=config),
            boto3.client("kms", region_name=REGION, endpoint_url=sandbox_endpoint),
        )
