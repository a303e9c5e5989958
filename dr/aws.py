"""The ONLY place boto3 clients are made, and the one place AWS errors become user messages.

One `AwsSession` per command: clients per (service, region), the profile and an `endpoint_url`
override (config `aws.endpoint_url`, `--endpoint-url` or `$DR_ENDPOINT_URL`) for a local AWS
simulation, the standard credential chain, and botocore's adaptive retries for throttling and
transient 5xx. boto3 is imported lazily so `dr --version` stays fast.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from dr.errors import AwsError, ConfigError

if TYPE_CHECKING:
    import boto3

#: botocore retries throttling, transient 5xx and connection errors with adaptive client-side
#: rate limiting; this is dr's transport retry policy (see dr/retry.py for domain retries).
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
            # A local simulation (dr sandbox, moto, LocalStack) accepts any credentials.
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


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError or an AwsError ('' for anything else)."""
    if isinstance(exc, AwsError):
        return exc.code
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                  "AuthorizationError", "InvalidClientTokenId", "UnrecognizedClientException"}
_NOT_FOUND_HINTS = {
    "DBInstanceNotFound": "check the instance identifier and regions.primary in dr.yaml",
    "DBClusterNotFoundFault": "check the cluster identifier and regions.primary in dr.yaml",
    "DBSnapshotNotFound": "the snapshot was deleted meanwhile; run the backup again",
    "DBClusterSnapshotNotFoundFault": "the snapshot was deleted meanwhile; run the backup again",
    "NotFoundException": "check kms.dr_key in dr.yaml: the key or alias must exist in the DR region",
    "KMSKeyNotAccessibleFault": "allow dr's role kms:CreateGrant, kms:DescribeKey and kms:Encrypt "
                                "on the DR key, and check the key is enabled",
}


def translate(exc: BaseException, *, action: str, resource: str, region: str) -> AwsError:
    """Turn a botocore error into an AwsError that says which resource, which region, what to do."""
    import botocore.exceptions as bex

    if isinstance(exc, bex.NoCredentialsError):
        return AwsError(
            f"{action} {resource} in {region}: no AWS credentials found",
            code="NoCredentials",
            hint="set AWS_PROFILE or aws.profile, or run on a machine with a role",
        )
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
        return AwsError(
            f"{action} {resource} in {region}: cannot reach the AWS endpoint ({exc})",
            code="EndpointConnectionError",
            hint="check the network, or aws.endpoint_url / --endpoint-url (is `dr sandbox` running?)",
        )
    code = error_code(exc)
    message = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message", str(exc))
    if code in _ACCESS_DENIED:
        hint = "grant dr's IAM role the permission named above (README: IAM permissions)"
    else:
        hint = _NOT_FOUND_HINTS.get(code)
    return AwsError(f"{action} {resource} in {region}: {code or type(exc).__name__}: {message}",
                    code=code, hint=hint)


def is_client_error(exc: BaseException) -> bool:
    import botocore.exceptions as bex

    return isinstance(exc, (bex.ClientError, bex.BotoCoreError))


def aws_call(fn, *args, action: str, resource: str, region: str, **kwargs):
    """Call a boto3 method; botocore errors come out as AwsError (the message a user reads)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - narrowed just below
        if is_client_error(exc):
            raise translate(exc, action=action, resource=resource, region=region) from exc
        raise
