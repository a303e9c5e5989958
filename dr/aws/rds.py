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
    already_exists_target: str  # restoring or creating a database of this kind that exists

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
    already_exists_target="DBInstanceAlreadyExists",
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
    already_exists_target="DBClusterAlreadyExistsFault",
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


@dataclass(frozen=True)
class Database:
    """A DB instance or an Aurora cluster as described (what a restore makes, a teardown deletes)."""

    id: str
    kind: RdsKind
    status: str
    engine: str
    endpoint: str | None
    port: int | None
    tags: dict[str, str]
    members: tuple[str, ...] = ()  # a cluster's instances


def to_database(kind: RdsKind, item: dict[str, Any]) -> Database:
    if kind is CLUSTER:
        return Database(item["DBClusterIdentifier"], kind, item.get("Status", ""), str(item.get("Engine") or ""),
                        item.get("Endpoint"), item.get("Port"), _tags(item),
                        tuple(m["DBInstanceIdentifier"] for m in item.get("DBClusterMembers") or []))
    endpoint = item.get("Endpoint") or {}
    return Database(item["DBInstanceIdentifier"], kind, item.get("DBInstanceStatus", ""),
                    str(item.get("Engine") or ""), endpoint.get("Address"), endpoint.get("Port"), _tags(item))


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

    def all_snapshots(self, kind: RdsKind) -> list[Snapshot]:
        """Every manual snapshot of this kind in the region, of any source."""
        return [to_snapshot(kind, self.region, item)
                for item in self._pages(kind.describe, kind.list_key, "listing snapshots", "(manual)",
                                        SnapshotType="manual")]

    # -- databases: restore targets

    def database(self, kind: RdsKind, identifier: str) -> Database | None:
        try:
            items = aws_call(getattr(self.client, kind.describe_source), **{kind.source_param: identifier},
                             action="describing", resource=f"{kind.label} {identifier}",
                             region=self.region)[kind.source_list_key]
        except AwsError as exc:
            if exc.code == kind.source_not_found:
                return None
            raise
        return to_database(kind, items[0]) if items else None

    def databases(self, kind: RdsKind) -> list[Database]:
        """Every DB instance (or cluster) in the region."""
        return [to_database(kind, item) for item in self._pages(
            kind.describe_source, kind.source_list_key,
            "listing DB clusters" if kind is CLUSTER else "listing DB instances", "(all)")]

    def restore_instance(self, identifier: str, snapshot_id: str, tags: dict[str, str], *,
                         instance_class: str | None, multi_az: bool, network: dict[str, Any]) -> bool:
        """RestoreDBInstanceFromDBSnapshot; False when the instance exists already (a retried call)."""
        args = {"DBInstanceIdentifier": identifier, "DBSnapshotIdentifier": snapshot_id,
                "Tags": _tag_list(tags), "MultiAZ": multi_az, **network}
        if instance_class:
            args["DBInstanceClass"] = instance_class
        return self._unless(INSTANCE.already_exists_target, self.client.restore_db_instance_from_db_snapshot,
                            **args, action="restoring", resource=f"DB instance {identifier} from {snapshot_id}")

    def restore_cluster(self, identifier: str, snapshot_id: str, engine: str, tags: dict[str, str], *,
                        network: dict[str, Any]) -> bool:
        """RestoreDBClusterFromSnapshot; False when the cluster exists already."""
        return self._unless(CLUSTER.already_exists_target, self.client.restore_db_cluster_from_snapshot,
                            DBClusterIdentifier=identifier, SnapshotIdentifier=snapshot_id, Engine=engine,
                            Tags=_tag_list(tags), **network, action="restoring",
                            resource=f"Aurora cluster {identifier} from {snapshot_id}")

    def create_cluster_instance(self, instance_id: str, cluster_id: str, engine: str,
                                instance_class: str | None, tags: dict[str, str]) -> bool:
        """A writer instance in the cluster; False when it exists already."""
        return self._unless(INSTANCE.already_exists_target, self.client.create_db_instance,
                            DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id, Engine=engine,
                            DBInstanceClass=instance_class, Tags=_tag_list(tags),
                            action="creating the writer instance of", resource=f"Aurora cluster {cluster_id}")

    def delete_database(self, kind: RdsKind, identifier: str) -> None:
        """Delete with no final snapshot; gone (or going) already is success."""
        if kind is CLUSTER:
            call, args = self.client.delete_db_cluster, {"DBClusterIdentifier": identifier}
        else:
            call = self.client.delete_db_instance
            args = {"DBInstanceIdentifier": identifier, "DeleteAutomatedBackups": True}
        try:
            aws_call(call, **args, SkipFinalSnapshot=True, action="deleting",
                     resource=f"{kind.label} {identifier}", region=self.region)
        except AwsError as exc:
            if exc.code != kind.source_not_found and "already being deleted" not in str(exc):
                raise

    def _unless(self, code: str, call, *, action: str, resource: str, **kwargs: Any) -> bool:
        try:
            aws_call(call, **kwargs, action=action, resource=resource, region=self.region)
        except AwsError as exc:
            if exc.code != code:  # a retried request whose first attempt got through
                raise
            return False
        return True

    def _pages(self, op: str, key: str, action: str, resource: str, **kwargs: Any) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            return [item for page in self.client.get_paginator(op).paginate(**kwargs) for item in page.get(key, [])]

        return aws_call(fetch, action=action, resource=resource, region=self.region)


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
