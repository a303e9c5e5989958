"""Integration fixtures: the demo world seeded in a fresh moto server, a dr.yaml pointing at it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dr.aws import AwsSession
from dr.aws import seed as aws_seed
from dr.config import load_config
from dr.context import Context, make_context
from dr.sandbox import world as demo_world
from tests.conftest import LOCALSTACK

pytestmark = pytest.mark.integration


@dataclass
class SeededWorld:
    endpoint: str
    config_path: Path
    state_dir: Path
    dr_key_arn: str
    primary_key_arn: str

    def write_config(self, text: str) -> Path:
        self.config_path.write_text(text)
        return self.config_path

    def context(self, clock=None) -> Context:
        return make_context(load_config(self.config_path), clock=clock)


@pytest.fixture
def seeded(endpoint, tmp_path) -> SeededWorld:
    seed = _seed_without_rds if LOCALSTACK else demo_world.seed
    w = seed(AwsSession(endpoint_url=endpoint))
    state = tmp_path / "state"
    path = tmp_path / "dr.yaml"
    path.write_text(demo_world.config_text(endpoint, state))
    return SeededWorld(endpoint, path, state, w.dr_key_arn, w.primary_key_arn)


def _seed_without_rds(session: AwsSession) -> demo_world.World:
    """The demo world less its RDS databases, which LocalStack's community edition does not
    emulate: the KMS keys, the buckets and the Route 53 zone (tests needing RDS skip there)."""
    pkms, dkms = session.client("kms", demo_world.PRIMARY), session.client("kms", demo_world.DR)
    pkey = pkms.create_key(Description="acme production data (us-east-1)")["KeyMetadata"]
    pkms.create_alias(AliasName="alias/acme-prod", TargetKeyId=pkey["KeyId"])
    dkey = dkms.create_key(Description="dr backups (us-west-2)")["KeyMetadata"]
    dkms.create_alias(AliasName=demo_world.DR_KEY_ALIAS, TargetKeyId=dkey["KeyId"])
    aws_seed._seed_assets(session, dkey["Arn"])
    aws_seed._seed_dns(session)
    return demo_world.World(primary_key_arn=pkey["Arn"], dr_key_arn=dkey["Arn"])


class FakeRaw:
    """Enough of urllib3's response for botocore to parse an injected reply."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, *args, **kwargs):
        yield self._body


def query_error(status: int, code: str, message: str = "injected"):
    """An AWS query-protocol (RDS, SNS, ...) error reply, as botocore would receive it."""
    from botocore.awsrequest import AWSResponse

    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>test</RequestId>"
            "</ErrorResponse>").encode()
    return AWSResponse("http://injected", status, {"Content-Type": "text/xml"}, FakeRaw(body))
