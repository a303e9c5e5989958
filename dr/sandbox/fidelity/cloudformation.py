"""Sandbox fidelity patches for CloudFormation: intrinsic functions, ValidateTemplate, failed
creates, parameters, stack tags, YAML short-form tags, UsePreviousValue, deleted resources.
See __init__.py."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

from dr.sandbox.fidelity.rds import rds_cluster_of


# --- 2. Fn::GetAtt with a dotted attribute name -------------------------------------------------


def split_getatt(value: Any) -> Any:
    """`A.B.C` (or ["A", "B", "C"]) -> ["A", "B.C"]: the resource is what comes before the FIRST
    dot; the rest is the attribute, which may itself contain dots (Endpoint.Address)."""
    if isinstance(value, str):
        return value.split(".", 1)
    if isinstance(value, list) and len(value) > 2 and all(isinstance(v, str) for v in value):
        return [value[0], ".".join(value[1:])]
    return value


def patch_getatt_dotted() -> None:
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


# --- 4. ValidateTemplate ------------------------------------------------------------------------


def patch_validate_template() -> None:
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


def patch_stack_create_failure() -> None:
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


def patch_stack_parameter_list() -> None:
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


def patch_getazs_region() -> None:
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


def patch_stack_tags() -> None:
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
        target = rds_cluster_of(resource) or resource
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


# --- 13. A short-form tag on a mapping ----------------------------------------------------------


def patch_yaml_tag_on_mapping() -> None:
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


def patch_use_previous_value() -> None:
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


def patch_target_group_delete() -> None:
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
