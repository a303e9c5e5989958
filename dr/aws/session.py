"""The ONLY place boto3 clients are made (errors are translated in dr/aws/errors.py).

One `AwsSession` per command: clients per (service, region), the profile and an `endpoint_url`
override (config `aws.endpoint_url`, `--endpoint-url` or `$DR_ENDPOINT_URL`) for a local AWS
simulation, the standard credential chain, and botocore's adaptive retries for throttling and
transient 5xx. boto3 is imported lazily so `dr --version` stays fast.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from dr.errors import ConfigError

if TYPE_CHECKING:
    import boto3

#: botocore retries throttling, transient 5xx and connection errors with adaptive client-side
#: rate limiting; this is dr's transport retry policy (see dr/aws/retry.py for domain retries).
MAX_ATTEMPTS = 8
SANDBOX_CREDENTIALS = {"aws_access_key_id": "dr-sandbox", "aws_secret_access_key": "dr-sandbox"}


def resolve_endpoint(cli_value: str | None, config_value: str | None) -> str | None:
    """--endpoint-url wins over $DR_ENDPOINT_URL, which wins over aws.endpoint_url in dr.yaml."""
    return cli_value or os.environ.get("DR_ENDPOINT_URL") or config_value or None


def _probe_endpoint(url: str, timeout: float = 3.0) -> None:
    """A local AWS simulation (sandbox, moto, LocalStack) that is not running answers nothing,
    and botocore would retry every call for half a minute. One TCP connect says so at once."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "", port), timeout=timeout).close()
    except OSError as exc:
        raise EndpointUnreachable(
            f"the AWS endpoint {url} does not answer ({exc.strerror or exc}); nothing was done",
            hint="start it (`dr sandbox start`, or LocalStack), or fix aws.endpoint_url / --endpoint-url / "
                 "$DR_ENDPOINT_URL") from None


class EndpointUnreachable(ConfigError):
    """The configured endpoint does not accept connections: no AWS call can work (exit 2)."""


class AwsSession:
    """Makes and caches boto3 clients: `session.client("rds", "us-west-2")`."""

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None):
        self.profile = profile
        self.endpoint_url = endpoint_url
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def boto_session(self) -> boto3.Session:
        """The underlying boto3 session (tests register botocore event hooks on `.events`)."""
        with self._lock:
            if self._session is None:
                self._session = self._make_session()
            return self._session

    def _make_session(self) -> boto3.Session:
        import boto3
        import botocore.exceptions

        if self.endpoint_url:
            _probe_endpoint(self.endpoint_url)

        try:
            session = boto3.Session(profile_name=self.profile)
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {self.profile!r} not found in your AWS config",
                hint="run `aws configure --profile NAME`, or drop --profile / aws.profile",
            ) from None
        if self.endpoint_url and session.get_credentials() is None:
            # A sandbox rule inside the client factory, kept on purpose: with an endpoint override
            # and no credentials at all, a local simulation (dr sandbox, moto, LocalStack) is
            # assumed, and it accepts any credentials; real AWS would refuse these at once.
            session = boto3.Session(**SANDBOX_CREDENTIALS)
        return session

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        session = self.boto_session
        with self._lock:
            if key not in self._clients:
                from botocore.config import Config

                cfg = Config(
                    region_name=region,
                    retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
                    connect_timeout=10,
                    read_timeout=60,
                    max_pool_connections=20,
                    user_agent_extra="dr",
                )
                self._clients[key] = session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=cfg
                )
            return self._clients[key]

    # -- the typed adapters: each wraps this session's cached client for one region -----------

    def kms(self, region: str):
        from dr.aws.kms import Kms

        return Kms(self.client("kms", region), region)

    def rds(self, region: str):
        from dr.aws.rds import Rds

        return Rds(self.client("rds", region), region)

    def s3(self, region: str):
        from dr.aws.s3 import S3

        return S3(self.client("s3", region), region)

    def cfn(self, region: str):
        from dr.aws.cfn import Cfn

        return Cfn(self.client("cloudformation", region), region)

    def route53(self):
        from dr.aws.route53 import API_REGION, Route53

        return Route53(self.client("route53", API_REGION))

    def sns(self, region: str):
        from dr.aws.misc import Sns

        return Sns(self.client("sns", region), region)

    def secrets(self, region: str):
        from dr.aws.misc import Secrets

        return Secrets(self.client("secretsmanager", region), self.client("ssm", region), region)
