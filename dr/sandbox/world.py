"""The demo world: a small startup's production in us-east-1, an empty DR region in us-west-2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dr.aws import AwsSession

PRIMARY, DR = "us-east-1", "us-west-2"
DR_KEY_ALIAS = "alias/dr-backups"
INSTANCE, CLUSTER = "acme-prod-db", "acme-aurora"
HAND_MADE_SNAPSHOT = "acme-prod-db-before-migration"


@dataclass(frozen=True)
class World:
    primary_key_arn: str
    dr_key_arn: str


def seed(session: AwsSession) -> World:
    """Create the world; safe to call on an empty simulation only."""
    pkms, dkms = session.client("kms", PRIMARY), session.client("kms", DR)
    pkey = pkms.create_key(Description="acme production data (us-east-1)")["KeyMetadata"]
    pkms.create_alias(AliasName="alias/acme-prod", TargetKeyId=pkey["KeyId"])
    dkey = dkms.create_key(Description="dr backups (us-west-2)")["KeyMetadata"]
    dkms.create_alias(AliasName=DR_KEY_ALIAS, TargetKeyId=dkey["KeyId"])

    rds = session.client("rds", PRIMARY)
    rds.create_db_instance(
        DBInstanceIdentifier=INSTANCE, Engine="mysql", EngineVersion="8.0.35",
        DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="acme",
        MasterUserPassword="sandbox-only-password", StorageEncrypted=True,
        KmsKeyId=pkey["Arn"], Tags=[{"Key": "team", "Value": "web"}],
    )
    rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER, Engine="aurora-mysql", MasterUsername="acme",
        MasterUserPassword="sandbox-only-password", StorageEncrypted=True,
        KmsKeyId=pkey["Arn"],
    )
    # Someone's own snapshot from before a migration: dr must list it as not its own and never
    # prune it.
    rds.create_db_snapshot(DBInstanceIdentifier=INSTANCE, DBSnapshotIdentifier=HAND_MADE_SNAPSHOT)
    return World(primary_key_arn=pkey["Arn"], dr_key_arn=dkey["Arn"])


def config_text(endpoint: str, state_path: Path | str) -> str:
    return f"""\
# dr.yaml for the dr sandbox world (dr sandbox start --seed / dr demo)
version: 1
regions: {{primary: {PRIMARY}, dr: {DR}}}
aws: {{endpoint_url: "{endpoint}"}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: {DR_KEY_ALIAS}}}
state: {{path: "{state_path}"}}
rds:
  - name: app-db
    instance: {INSTANCE}
    schedule: every 1h
    retention: {{last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}}
  - name: aurora
    cluster: {CLUSTER}
    schedule: every 1h
    retention: {{last: 3, daily: 7}}
"""
