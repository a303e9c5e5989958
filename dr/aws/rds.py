"""RDS for both DB instances and Aurora clusters, behind one small interface: `Rds`.

The two kinds have parallel APIs with different names (CreateDBSnapshot vs
CreateDBClusterSnapshot, DBSnapshotArn vs DBClusterSnapshotArn, ...). `RdsKind` holds the names,
so the backup, catalog, prune and restore code is written once. Every snapshot describe in dr
comes out as one `Snapshot` (with `recovery_time`, when its data was captured).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dr.aws.errors import aws_call
from dr.errors import AwsError

# Tags dr puts on every snapshot it makes; ownership is proven by dr:managed + dr:name.
TAG_MANAGED = "dr:managed"
TAG_NAME = "dr:name"
TAG_SOURCE_ID = "dr:source-id"
TAG_SOURCE_REGION = "dr:source-region"
TAG_CREATED_AT = "dr:created-at"
TAG_SLOT = "dr:slot"
TAG_ROLE = "dr:role"  # "source" (primary region) or "copy" (DR region)
TAG_COPY_OF = "dr:copy-of"


@dataclass(frozen=True)
class RdsKind:
    kind: str  # "instance" | "cluster"
    label: str  # for messages
    describe_source: str
    source_list_key: str
    source_param: str
    source_arn_key: str
    create: str
    copy: str
    delete: str
    describe: str
    list_key: str
    item_key: str
    id_key: str
    arn_key: str
    copy_source_param: str
    copy_target_param: str
    source_not_found: str
    not_found: str
    already_exists: str
    encrypted_key: str  # on the source

    @property
    def record_kind(self) -> str:
        return f"rds-{self.kind}"


INSTANCE = RdsKind(
    kind="instance", label="DB instance",
    describe_source="describe_db_instances", source_list_key="DBInstances",
    source_param="DBInstanceIdentifier", source_arn_key="DBInstanceArn",
    create="create_db_snapshot", copy="copy_db_snapshot", delete="delete_db_snapshot",
    describe="describe_db_snapshots", list_key="DBSnapshots", item_key="DBSnapshot",
    id_key="DBSnapshotIdentifier", arn_key="DBSnapshotArn",
    copy_source_param="SourceDBSnapshotIdentifier", copy_target_param="TargetDBSnapshotIdentifier",
    source_not_found="DBInstanceNotFound", not_found="DBSnapshotNotFound",
    already_exists="DBSnapshotAlreadyExists", encrypted_key="StorageEncrypted",
)
CLUSTER = RdsKind(
    kind="cluster", label="Aurora cluster",
    describe_source="describe_db_clusters", source_list_key="DBClusters",
    source_param="DBClusterIdentifier", source_arn_key="DBClusterArn",
    create="create_db_cluster_snapshot", copy="copy_db_cluster_snapshot",
    delete="delete_db_cluster_snapshot",
    describe="describe_db_cluster_snapshots", list_key="DBClusterSnapshots",
    item_key="DBClusterSnapshot",
    id_key="DBClusterSnapshotIdentifier", arn_key="DBClusterSnapshotArn",
    copy_source_param="SourceDBClusterSnapshotIdentifier",
    copy_target_param="TargetDBClusterSnapshotIdentifier",
    source_not_found="DBClusterNotFoundFault", not_found="DBClusterSnapshotNotFoundFault",
    already_exists="DBClusterSnapshotAlreadyExistsFault", encrypted_key="StorageEncrypted",
)
KINDS = {"instance": INSTANCE, "cluster": CLUSTER}


@dataclass(frozen=True)
class Snapshot:
    """One manual snapshot as AWS describes it, in either region."""

    id: str
    arn: str
    region: str
    source_id: str
    status: str
    created: datetime | None
    encrypted: bool
    kms_key_id: str | None
    tags: dict[str, str]
    progress: int | None = None
    engine: str = ""
    recovery_time: datetime | None = None  # when the data was captured: a copy keeps the original's

    @property
    def managed_name(self) -> str | None:
        """The dr config name that owns this snapshot, or None if dr did not make it."""
        if self.tags.get(TAG_MANAGED) == "true":
            return self.tags.get(TAG_NAME)
        return None


@dataclass(frozen=True)
class Source:
    id: str
    arn: str
    status: str
    encrypted: bool
    kms_key_id: str | None


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("TagList", []) or []}


def aware(value: Any) -> datetime | None:
    """An AWS timestamp (datetime or ISO string) as an aware UTC datetime; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _tag_time(value: str | None) -> datetime | None:
    """dr:created-at as written by dr (ISO with a timezone); None when absent or not that."""
    try:
        when = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return when.astimezone(timezone.utc) if when is not None and when.tzinfo else None


def recovery_time(item: dict[str, Any]) -> datetime | None:
    """When the snapshot's data was captured: a copy keeps the original's time."""
    if item.get("OriginalSnapshotCreateTime"):
        return aware(item["OriginalSnapshotCreateTime"])
    return _tag_time(_tags(item).get(TAG_CREATED_AT)) or aware(item.get("SnapshotCreateTime"))


def to_snapshot(kind: RdsKind, region: str, item: dict[str, Any]) -> Snapshot:
    source_key = "DBClusterIdentifier" if kind is CLUSTER else "DBInstanceIdentifier"
    return Snapshot(
        id=item[kind.id_key],
        arn=item.get(kind.arn_key, ""),
        region=region,
        source_id=item.get(source_key, ""),
        status=item.get("Status", "unknown"),
        created=aware(item.get("SnapshotCreateTime")),
        encrypted=bool(item.get("StorageEncrypted", item.get("Encrypted", False))),
        kms_key_id=item.get("KmsKeyId"),
        tags=_tags(item),
        progress=item.get("PercentProgress"),
        engine=str(item.get("Engine") or ""),
        recovery_time=recovery_time(item),
    )


def describe_source(client, kind: RdsKind, source_id: str, region: str) -> Source | None:
    """The instance or cluster, or None if it does not exist."""
    try:
        resp = aws_call(getattr(client, kind.describe_source), **{kind.source_param: source_id},
                        action="describing", resource=f"{kind.label} {source_id}", region=region)
    except AwsError as exc:
        if exc.code == kind.source_not_found:
            return None
        raise
    item = resp[kind.source_list_key][0]
    status_key = "Status" if kind is CLUSTER else "DBInstanceStatus"
    return Source(
        id=source_id,
        arn=item.get(kind.source_arn_key, ""),
        status=item.get(status_key, "unknown"),
        encrypted=bool(item.get(kind.encrypted_key, False)),
        kms_key_id=item.get("KmsKeyId"),
    )


def list_snapshots(client, kind: RdsKind, source_id: str, region: str) -> list[Snapshot]:
    """Every manual snapshot of `source_id` in `region`, through all pages."""
    def fetch() -> list[Snapshot]:
        paginator = client.get_paginator(kind.describe)
        pages = paginator.paginate(**{kind.source_param: source_id}, SnapshotType="manual")
        return [to_snapshot(kind, region, item)
                for page in pages for item in page.get(kind.list_key, [])]

    return aws_call(fetch, action="listing snapshots of", resource=f"{kind.label} {source_id}",
                    region=region)


def get_snapshot(client, kind: RdsKind, snapshot_id: str, region: str) -> Snapshot | None:
    try:
        resp = aws_call(getattr(client, kind.describe), **{kind.id_key: snapshot_id},
                        action="describing snapshot", resource=snapshot_id, region=region)
    except AwsError as exc:
        if exc.code == kind.not_found:
            return None
        raise
    items = resp.get(kind.list_key, [])
    return to_snapshot(kind, region, items[0]) if items else None


def create_snapshot(client, kind: RdsKind, source_id: str, snapshot_id: str,
                    tags: dict[str, str], region: str) -> Snapshot:
    resp = aws_call(
        getattr(client, kind.create),
        **{kind.source_param: source_id, kind.id_key: snapshot_id},
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        action="creating snapshot of", resource=f"{kind.label} {source_id}", region=region,
    )
    return to_snapshot(kind, region, resp[kind.item_key])


def copy_snapshot(client, kind: RdsKind, source: Snapshot, target_id: str, kms_key_arn: str,
                  tags: dict[str, str], region: str) -> Snapshot:
    """Start a cross-region copy into `region` (the client's region), encrypted with the DR key.

    boto3 pre-signs the request in the source region from SourceRegion (needed for encrypted
    snapshots)."""
    resp = aws_call(
        getattr(client, kind.copy),
        **{kind.copy_source_param: source.arn, kind.copy_target_param: target_id},
        KmsKeyId=kms_key_arn,
        SourceRegion=source.region,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        action="copying snapshot", resource=f"{source.id} from {source.region}", region=region,
    )
    return to_snapshot(kind, region, resp[kind.item_key])


def delete_snapshot(client, kind: RdsKind, snapshot_id: str, region: str) -> None:
    aws_call(getattr(client, kind.delete), **{kind.id_key: snapshot_id},
             action="deleting snapshot", resource=snapshot_id, region=region)


class Rds:
    """One region's RDS: sources and manual snapshots of either kind, as domain types."""

    def __init__(self, client: Any, region: str):
        self.client, self.region = client, region

    def source(self, kind: RdsKind, source_id: str) -> Source | None:
        return describe_source(self.client, kind, source_id, self.region)

    def snapshots(self, kind: RdsKind, source_id: str) -> list[Snapshot]:
        return list_snapshots(self.client, kind, source_id, self.region)

    def snapshot(self, kind: RdsKind, snapshot_id: str) -> Snapshot | None:
        return get_snapshot(self.client, kind, snapshot_id, self.region)

    def create_snapshot(self, kind: RdsKind, source_id: str, snapshot_id: str,
                        tags: dict[str, str]) -> Snapshot:
        return create_snapshot(self.client, kind, source_id, snapshot_id, tags, self.region)

    def copy_snapshot(self, kind: RdsKind, source: Snapshot, target_id: str, kms_key_arn: str,
                      tags: dict[str, str]) -> Snapshot:
        return copy_snapshot(self.client, kind, source, target_id, kms_key_arn, tags, self.region)

    def delete_snapshot(self, kind: RdsKind, snapshot_id: str) -> None:
        delete_snapshot(self.client, kind, snapshot_id, self.region)
