"""The DR-region key: every copy dr makes is encrypted with it. Checked before anything is copied.

The peers' most common failure is the key (copies left under the source-region key, the
AWS-managed aws/rds key that cannot be shared, KMSKeyNotAccessibleFault). `resolve_dr_key`
proves the key exists IN the DR region, is enabled, is customer managed and can encrypt, and
returns its ARN, which is what CopyDBSnapshot needs for a cross-region copy.

`Kms` is the adapter: DescribeKey, GenerateDataKey and Decrypt for crypto/keys.py's
KmsKeyProvider, and CreateKey/CreateAlias for the sandbox world.
"""

from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Mapping
from typing import Any

from dr.aws.errors import aws_call
from dr.errors import AwsError


@dataclass(frozen=True)
class DrKey:
    ref: str  # as written in dr.yaml (alias, id or ARN)
    arn: str
    region: str

    def __str__(self) -> str:
        return self.arn if self.ref == self.arn else f"{self.ref} ({self.arn})"


class Kms:
    """One region's KMS."""

    def __init__(self, client: Any, region: str):
        self.client, self.region = client, region

    def describe(self, ref: str) -> dict[str, Any]:
        """The key's KeyMetadata (Arn, KeyManager, KeyState, KeyUsage, KeySpec, ...)."""
        return aws_call(self.client.describe_key, KeyId=ref, action="describing key", resource=ref,
                        region=self.region)["KeyMetadata"]

    def encrypt_probe(self, key_id: str, name: str) -> None:
        """Encrypt a few bytes under the key: proves the key is usable by these credentials now
        (enabled, not pending deletion, and a policy that lets us use it). `name` is for messages."""
        aws_call(self.client.encrypt, KeyId=key_id, Plaintext=b"dr readiness probe",
                 action="encrypting a probe with", resource=name, region=self.region)

    def generate_data_key(self, key_id: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """(plaintext, wrapped) of a new AES-256 data key, bound to `context`."""
        resp = aws_call(self.client.generate_data_key, KeyId=key_id, KeySpec="AES_256",
                        EncryptionContext=dict(context), action="generating a data key with",
                        resource=key_id, region=self.region)
        return resp["Plaintext"], resp["CiphertextBlob"]

    def decrypt(self, wrapped: bytes, key_id: str, context: Mapping[str, str]) -> tuple[bytes, str | None]:
        """(plaintext, the key KMS says it used)."""
        resp = aws_call(self.client.decrypt, CiphertextBlob=wrapped, KeyId=key_id,
                        EncryptionContext=dict(context), action="decrypting the data key with",
                        resource=key_id, region=self.region)
        return resp["Plaintext"], resp.get("KeyId", key_id)

    def create_key(self, alias: str, description: str) -> str:
        """A new symmetric key with `alias`; its ARN (the sandbox world makes its keys so)."""
        where = dict(action="creating key", resource=alias, region=self.region)
        arn = aws_call(self.client.create_key, Description=description, **where)["KeyMetadata"]["Arn"]
        aws_call(self.client.create_alias, AliasName=alias, TargetKeyId=arn, **where)
        return arn


def resolve_dr_key(session: Any, ref: str, dr_region: str) -> DrKey:
    try:
        meta = session.kms(dr_region).describe(ref)
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
