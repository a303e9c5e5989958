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
