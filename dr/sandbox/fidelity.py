"""Sandbox fidelity: small monkeypatches that make moto behave like AWS where dr relies on it.

The sandbox must relaunch a real-world CloudFormation template (the LAMP stack in
`WordPress_Multi_AZ.yaml`) in its DR region *unchanged*. moto falls short on such templates in a
few places; each patch below names the moto behaviour it corrects (as of moto 5.2.5), what AWS
does instead, and how it is fixed. `apply()` is called by the sandbox process only
(`dr.sandbox.server.EmbeddedAws`, and so `python -m dr.sandbox.server`); a plain
`python -m moto.server` stays unpatched, which is how the tests prove each patch is needed.

Every patch is idempotent, wraps moto's own function (the original is kept on the wrapper as
`__wrapped__`) and is skipped with a warning if the moto internals it wraps are gone, so a newer
moto that fixed the behaviour upstream keeps working.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CHECKED_WITH_MOTO = "5.2.5"


@dataclass(frozen=True)
class Patch:
    name: str
    wrong: str  # what moto does
    right: str  # what AWS does (and the patched sandbox now does)
    install: Callable[[], None]


# --- 1. RDS engine names ------------------------------------------------------------------------


def _patch_rds_engine_case() -> None:
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


# --- 2. Fn::GetAtt with a dotted attribute name -------------------------------------------------


def split_getatt(value: Any) -> Any:
    """`A.B.C` (or ["A", "B", "C"]) -> ["A", "B.C"]: the resource is what comes before the FIRST
    dot; the rest is the attribute, which may itself contain dots (Endpoint.Address)."""
    if isinstance(value, str):
        return value.split(".", 1)
    if isinstance(value, list) and len(value) > 2 and all(isinstance(v, str) for v in value):
        return [value[0], ".".join(value[1:])]
    return value


def _patch_getatt_dotted() -> None:
    """moto 5.2.5 splits the short form `!GetAtt DBInstance.Endpoint.Address` on EVERY dot
    (`yaml_tag_constructor` -> ["DBInstance", "Endpoint", "Address"]) and likewise `${A.B.C}` in
    `Fn::Sub`; `clean_json` then reads only the second element and asks the DB instance for the
    attribute "Endpoint", which fails the stack ("does not support attribute type Endpoint").
    The list form `!GetAtt [DB, Endpoint.Port]` comes out as raw YAML nodes instead of strings,
    which crashes the request. AWS splits on the first dot only: resource "DBInstance", attribute
    "Endpoint.Address". The patch fixes the YAML constructor for both forms and normalises any
    longer list before `clean_json` reads it."""
    from moto.cloudformation import models, parsing, responses, utils

    original_ctor = utils.yaml_tag_constructor
    if not getattr(original_ctor, "_dr_fidelity", False):
        @functools.wraps(original_ctor)
        def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
            if tag == "!GetAtt":
                value = node.value if isinstance(node.value, str) else loader.construct_sequence(node)
                return {"Fn::GetAtt": split_getatt(value)}
            return original_ctor(loader, tag, node)

        yaml_tag_constructor._dr_fidelity = True  # type: ignore[attr-defined]
        for module in (utils, models, responses):
            module.yaml_tag_constructor = yaml_tag_constructor

    original_clean = parsing.clean_json
    if not getattr(original_clean, "_dr_fidelity", False):
        @functools.wraps(original_clean)
        def clean_json(resource_json: Any, resources_map: Any) -> Any:
            if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
                fixed = split_getatt(resource_json["Fn::GetAtt"])
                if fixed is not resource_json["Fn::GetAtt"]:
                    resource_json = {**resource_json, "Fn::GetAtt": fixed}
            return original_clean(resource_json, resources_map)

        clean_json._dr_fidelity = True  # type: ignore[attr-defined]
        parsing.clean_json = clean_json  # the recursive calls inside go through this name


# --- 3. AWS::RDS::DBInstance properties CloudFormation honours and moto ignores ----------------


def _patch_rds_cfn_instance() -> None:
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


# --- 4. ValidateTemplate ------------------------------------------------------------------------


def _patch_validate_template() -> None:
    """moto 5.2.5 `ValidateTemplate` runs cfn-lint and fails on the first match of ANY level, so
    a warning such as W7001 "Mapping 'AWSInstanceType2NATArch' is defined but not used" rejects
    AWS's own sample template; the message is then passed where a stack name is expected and
    reads "Stack with id Mapping ... does not exist". AWS validates syntax and structure only.
    The patch keeps cfn-lint's errors (rule ids starting with E) and reports the first one as a
    plain ValidationError."""
    from moto.cloudformation import models
    from moto.cloudformation.exceptions import ValidationError

    original = models.CloudFormationBackend.validate_template
    if getattr(original, "_dr_fidelity", False):
        return

    @functools.wraps(original)
    def validate_template(self, template: str) -> list[Any]:
        errors = [m for m in original(self, template) or []
                  if str(getattr(getattr(m, "rule", None), "id", "E")).startswith("E")]
        if errors:
            raise ValidationError(message=f"Template format error: {errors[0].message}")
        return []

    validate_template._dr_fidelity = True  # type: ignore[attr-defined]
    models.CloudFormationBackend.validate_template = validate_template


# --- 5. A resource that fails to create ---------------------------------------------------------


def _patch_stack_create_failure() -> None:
    """moto 5.2.5 creates stack resources inside the CreateStack call: when one fails, the call
    returns that resource's error and the stack stays in CREATE_IN_PROGRESS for ever, with no
    event saying which resource failed. AWS accepts CreateStack, then records CREATE_FAILED on the
    resource (with the reason), rolls back and leaves the stack in ROLLBACK_COMPLETE, which
    callers detect and recover from (delete, then create again). The patch does the same: it
    records the failing resource's event, deletes what was created, and sets ROLLBACK_COMPLETE."""
    from moto.cloudformation import models, parsing

    original_create = parsing.parse_and_create_resource
    if getattr(original_create, "_dr_fidelity", False):
        return

    @functools.wraps(original_create)
    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str, region_name: str) -> Any:
        try:
            return original_create(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            if not hasattr(exc, "_dr_failed_resource"):
                exc._dr_failed_resource = (logical_id, resource_json.get("Type", ""))  # type: ignore[attr-defined]
            raise

    parse_and_create_resource._dr_fidelity = True  # type: ignore[attr-defined]
    parsing.parse_and_create_resource = parse_and_create_resource

    original_resources = models.Stack.create_resources

    @functools.wraps(original_resources)
    def create_resources(self) -> None:
        try:
            original_resources(self)
        except Exception as exc:  # noqa: BLE001 - any failure of a resource rolls the stack back
            _roll_back(self, exc, models)

    create_resources._dr_fidelity = True  # type: ignore[attr-defined]
    models.Stack.create_resources = create_resources


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or getattr(exc, "description", None) or str(exc)
    code = getattr(exc, "error_type", None) or type(exc).__name__
    return f"{message} (Service: moto; Error Code: {code})"


def _roll_back(stack: Any, exc: BaseException, models: Any) -> None:
    logical_id, resource_type = getattr(exc, "_dr_failed_resource", ("", ""))
    reason = _reason(exc)
    if logical_id:
        stack.events.append(models.Event(
            stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
            physical_resource_id="", resource_type=resource_type, resource_status="CREATE_FAILED",
            resource_status_reason=reason, resource_properties=json.dumps({})))
    stack.status = "ROLLBACK_IN_PROGRESS"
    stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=(
        f"The following resource(s) failed to create: [{logical_id}]. Rollback requested by user."
        if logical_id else reason))
    try:
        stack.resource_map.delete()
    except Exception as cleanup_error:  # noqa: BLE001 - best effort, like a failed rollback
        log.warning("sandbox rollback of %s left resources behind: %s", stack.name, cleanup_error)
    # A rolled-back stack has no resources and no outputs. moto creates resources lazily when
    # they are read (outputs, DescribeStackResources), which would retry the failed one.
    from moto.cloudformation import parsing

    stack.resource_map._resource_json_map = {}
    stack.output_map = parsing.OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


# --- 6. DescribeStacks parameters ---------------------------------------------------------------


def _patch_stack_parameter_list() -> None:
    """moto 5.2.5 `Stack.parameter_list` shows a `List<...>` parameter as a Python repr
    ("['subnet-1', 'subnet-2']") and never masks NoEcho parameters (it tests the VALUE against
    the list of no-echo KEYS), so DescribeStacks leaks `DBPassword`. AWS shows lists as the
    comma-separated string that was passed in ("subnet-1,subnet-2") and NoEcho values as "****";
    callers that compare parameters to decide whether a stack needs an update rely on both."""
    from moto.cloudformation import models

    original = models.Stack.parameter_list
    if getattr(original.fget, "_dr_fidelity", False):
        return

    def parameter_list(self) -> list[dict[str, Any]]:
        no_echo = set(self.resource_map.no_echo_parameter_keys)
        shown = []
        for key, value in self.resource_map.resolved_parameters.items():
            if key in no_echo:
                value = "****"
            elif isinstance(value, list):
                value = ",".join(str(v) for v in value)
            shown.append({"ParameterKey": key, "ParameterValue": value})
        return shown

    parameter_list._dr_fidelity = True  # type: ignore[attr-defined]
    parameter_list.__wrapped__ = original.fget  # type: ignore[attr-defined]
    models.Stack.parameter_list = property(parameter_list)


# --- 7. Fn::GetAZs "" in a stack outside us-east-1 --------------------------------------------


def _patch_getazs_region() -> None:
    """moto 5.2.5 answers `!GetAZs ""` (the stack's own region) with us-east-1's zones whatever
    the region (`clean_json`: `resource_json.get("Fn::GetAZs") or DEFAULT_REGION`), so a
    region-agnostic template fails in the DR region (a load balancer in 'us-east-1a' in
    us-west-2). AWS uses the region the stack is in."""
    from moto.cloudformation import parsing

    original_clean = parsing.clean_json
    if getattr(original_clean, "_dr_getazs", False):
        return

    @functools.wraps(original_clean)
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAZs" in resource_json \
                and not resource_json["Fn::GetAZs"]:
            resource_json = {"Fn::GetAZs": getattr(resources_map, "_region_name", "")}
        return original_clean(resource_json, resources_map)

    clean_json._dr_fidelity = True  # type: ignore[attr-defined]
    clean_json._dr_getazs = True  # type: ignore[attr-defined]
    parsing.clean_json = clean_json


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


def _patch_rds_cfn_cluster() -> None:
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


def _rds_cluster_of(resource: Any) -> Any:
    """The moto DBCluster behind a stack's AWS::RDS::DBCluster resource, or None."""
    return getattr(resource, "cluster", None) if getattr(resource, "cf_resource_type", "") \
        == "AWS::RDS::DBCluster" else None


# --- 9. Stack tags on the resources a stack creates ---------------------------------------------


def stack_resource_tags(stack_tags: dict[str, str], stack_name: str, stack_id: str, logical_id: str,
                        own: dict[str, str]) -> dict[str, str]:
    """The tags CloudFormation gives a resource it creates: the stack's tags, then the resource's
    own Tags from the template (which win on a key conflict), then the three
    aws:cloudformation:* tags (no one else may set aws: keys)."""
    tags = {k: v for k, v in stack_tags.items() if not k.startswith("aws:")}
    tags.update({k: v for k, v in own.items() if not k.startswith("aws:")})
    tags.update({"aws:cloudformation:stack-name": stack_name, "aws:cloudformation:stack-id": stack_id,
                 "aws:cloudformation:logical-id": logical_id})
    return tags


def _patch_stack_tags() -> None:
    """moto 5.2.5 does not propagate a stack's tags, nor add the aws:cloudformation:stack-name,
    stack-id and logical-id tags, to what the stack creates, except to EC2 resources; and there
    (`ResourceMap.create`) the stack's tags overwrite the resource's own Tags of the same key, and
    resources added by UpdateStack get none. AWS tags every resource that supports tags with the
    stack's tags (the resource's own Tags win a key conflict) plus those three, on create and for
    resources an update adds (with the tags that update passed). The patch does so after moto
    creates a resource (`parse_and_create_resource`), for AWS::RDS::DBInstance,
    AWS::RDS::DBCluster, AWS::S3::Bucket and the EC2 resources moto tags itself
    (AWS::EC2::Instance, SecurityGroup, VPC, Subnet, Volume, ...; not LaunchTemplate), puts the
    EC2 resources' own Tags back after `ResourceMap.create` has overwritten them, and gives the
    resource map the tags an UpdateStack passes (`Stack.update`). Not covered: retagging the
    resources a stack already has when an update changes the stack's tags."""
    from moto.cloudformation import models as cfn_models
    from moto.cloudformation import parsing
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.models.launch_templates import LaunchTemplate
    from moto.rds import models as rds_models
    from moto.s3 import models as s3_models
    from moto.utilities.utils import get_partition

    def tagging(resource: Any, account_id: str, region_name: str) -> Any:
        """(the resource's tags now, a function adding tags to it), or None: not covered."""
        target = _rds_cluster_of(resource) or resource
        if isinstance(target, (rds_models.DBInstance, rds_models.DBCluster)):
            return ({t["Key"]: t["Value"] for t in target.tags},
                    lambda tags: target.add_tags([{"Key": k, "Value": v} for k, v in tags.items()]))
        if isinstance(resource, TaggedEC2Resource) and not isinstance(resource, LaunchTemplate):
            ec2 = resource.ec2_backend
            rid = resource.physical_resource_id
            return dict(ec2.tags.get(rid, {})), lambda tags: ec2.create_tags([rid], tags)
        if isinstance(resource, s3_models.FakeBucket):
            tagger = s3_models.s3_backends[account_id][get_partition(region_name)].tagger
            current = tagger.list_tags_for_resource(resource.arn)["Tags"]
            return ({t["Key"]: t["Value"] for t in current},
                    lambda tags: tagger.tag_resource(resource.arn,
                                                     [{"Key": k, "Value": v} for k, v in tags.items()]))
        return None

    original_create = parsing.parse_and_create_resource
    if getattr(original_create, "_dr_stack_tags", False):
        return

    @functools.wraps(original_create)
    def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str, region_name: str) -> Any:
        resource = original_create(logical_id, resource_json, resources_map, account_id, region_name)
        handle = tagging(resource, account_id, region_name) if resource is not None else None
        if handle is not None:
            own, add = handle
            resource._dr_own_tags = {k: v for k, v in own.items() if not k.startswith("aws:")}
            add(stack_resource_tags(resources_map.tags, resources_map["AWS::StackName"],
                                    resources_map.stack_id, logical_id, own))
        return resource

    parse_and_create_resource._dr_fidelity = True  # type: ignore[attr-defined]
    parse_and_create_resource._dr_stack_tags = True  # type: ignore[attr-defined]
    parsing.parse_and_create_resource = parse_and_create_resource

    original_map_create = parsing.ResourceMap.create

    @functools.wraps(original_map_create)
    def create(self, template: dict[str, Any]) -> bool:
        ready = original_map_create(self, template)
        for resource in list(self._parsed_resources.values()):
            own = getattr(resource, "_dr_own_tags", None)
            if own and isinstance(resource, TaggedEC2Resource):  # moto just overwrote them
                resource.ec2_backend.create_tags([resource.physical_resource_id], own)
        return ready

    create._dr_fidelity = True  # type: ignore[attr-defined]
    parsing.ResourceMap.create = create

    original_update = cfn_models.Stack.update

    @functools.wraps(original_update)
    def update(self, template: str, role_arn: str | None = None, parameters: Any = None,
               tags: dict[str, str] | None = None) -> None:
        if tags is not None:
            self.resource_map.tags = dict(tags)
        original_update(self, template, role_arn=role_arn, parameters=parameters, tags=tags)

    update._dr_fidelity = True  # type: ignore[attr-defined]
    cfn_models.Stack.update = update


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


def _patch_deletion_policy_snapshot() -> None:
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
        cluster = _rds_cluster_of(parsed_resource)
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


def _patch_rds_replica_promotion() -> None:
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


# --- 12. Atomic S3 conditional writes ------------------------------------------------------------

_S3_KEY_LOCKS = tuple(threading.RLock() for _ in range(64))


def _s3_key_lock(bucket: str, key: str) -> Any:
    """One of 64 locks, by bucket and key: writes of one key take turns, other keys need not wait."""
    return _S3_KEY_LOCKS[hash((bucket, key)) % len(_S3_KEY_LOCKS)]


def _patch_s3_conditional_writes() -> None:
    """moto 5.2.5 `S3Response.put_object` evaluates `If-None-Match: *` and `If-Match: <etag>`, and
    `delete_object` evaluates `If-Match`, and only then writes, holding nothing in between; the
    threaded server runs requests concurrently, so two conditional writers of one key can both
    pass the check and both succeed (the second silently replaces the first; a compare-and-swap
    counter loses increments). S3 evaluates the condition and applies the write atomically: of
    several concurrent conditional writers exactly one wins, the others get 412
    PreconditionFailed (or 409 ConditionalRequestConflict). The patch runs PutObject, CopyObject,
    DeleteObject and the POSTs on a key (CompleteMultipartUpload also takes If-None-Match) under
    a lock of that key, conditional or not (an unconditional write between another request's
    check and its write breaks the atomicity just as well); different keys do not wait for each
    other."""
    from moto.s3.responses import S3Response

    for name in ("put_object", "copy_object", "delete_object"):
        original = getattr(S3Response, name)
        if getattr(original, "_dr_fidelity", False):
            continue

        @functools.wraps(original)
        def handler(self, *args: Any, __original=original, **kwargs: Any) -> Any:
            with _s3_key_lock(self.bucket_name, self.parse_key_name()):
                return __original(self, *args, **kwargs)

        handler._dr_fidelity = True  # type: ignore[attr-defined]
        setattr(S3Response, name, handler)

    original_post = S3Response._key_response_post
    if getattr(original_post, "_dr_fidelity", False):
        return

    @functools.wraps(original_post)
    def _key_response_post(self, request: Any, body: bytes, bucket_name: str, query: dict[str, Any],
                           key_name: str) -> Any:
        with _s3_key_lock(bucket_name, key_name):
            return original_post(self, request, body, bucket_name, query, key_name)

    _key_response_post._dr_fidelity = True  # type: ignore[attr-defined]
    S3Response._key_response_post = _key_response_post


# --- 13. A short-form tag on a mapping ----------------------------------------------------------


def _patch_yaml_tag_on_mapping() -> None:
    """moto 5.2.5 `yaml_tag_constructor` builds a short-form intrinsic from a scalar or a
    sequence only: on a mapping, such as `UserData: !Base64` followed by an indented
    `Fn::Sub: |` block (AWS's AutoScalingMultiAZWithNotifications sample), it passes the raw YAML
    nodes on and the resource fails ("'list' object has no attribute 'encode'"). AWS reads the
    mapping: there, the Base64 of what Fn::Sub makes. The patch constructs the mapping (and
    what is nested in it) before moto sees it."""
    import yaml
    from moto.cloudformation import models, responses, utils

    original = utils.yaml_tag_constructor
    if getattr(original, "_dr_yaml_mapping", False):
        return

    @functools.wraps(original)
    def yaml_tag_constructor(loader: Any, tag: str, node: Any) -> Any:
        if isinstance(node, yaml.MappingNode):
            return {"Ref" if tag == "!Ref" else f"Fn::{tag[1:]}": loader.construct_mapping(node, deep=True)}
        return original(loader, tag, node)

    yaml_tag_constructor._dr_fidelity = True  # type: ignore[attr-defined]
    yaml_tag_constructor._dr_yaml_mapping = True  # type: ignore[attr-defined]
    for module in (utils, models, responses):
        module.yaml_tag_constructor = yaml_tag_constructor


# --- 14. UsePreviousValue for a parameter left at its default ----------------------------------


def _patch_use_previous_value() -> None:
    """moto 5.2.5 `CloudFormationBackend._resolve_update_parameters` looks a `UsePreviousValue`
    parameter up among the values CreateStack was given, so UpdateStack crashes (500, KeyError)
    for a parameter that took its Default, although DescribeStacks lists it. AWS keeps the value
    the stack has, given or defaulted: "UsePreviousValue for every parameter the stack has" is how
    callers change one parameter and keep the others. The patch leaves such a parameter out of
    the update, so it takes its Default again: the value it had, unless the new template changes
    that Default (then AWS would keep the old one). Passing the value instead would make moto
    count it as changed (it compares with the values CreateStack was given) and modify every
    resource that refers to it."""
    from moto.cloudformation import models

    original = models.CloudFormationBackend._resolve_update_parameters
    if getattr(original, "_dr_fidelity", False):
        return

    @functools.wraps(original)
    def _resolve_update_parameters(self, instance: Any, incoming_params: list[dict[str, Any]]) -> Any:
        given = getattr(instance, "parameters", None) or {}
        return original(self, instance, [p for p in incoming_params
                                         if not (p.get("UsePreviousValue") and p.get("ParameterKey") not in given)])

    _resolve_update_parameters._dr_fidelity = True  # type: ignore[attr-defined]
    models.CloudFormationBackend._resolve_update_parameters = _resolve_update_parameters


# --- 15. an ELBv2 target group is deleted with its stack -------------------------------------------


def _patch_target_group_delete() -> None:
    """moto 5.2.5 `FakeTargetGroup` has no CloudFormation delete: DeleteStack completes but the
    target group stays, so the next stack from the same template fails with
    DuplicateTargetGroupName when the template names it (AWS's AutoScalingMultiAZWithNotifications
    sample: `Name: MyTargetGroup`). AWS deletes it with the stack (unless DeletionPolicy: Retain,
    which moto already honours by not deleting at all). The patch gives target groups the delete
    CloudFormation calls, removing them from the region's ELBv2 backend."""
    from moto.elbv2 import models

    if getattr(getattr(models.FakeTargetGroup, "delete", None), "_dr_fidelity", False):
        return

    def delete(self, account_id: str, region_name: str) -> None:
        backend = models.elbv2_backends[account_id][region_name]
        backend.target_groups.pop(self.arn, None)

    delete._dr_fidelity = True  # type: ignore[attr-defined]
    models.FakeTargetGroup.delete = delete


# --- applying -----------------------------------------------------------------------------------

PATCHES: tuple[Patch, ...] = (
    Patch("rds-engine-case", "Engine: MySQL is refused (engine names compared case-sensitively)",
          "engine names are case-insensitive and stored lowercase", _patch_rds_engine_case),
    Patch("getatt-dotted-attribute", "!GetAtt DBInstance.Endpoint.Address (and ${A.B.C} in !Sub) "
          "is split on every dot, so the attribute read is 'Endpoint'; !GetAtt [A, B] crashes",
          "split on the first dot: attribute 'Endpoint.Address'; the list form works",
          _patch_getatt_dotted),
    Patch("rds-cfn-instance", "AWS::RDS::DBInstance ignores DBSnapshotIdentifier and "
          "VPCSecurityGroups, and crashes on a DBSubnetGroupName string",
          "the instance is restored from the snapshot, with its security groups and subnet group",
          _patch_rds_cfn_instance),
    Patch("validate-template", "ValidateTemplate fails on cfn-lint warnings, with a garbled message",
          "only template errors fail validation", _patch_validate_template),
    Patch("stack-create-failure", "a resource failure fails CreateStack and leaves the stack in "
          "CREATE_IN_PROGRESS, with no event", "CREATE_FAILED event, rollback, ROLLBACK_COMPLETE",
          _patch_stack_create_failure),
    Patch("stack-parameter-list", "DescribeStacks shows List<> parameters as a Python repr and "
          "NoEcho parameters in clear", "comma-separated lists; NoEcho values shown as ****",
          _patch_stack_parameter_list),
    Patch("getazs-region", '!GetAZs "" answers us-east-1 zones in every region',
          "the zones of the stack's own region", _patch_getazs_region),
    Patch("rds-cfn-cluster", "AWS::RDS::DBCluster is skipped (no CloudFormation model); !GetAtt on "
          "it crashes; a DBInstance's DBClusterIdentifier is ignored",
          "the cluster is created (or restored from SnapshotIdentifier) and deleted with the stack; "
          "member instances join it", _patch_rds_cfn_cluster),
    Patch("stack-tags", "a stack's tags and the aws:cloudformation:* tags reach EC2 resources only, "
          "overwriting their own Tags", "every RDS instance and cluster, S3 bucket and EC2 resource "
          "the stack creates carries them; the resource's own Tags win", _patch_stack_tags),
    Patch("deletion-policy-snapshot", "DeletionPolicy: Snapshot deletes an RDS instance or cluster "
          "without a snapshot", "a final manual snapshot, tagged like the resource, then the delete",
          _patch_deletion_policy_snapshot),
    Patch("rds-replica-promotion", "deleting an instance leaves its read replicas pointing at it; "
          "deleting one of them then fails (source not found)",
          "the same-Region read replicas of a deleted instance become standalone instances",
          _patch_rds_replica_promotion),
    Patch("s3-atomic-conditional-writes", "If-None-Match / If-Match writes are checked, then written, "
          "unlocked: two concurrent conditional writers can both win",
          "condition and write are atomic: exactly one concurrent conditional writer wins",
          _patch_s3_conditional_writes),
    Patch("yaml-tag-on-mapping", "a short-form tag on a mapping (!Base64 over an Fn::Sub block) "
          "reaches the resource as raw YAML nodes", "the mapping is read, as any other value",
          _patch_yaml_tag_on_mapping),
    Patch("use-previous-value", "UpdateStack crashes (500) on UsePreviousValue for a parameter that "
          "took its default", "the stack's current value is kept, given or defaulted",
          _patch_use_previous_value),
    Patch("target-group-delete", "DeleteStack leaves an AWS::ElasticLoadBalancingV2::TargetGroup behind "
          "(a named one then blocks the next stack)", "the target group is deleted with its stack",
          _patch_target_group_delete),
)

_lock = threading.Lock()
_applied: list[str] = []


def apply() -> tuple[str, ...]:
    """Install every patch once in this process; returns the names installed (so far, in all)."""
    with _lock:
        for patch in PATCHES:
            if patch.name in _applied:
                continue
            try:
                patch.install()
            except (ImportError, AttributeError) as exc:
                log.warning("sandbox fidelity patch %s skipped: moto internals changed (%s); "
                            "checked with moto %s", patch.name, exc, CHECKED_WITH_MOTO)
                continue
            _applied.append(patch.name)
        return tuple(_applied)


def applied() -> tuple[str, ...]:
    with _lock:
        return tuple(_applied)
