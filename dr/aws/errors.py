"""The one place AWS errors become user messages: which resource, which region, what to do.

`aws_call` wraps every client call made in dr/aws/; botocore's errors come out as `AwsError`.
Most calls read as "<action> <resource> in <region>: <code>: <message>" with a hint chosen by
the code (`_NOT_FOUND_HINTS`). The state store speaks about its bucket instead: its wording is
the `STATE_STORE` table below, applied by the same `translate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dr.errors import AwsError

STATE_IAM_ACTIONS = "s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject"


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


@dataclass(frozen=True)
class StoreWhere:
    """What a state-store call was about, for the `STATE_STORE` wording."""

    action: str  # list | read | write | delete | check
    bucket: str
    key: str | None
    region: str | None
    kms_key_id: str | None

    @property
    def what(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key is not None else f"bucket {self.bucket}"


def _store_not_found(w: StoreWhere, code: str, message: str) -> AwsError:
    return AwsError(f"state bucket {w.bucket} not found in {w.region}: create it (the terraform "
                    "foundation module does) or use state: {path: ./.dr-state}", code="NoSuchBucket")


def _store_denied(w: StoreWhere, code: str, message: str) -> AwsError:
    return AwsError(
        f"access denied to {w.action} {w.what} in {w.region}", code=code,
        hint=f"the state store needs {STATE_IAM_ACTIONS} on {w.bucket}"
        + (f" and kms:GenerateDataKey, kms:Decrypt on {w.kms_key_id}" if w.kms_key_id else ""))


def _store_kms(w: StoreWhere, code: str, message: str) -> AwsError:
    return AwsError(f"cannot {w.action} {w.what}: KMS key {w.kms_key_id} refused ({code})", code=code,
                    hint="check that the key exists in the bucket's region, is enabled, and that "
                    "this identity may use it (kms:GenerateDataKey, kms:Decrypt)")


def _store_other(w: StoreWhere, code: str, message: str) -> AwsError:
    return AwsError(f"cannot {w.action} {w.what} in {w.region}: {code}: {message}".rstrip(": "),
                    code=code, hint="retry; if it persists, check the bucket's policy and the AWS "
                    "status page")


#: The state store's wording: (codes, or a test on the code) -> how the error reads.
STATE_STORE = (
    (lambda code: code in ("NoSuchBucket", "404", "NotFound"), _store_not_found),
    (lambda code: code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"), _store_denied),
    (lambda code: code.startswith("KMS.") or code == "KMSAccessDenied", _store_kms),
    (lambda code: True, _store_other),
)


def translate_store(exc: BaseException, where: StoreWhere) -> AwsError:
    """A state-store S3 error in the store's own words (`STATE_STORE`)."""
    import botocore.exceptions as bex

    if isinstance(exc, bex.BotoCoreError):  # no credentials, no network: not a ClientError
        return AwsError(f"cannot {where.action} {where.what}: {exc}", code=type(exc).__name__,
                        hint="check the network, the endpoint URL and the credentials")
    code = error_code(exc)
    message = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message", "")
    for matches, word in STATE_STORE:
        if matches(code):
            return word(where, code, message)
    raise AssertionError("unreachable")  # the last row matches every code


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
