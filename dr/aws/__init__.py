"""dr's one AWS seam: the only package that imports botocore or calls a client method.

  session.py   AwsSession: clients per (service, region), endpoint override, adaptive retries,
               and one typed adapter per service (`session.rds(region)`, `session.s3(region)`, ...)
  errors.py    aws_call / translate / error_code: botocore errors become AwsError, once
               (the state store's wording is a table there)
  retry.py     retry_on_codes: domain retries botocore does not do (quotas); waits use dr.wait.poll
  kms.py rds.py s3.py cfn.py route53.py misc.py   the adapters, speaking Snapshot, Stack,
               ObjectInfo, ... instead of response dicts
  regions.py   the regions and partitions botocore ships (config validation)
  seed.py      the sandbox demo world's resources

Everything above this package speaks domain types. Unit tests use the same adapters in memory
(tests/support/aws_fake.py), checked against the sandbox by tests/support/aws_contract.py. boto3 is imported lazily so `dr --version`
stays fast.
"""

from dr.aws.errors import aws_call, error_code, is_client_error, translate
from dr.aws.session import (MAX_ATTEMPTS, SANDBOX_CREDENTIALS, AwsSession, EndpointUnreachable,
                            resolve_endpoint)

#: The loggers of the AWS libraries: never at DEBUG (botocore's debug log prints KMS plaintext
#: data keys and whole request bodies); dr.obs.logging quiets them by these names.
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")

__all__ = ["AwsSession", "EndpointUnreachable", "LIBRARY_LOGGERS", "MAX_ATTEMPTS", "SANDBOX_CREDENTIALS",
           "aws_call", "error_code", "is_client_error", "resolve_endpoint", "translate"]
