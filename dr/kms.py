"""The DR-region key: every copy dr makes is encrypted with it. Checked before anything is copied.

The peers' most common failure is the key (copies left under the source-region key, the
AWS-managed aws/rds key that cannot be shared, KMSKeyNotAccessibleFault). `resolve_dr_key`
proves the key exists IN the DR region, is enabled, is customer managed and can encrypt, and
returns its ARN, which is what CopyDBSnapshot needs for a cross-region copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from dr.aws import AwsSession, aws_call
from dr.errors import AwsError


@dataclass(frozen=True)
class DrKey:
    ref: str  # as written in dr.yaml (alias, id or ARN)
    arn: str
    region: str

    def __str__(self) -> str:
        return self.arn if self.ref == self.arn else f"{self.ref} ({self.arn})"


def resolve_dr_key(session: AwsSession, ref: str, dr_region: str) -> DrKey:
    kms = session.client("kms", dr_region)
    try:
        meta = aws_call(kms.describe_key, KeyId=ref, action="describing key", resource=ref,
                        region=dr_region)["KeyMetadata"]
    except AwsError as exc:
        if exc.code == "NotFoundException":
            raise AwsError(
                f"kms.dr_key {ref!r} not found in the DR region {dr_region}",
                code="NotFoundException",
                hint=f"create a customer managed key in {dr_region} (terraform/modules/foundation "
                     f"does) and point kms.dr_key at it or at its alias",
            ) from exc
        raise
    arn = meta["Arn"]
    key_region = arn.split(":")[3]
    if key_region != dr_region:
        raise AwsError(
            f"kms.dr_key {ref!r} is in {key_region}, not in the DR region {dr_region}: "
            "a copy under it would not survive the loss of its region",
            hint=f"use a key that lives in {dr_region}",
        )
    if meta.get("KeyManager") == "AWS":
        raise AwsError(
            f"kms.dr_key {ref!r} is an AWS managed key; its snapshots cannot be shared or "
            "copied to another account",
            hint=f"create a customer managed key in {dr_region} and use it",
        )
    state = meta.get("KeyState", "Enabled")
    if state != "Enabled":
        raise AwsError(f"kms.dr_key {ref!r} in {dr_region} is {state}, not Enabled",
                       hint="enable the key (or cancel its deletion) and run again")
    if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT" or \
            meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        raise AwsError(f"kms.dr_key {ref!r} is not a symmetric encryption key",
                       hint="use a SYMMETRIC_DEFAULT key with usage ENCRYPT_DECRYPT")
    return DrKey(ref=ref, arn=arn, region=key_region)
