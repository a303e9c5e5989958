"""Sandbox fidelity patches for RDS: engine names, the RDS resources of CloudFormation (instance,
cluster, DeletionPolicy: Snapshot) and read replicas of a deleted source. See __init__.py."""

from __future__ import annotations

import functools
import logging
import random
import re
import string
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


# --- 1. RDS engine names ------------------------------------------------------------------------


def patch_rds_engine_case() -> None:
    """moto 5.2.5 `DBInstance.__init__` / `DBCluster.__init__` compare `Engine` case-sensitively
    against lowercase lists, so `Engine: MySQL` (as in AWS's own sample templates) is refused with
    "Value MySQL for parameter Engine is invalid". AWS accepts any case and stores the lowercase
    name ("mysql"). The patch lowercases `engine` on the way in, for the API and CloudFormation."""
    from moto.rds import models

    for cls in (models.DBInstance, models.DBCluster):
        original = cls.__init__
        if getattr(original, "_dr_fidelity", False):
            continue

        @functools.wraps(original)
        def init(self, *args: Any, __original=original, **kwargs: Any) -> None:
            if isinstance(kwargs.get("engine"), str):
                kwargs["engine"] = kwargs["engine"].lower()
            __original(self, *args, **kwargs)

        init._dr_fidelity = True  # type: ignore[attr-defined]
        cls.__init__ = init


# --- 3. AWS::RDS::DBInstance properties CloudFormation honours and moto ignores ----------------


def patch_rds_cfn_instance() -> None:
    """moto 5.2.5 `DBInstance.create_from_cloudformation_json` ignores `DBSnapshotIdentifier`
    (it creates an EMPTY database where AWS restores the snapshot: the whole point of a DR
    relaunch), ignores `VPCSecurityGroups` (it reads a non-existent `VpcSecurityGroupIds`) and
    crashes on a `DBSubnetGroupName` given as a name (it expects a moto object). The patch restores
    from the snapshot (engine, storage, credentials come from the snapshot as on AWS; class,
    subnet group, security groups, Multi-AZ and tags from the template) and passes the other two
    properties through; everything else is left to moto."""
    from moto.rds import models

    cls = models.DBInstance
    original = cls.create_from_cloudformation_json.__func__
    if getattr(original, "_dr_fidelity", False):
        return

    def create_from_cloudformation_json(klass, resource_name: str, cloudformation_json: Any,
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        props = dict(cloudformation_json.get("Properties") or {})
        subnet_group = props.get("DBSubnetGroupName")
        groups = props.pop("VPCSecurityGroups", None)
        if groups and not props.get("VpcSecurityGroupIds"):
            props["VpcSecurityGroupIds"] = list(groups)
        snapshot = props.get("DBSnapshotIdentifier")
        backend = models.rds_backends[account_id][region_name]
        if snapshot:
            instance_id = props.get("DBInstanceIdentifier") or resource_name.replace("_", "-")
            overrides = {
                "db_instance_identifier": instance_id.lower(),
                "db_instance_class": props.get("DBInstanceClass"),
                "db_subnet_group_name": subnet_group if isinstance(subnet_group, str) else None,
                "vpc_security_group_ids": props.get("VpcSecurityGroupIds") or None,
                "multi_az": _bool(props.get("MultiAZ")),
                "publicly_accessible": _bool(props.get("PubliclyAccessible")),
                "port": props.get("Port"),
                "tags": props.get("Tags"),
            }
            return backend.restore_db_instance_from_db_snapshot(
                snapshot, {k: v for k, v in overrides.items() if v is not None})
        if isinstance(subnet_group, str):
            props["DBSubnetGroupName"] = backend.describe_db_subnet_groups(subnet_group)[0]
        return original(klass, resource_name, {**cloudformation_json, "Properties": props},
                        account_id, region_name, **kwargs)

    create_from_cloudformation_json._dr_fidelity = True  # type: ignore[attr-defined]
    create_from_cloudformation_json.__wrapped__ = original  # type: ignore[attr-defined]
    cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


# --- 8. AWS::RDS::DBCluster ---------------------------------------------------------------------

CLUSTER_ATTRIBUTES = ("Endpoint.Address", "Endpoint.Port", "ReadEndpoint.Address", "DBClusterArn",
                      "DBClusterResourceId")

# AWS::RDS::DBCluster property -> moto `create_db_cluster` argument, and how to read its value
_CLUSTER_PROPERTIES: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("Engine", "engine", str), ("EngineVersion", "engine_version", str),
    ("EngineMode", "engine_mode", str), ("MasterUsername", "master_username", str),
    ("MasterUserPassword", "master_user_password", str),
    ("ManageMasterUserPassword", "manage_master_user_password", _bool),
    ("DatabaseName", "database_name", str), ("Port", "port", int),
    ("DBSubnetGroupName", "db_subnet_group_name", str),
    ("VpcSecurityGroupIds", "vpc_security_group_ids", list),
    ("StorageEncrypted", "storage_encrypted", _bool), ("KmsKeyId", "kms_key_id", str),
    ("BackupRetentionPeriod", "backup_retention_period", int),
    ("DeletionProtection", "deletion_protection", _bool),
    ("CopyTagsToSnapshot", "copy_tags_to_snapshot", _bool),
    ("DBClusterParameterGroupName", "db_cluster_parameter_group_name", str),
    ("PreferredBackupWindow", "preferred_backup_window", str),
    ("PreferredMaintenanceWindow", "preferred_maintenance_window", str),
    ("DBClusterInstanceClass", "db_cluster_instance_class", str),
    ("AllocatedStorage", "allocated_storage", int), ("StorageType", "storage_type", str),
    ("Iops", "iops", int), ("AvailabilityZones", "availability_zones", list),
    ("EnableIAMDatabaseAuthentication", "enable_iam_database_authentication", _bool),
    ("GlobalClusterIdentifier", "global_cluster_identifier", str), ("Tags", "tags", list),
)


def patch_rds_cfn_cluster() -> None:
    """moto 5.2.5 has no CloudFormation model for `AWS::RDS::DBCluster`: the resource is skipped
    ("No Moto CloudFormation support for AWS::RDS::DBCluster"), so an Aurora stack comes up
    without its cluster, `!GetAtt Cluster.Endpoint.Address` crashes CreateStack (500), and an
    `AWS::RDS::DBInstance` with `DBClusterIdentifier` ignores that property. AWS creates the
    cluster, answers Ref (its identifier) and GetAtt, deletes it with the stack, and makes such an
    instance a member of it. The patch registers a model for the type (moto has no function of
    its own to wrap there) that goes through moto's RDS backend: `create_db_cluster`, or
    `restore_db_cluster_from_snapshot` when `SnapshotIdentifier` is given (an Aurora DR
    relaunch); GetAtt answers Endpoint.Address, Endpoint.Port, ReadEndpoint.Address, DBClusterArn
    and DBClusterResourceId. It wraps `DBInstance.create_from_cloudformation_json` so that an
    instance with `DBClusterIdentifier` joins the cluster. Not covered: updating a cluster in
    place (moto does not update its own DBInstance in place either)."""
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    from moto.core.common_models import CloudFormationModel
    from moto.rds import models

    if "AWS::RDS::DBCluster" not in parsing.get_model_map():
        class DBClusterResource(CloudFormationModel):
            """A stack's AWS::RDS::DBCluster: moto's own DBCluster is no CloudFormationModel."""

            def __init__(self, cluster: Any):
                self.cluster = cluster

            @staticmethod
            def cloudformation_name_type() -> str:
                return "DBClusterIdentifier"

            @staticmethod
            def cloudformation_type() -> str:
                return "AWS::RDS::DBCluster"

            @classmethod
            def has_cfn_attr(cls, attr: str) -> bool:
                return attr in CLUSTER_ATTRIBUTES

            @property
            def physical_resource_id(self) -> str:
                return self.cluster.db_cluster_identifier

            def get_cfn_attribute(self, attribute_name: str) -> Any:
                cluster = self.cluster
                values = {"Endpoint.Address": cluster.endpoint, "Endpoint.Port": cluster.port,
                          "ReadEndpoint.Address": cluster.reader_endpoint,
                          "DBClusterArn": cluster.db_cluster_arn,
                          "DBClusterResourceId": cluster.db_cluster_resource_id}
                if attribute_name not in values:
                    raise UnformattedGetAttTemplateException()
                return values[attribute_name]

            @classmethod
            def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any,
                                                account_id: str, region_name: str,
                                                **kwargs: Any) -> Any:
                props = cloudformation_json.get("Properties") or {}
                args = {arg: read(props[prop]) for prop, arg, read in _CLUSTER_PROPERTIES
                        if props.get(prop) is not None}
                args["db_cluster_identifier"] = resource_name.lower()
                backend = models.rds_backends[account_id][region_name]
                if props.get("SnapshotIdentifier"):
                    return cls(backend.restore_db_cluster_from_snapshot(props["SnapshotIdentifier"], args))
                return cls(backend.create_db_cluster(args))

            def delete(self, account_id: str, region_name: str) -> None:
                models.rds_backends[account_id][region_name].delete_db_cluster(self.physical_resource_id)

        for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
            cached.cache_clear()  # they list CloudFormationModel's subclasses once

    cls = models.DBInstance
    original = cls.create_from_cloudformation_json.__func__
    if getattr(original, "_dr_cluster_member", False):
        return

    def create_from_cloudformation_json(klass, resource_name: str, cloudformation_json: Any,
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        props = cloudformation_json.get("Properties") or {}
        cluster_id = props.get("DBClusterIdentifier")
        if not cluster_id:
            return original(klass, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = models.rds_backends[account_id][region_name]
        cluster = backend.describe_db_clusters(cluster_id)[0]
        member = {
            "db_instance_identifier": resource_name.replace("_", "-").lower(),
            "db_cluster_identifier": cluster.db_cluster_identifier,
            "engine": props.get("Engine") or cluster.engine,
            "db_instance_class": props.get("DBInstanceClass"),
            "availability_zone": props.get("AvailabilityZone"),
            "db_parameter_group_name": props.get("DBParameterGroupName"),
            "publicly_accessible": _bool(props.get("PubliclyAccessible")),
            "promotion_tier": None if props.get("PromotionTier") is None else int(props["PromotionTier"]),
            "tags": props.get("Tags"),
        }
        return backend.create_db_instance({k: v for k, v in member.items() if v is not None})

    create_from_cloudformation_json._dr_fidelity = True  # type: ignore[attr-defined]
    create_from_cloudformation_json._dr_cluster_member = True  # type: ignore[attr-defined]
    create_from_cloudformation_json.__wrapped__ = original  # type: ignore[attr-defined]
    cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def rds_cluster_of(resource: Any) -> Any:
    """The moto DBCluster behind a stack's AWS::RDS::DBCluster resource, or None."""
    return getattr(resource, "cluster", None) if getattr(resource, "cf_resource_type", "") \
        == "AWS::RDS::DBCluster" else None


# --- 10. DeletionPolicy: Snapshot ---------------------------------------------------------------


def final_snapshot_id(stack_name: str, logical_id: str, suffix: str | None = None) -> str:
    """The name CloudFormation gives the snapshot a `DeletionPolicy: Snapshot` takes, as its RDS
    resource handlers build it (aws-cloudformation-resource-providers-rds, DeleteHandler, with
    cloudformation-cli-java-plugin IdentifierUtils.generateResourceIdentifier): stack name,
    "Snapshot-" + logical id and 12 random letters and digits, joined by dashes, at most 255
    characters (the first two share what the suffix leaves), dashes collapsed, lowercased:
    `mystack-snapshot-maindb-a1b2c3d4e5f6`."""
    if suffix is None:
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
    stack = re.sub("-{2,}", "-", stack_name.lstrip("-"))
    resource = logical_id if logical_id.startswith("Snapshot-") else f"Snapshot-{logical_id}"
    free = 255 - len(suffix) - 2  # two dashes
    if len(stack) + len(resource) > free:  # fair split, as IdentifierUtils does
        half = free // 2
        if len(stack) <= half:
            resource = resource[:free - len(stack)]
        elif len(resource) <= half:
            stack = stack[:free - len(resource)]
        else:
            stack, resource = stack[:free - half], resource[:half]
    name = f"{stack}-{resource}-{suffix}"
    return re.sub("-{2,}", "-", name).strip("-").lower()


def patch_deletion_policy_snapshot() -> None:
    """moto 5.2.5 `ResourceMap.delete` honours `DeletionPolicy: Retain` only: an
    AWS::RDS::DBInstance or AWS::RDS::DBCluster with `DeletionPolicy: Snapshot` is deleted
    without a snapshot, and its data is gone. AWS takes a final manual snapshot, then deletes the
    resource, on DeleteStack and when an update removes the resource; it names the snapshot as
    `final_snapshot_id` does. It takes none of a read replica or of a cluster's member instance
    (RDS cannot), which are just deleted. The patch wraps `ResourceMap._delete_resource` and deletes
    such a resource with moto's own final-snapshot support (`delete_db_instance(...,
    final_db_snapshot_identifier)`, `delete_db_cluster(..., snapshot_name)`), so the snapshot's
    DBInstanceIdentifier / DBClusterIdentifier is the deleted resource's physical id, and gives
    the snapshot the resource's tags (so aws:cloudformation:stack-id and the others are on it).
    Not covered: `UpdateReplacePolicy: Snapshot` (moto does not replace RDS resources on update),
    and the default policy AWS documents for RDS (Snapshot when DeletionPolicy is absent, for a
    DBCluster and a DBInstance outside a cluster): the sandbox deletes those without a snapshot,
    as before, so deleting a sandbox stack leaves nothing behind unless the template asks."""
    from moto.cloudformation import parsing
    from moto.rds import models

    original = parsing.ResourceMap._delete_resource
    if getattr(original, "_dr_fidelity", False):
        return

    @functools.wraps(original)
    def _delete_resource(self, parsed_resource: Any, resource_json: dict[str, Any]) -> None:
        if resource_json.get("DeletionPolicy") != "Snapshot":
            return original(self, parsed_resource, resource_json)
        backend = models.rds_backends[self._account_id][self._region_name]
        cluster = rds_cluster_of(parsed_resource)
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        if cluster is not None:
            snapshot_id = final_snapshot_id(self["AWS::StackName"], logical_id)
            backend.delete_db_cluster(cluster.db_cluster_identifier, snapshot_name=snapshot_id)
            backend.cluster_snapshots[snapshot_id].add_tags(list(cluster.tags))
        elif isinstance(parsed_resource, models.DBInstance) and not _replica_or_member(
                parsed_resource, resource_json):
            snapshot_id = final_snapshot_id(self["AWS::StackName"], logical_id)
            backend.delete_db_instance(parsed_resource.db_instance_identifier,
                                       final_db_snapshot_identifier=snapshot_id)
            backend.database_snapshots[snapshot_id].add_tags(list(parsed_resource.tags))
        else:
            original(self, parsed_resource, resource_json)

    _delete_resource._dr_fidelity = True  # type: ignore[attr-defined]
    parsing.ResourceMap._delete_resource = _delete_resource


def _replica_or_member(instance: Any, resource_json: dict[str, Any]) -> bool:
    """A read replica or a cluster's member instance, as the template declares it (CloudFormation
    decides by the resource's properties) or as it is now."""
    props = resource_json.get("Properties") or {}
    return bool(props.get("SourceDBInstanceIdentifier") or props.get("DBClusterIdentifier")
                or instance.is_replica or instance.db_cluster_identifier)


# --- 11. Read replicas of a deleted source ------------------------------------------------------


def patch_rds_replica_promotion() -> None:
    """moto 5.2.5 `RDSBackend.delete_db_instance` leaves the read replicas of a deleted instance
    pointing at it: they still report it as ReadReplicaSourceDBInstanceIdentifier, and deleting
    one then fails with "DBInstance <source> not found" (moto looks the source up to detach the
    replica), which also fails DeleteStack for a stack with an instance and its replica whenever
    moto happens to delete the source first. AWS promotes each read replica in the same Region
    to a standalone DB instance when its source is deleted ("If you delete a source DB instance
    without deleting its read replicas in the same AWS Region, each read replica is promoted to a
    standalone DB instance", RDS User Guide, read replicas). The patch does that after moto's
    delete; replicas in other Regions (listed by ARN) are left as they are."""
    from moto.rds import models

    original = models.RDSBackend.delete_db_instance
    if getattr(original, "_dr_fidelity", False):
        return

    @functools.wraps(original)
    def delete_db_instance(self, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        database = original(self, db_instance_identifier, *args, **kwargs)
        for replica_id in list(getattr(database, "replicas", None) or []):
            replica = self.databases.get(replica_id)  # same Region: by identifier; others: by ARN
            if replica is not None and replica.is_replica:
                replica.is_replica = False
                replica.source_db_instance_identifier = None
        return database

    delete_db_instance._dr_fidelity = True  # type: ignore[attr-defined]
    models.RDSBackend.delete_db_instance = delete_db_instance
