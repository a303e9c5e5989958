"""CloudFormation for stack.launch (and readiness, teardown): read templates, launch stacks
idempotently, delete them.

`launch` is sceptre's idempotent launch: create the stack if it is missing, delete and create it
again after ROLLBACK_COMPLETE (a failed first create leaves nothing but the stack record; only a
stack this run made is deleted), update it when it is complete but its template or parameters
differ ("No updates are to be performed" counts as success), and wait for the outcome. A failure
names the resources that failed and why, from the stack events, because "ROLLBACK_COMPLETE"
alone tells an operator at 3 a.m. nothing.

An update leaves alone what dr does not set: parameters dr.yaml does not give keep their current
values (UsePreviousValue, never the template Default), and the tags of a stack this run did not
create are not replaced (CloudFormation would propagate dr's tags to every resource). "Differs"
compares the parameters dr sets and the template's meaning (parsed), not its text, so an intact
production stack is left byte-identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dr.aws.cfn import Cfn, Stack
from dr.errors import AwsError, ConfigError, OperationFailed
from dr.wait import Backoff, poll

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

WAIT_SECONDS = 4 * 3600.0  # a stack operation that has not settled by then needs a human
MAX_BODY = 51_200  # bytes: the TemplateBody limit; larger templates must be uploaded to S3
REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+")

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
# Stable states a launch can start from without a human (besides "missing").
UPDATABLE = COMPLETE | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
# How long a stack operation is waited for at most (the step's own timeout usually ends it first).
WAIT_TIMEOUT = 4 * 3600.0
WAIT_BACKOFF = Backoff(first=1.0, factor=2.0, most=10.0)
NEEDS_A_HUMAN = {"CREATE_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED",
                 "UPDATE_FAILED", "IMPORT_ROLLBACK_FAILED"}


# --- templates ------------------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation's short tags (`!Ref X` -> {"Ref": "X"},
    `!GetAtt A.B.C` -> {"Fn::GetAtt": ["A", "B.C"]}, `!Sub`, `!FindInMap`, ...)."""


def _short_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _short_tag)
# CloudFormation reads 2010-09-09 as a string; a date object would not survive json.dumps.
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", CfnLoader.construct_yaml_str)


@dataclass(frozen=True)
class Template:
    path: Path
    body: str
    doc: dict[str, Any]

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.doc.get("Parameters") or {})

    def required_parameters(self) -> list[str]:
        return [name for name, spec in self.parameters.items()
                if not isinstance(spec, dict) or "Default" not in spec]

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.doc.get("Outputs") or {})

    def resources_of(self, *types: str) -> dict[str, dict[str, Any]]:
        """The template's resources of these types: logical id -> definition."""
        return {k: v for k, v in (self.doc.get("Resources") or {}).items()
                if isinstance(v, dict) and v.get("Type") in types}

    def deletion_policies(self) -> dict[str, str]:
        """Logical id -> DeletionPolicy, for the resources that survive their stack (Retain,
        RetainExceptOnCreate) or leave a final snapshot behind (Snapshot)."""
        return {k: str(v["DeletionPolicy"]) for k, v in (self.doc.get("Resources") or {}).items()
                if isinstance(v, dict) and v.get("DeletionPolicy") not in (None, "Delete")}

    def region_mapping_gaps(self, region: str) -> list[str]:
        """Mappings keyed by region names (like AWSRegionArch2AMI) that lack `region`."""
        gaps = []
        for name, mapping in (self.doc.get("Mappings") or {}).items():
            if not isinstance(mapping, dict) or not mapping:
                continue
            keys = [str(k) for k in mapping]
            if all(REGION_RE.fullmatch(k) for k in keys) and region not in keys:
                gaps.append(name)
        return gaps


def parse_template(text: str, source: str = "template") -> dict[str, Any]:
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, Loader=CfnLoader)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not a CloudFormation template (YAML/JSON error: {exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise ConfigError(f"{source}: not a CloudFormation template (no Resources section)")
    return doc


def load_template(path: str | Path) -> Template:
    path = Path(path)
    try:
        body = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the stack template {path}: {exc}",
                          hint="check stack.template in dr.yaml") from None
    if len(body.encode()) > MAX_BODY:
        raise ConfigError(f"the stack template {path} is larger than {MAX_BODY} bytes, the "
                          "CloudFormation limit for a template sent inline",
                          hint="split it into nested stacks, or shrink it")
    return Template(path=path, body=body, doc=parse_template(body, str(path)))


DATABASE_TYPES = ("AWS::RDS::DBInstance", "AWS::RDS::DBCluster")
_SNAPSHOT_PROPERTY = {"AWS::RDS::DBInstance": "DBSnapshotIdentifier", "AWS::RDS::DBCluster": "SnapshotIdentifier"}


def _refers_to(value: Any, parameter: str) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") == parameter:
            return True
        return any(_refers_to(v, parameter) for v in value.values())
    if isinstance(value, list):
        return any(_refers_to(v, parameter) for v in value)
    if isinstance(value, str):  # Fn::Sub text
        return "${" + parameter + "}" in value
    return False


def restored_data_problem(template: Template, snapshot_parameter: str | None) -> str | None:
    """Would a stack launched from `template` run on the database dr restored? None if yes: the
    template has no database of its own (it is given the restored one, e.g. as an endpoint
    parameter), or its databases are created from the snapshot through `snapshot_parameter`.
    Otherwise the reason, naming the databases and the fix."""
    databases = {k: v for k, v in template.resources_of(*DATABASE_TYPES).items()
                 if "SourceDBInstanceIdentifier" not in (v.get("Properties") or {})}  # replicas follow
    if not databases:
        return None
    names = ", ".join(f"{k} ({v['Type']})" for k, v in sorted(databases.items()))
    if not snapshot_parameter:
        return (f"{template.path.name} creates its own database ({names}) and dr.yaml sets no "
                "stack.snapshot_parameter: the relaunched stack would start on an empty database, not "
                "the restored data. Add a template parameter (e.g. DBSnapshotIdentifier) used as the "
                "database's DBSnapshotIdentifier (SnapshotIdentifier for a cluster), and name it in "
                "stack.snapshot_parameter")
    if snapshot_parameter not in template.parameters:
        return (f"stack.snapshot_parameter {snapshot_parameter} is not a parameter of {template.path.name} "
                f"(it declares: {', '.join(template.parameters) or 'none'})")
    unwired = [k for k, v in sorted(databases.items())
               if not _refers_to((v.get("Properties") or {}).get(_SNAPSHOT_PROPERTY[v["Type"]]), snapshot_parameter)]
    if unwired:
        return (f"{template.path.name}: {', '.join(unwired)} does not take its snapshot from the parameter "
                f"{snapshot_parameter}: the relaunched stack would not run on the restored data. Set the "
                f"database's DBSnapshotIdentifier (cluster: SnapshotIdentifier) to !Ref {snapshot_parameter}")
    return None


def same_template(a: str, b: str) -> bool:
    """Do two template bodies mean the same (formatting, comments, key order and JSON vs YAML
    aside)?"""
    try:
        return parse_template(a) == parse_template(b)
    except ConfigError:
        return a.strip() == b.strip()


def parameter_problems(template: Template, keys: set[str]) -> list[str]:
    """Keys the template does not declare, and required template parameters not given."""
    declared = template.parameters
    problems = [f"parameter {k!r} is not a parameter of {template.path.name} "
                f"(it declares: {', '.join(declared) or 'none'})" for k in sorted(keys - set(declared))]
    missing = [k for k in template.required_parameters() if k not in keys]
    if missing:
        problems.append(f"{template.path.name} needs a value for {', '.join(missing)} (no Default); "
                        "set it in stack.parameters / stack.dr_parameters or the step's parameters")
    return problems


# --- stacks ---------------------------------------------------------------------------------------


def failure_reasons(api: Cfn, stack_id: str, limit: int = 5) -> list[str]:
    """Why the stack's latest operation failed: its resources' *_FAILED events, oldest first.

    The latest operation starts at the stack's newest "User Initiated" event, so failures of
    earlier operations (and clock skew between here and AWS) never muddle the answer."""
    try:
        events = api.events(stack_id)
    except Exception:  # noqa: BLE001 - reasons are best effort; the status is reported anyway
        return []
    starts = [i for i, e in enumerate(events)
              if e.resource_type == "AWS::CloudFormation::Stack" and e.reason == "User Initiated"]
    reasons: list[str] = []
    for event in events[starts[-1] if starts else 0:]:
        if not event.status.endswith("FAILED") or not event.reason or "Resource creation cancelled" in event.reason:
            continue
        reasons.append(f"{event.logical_id} ({event.resource_type}): {event.reason}")
        if len(reasons) >= limit:
            break
    return reasons


def wait(ctx: StepContext, api: Cfn, stack_id: str, *, timeout: float = WAIT_SECONDS) -> Stack | None:
    """Poll until the stack leaves *_IN_PROGRESS; returns it (None if deleted)."""
    return poll(lambda: api.describe(stack_id), ready=lambda stack: stack is None or not stack.in_progress,
                what=f"stack {stack_id} in {api.region}", clock=ctx.wait_clock, timeout=timeout,
                backoff=Backoff(1.0, 2.0, 10.0), still=lambda stack: stack.status,
                hint="look at the stack in the console; run again to resume").value


def _stack_failed(api: Cfn, stack: Stack, doing: str) -> OperationFailed:
    reasons = failure_reasons(api, stack.id)
    detail = "; ".join(reasons) or stack.status_reason or "no reason recorded"
    return OperationFailed(
        f"{doing} stack {stack.name} in {api.region} ended in {stack.status}: {detail}",
        hint="fix the cause (template, parameters, quotas in the region) and run again; "
             "dr deletes a stack left in ROLLBACK_COMPLETE before creating it again")


@dataclass(frozen=True)
class LaunchRequest:
    name: str
    template: Template
    parameters: dict[str, str] = field(repr=False)  # what dr sets, secrets resolved: never log these
    capabilities: tuple[str, ...]
    tags: dict[str, str]            # for a stack this run creates; an adopted stack keeps its own
    role_arn: str | None = None
    secret_keys: frozenset[str] = frozenset()  # parameters given by reference (not compared, not shown)

    def api_args(self, current: Stack | None = None, *, tag: bool = True) -> dict[str, Any]:
        """CreateStack/UpdateStack arguments. For an update (`current`: the stack as described),
        template parameters dr does not set keep the stack's current values (UsePreviousValue),
        and `tag=False` leaves the stack's tags as they are."""
        params: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": str(v)}
                                        for k, v in sorted(self.parameters.items())]
        if current is not None:
            have = set(current.parameters)
            params += [{"ParameterKey": k, "UsePreviousValue": True}
                       for k in sorted(self.template.parameters) if k not in self.parameters and k in have]
        args: dict[str, Any] = {"StackName": self.name, "TemplateBody": self.template.body, "Parameters": params}
        if tag:
            args["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())]
        if self.capabilities:
            args["Capabilities"] = list(self.capabilities)
        if self.role_arn:
            args["RoleARN"] = self.role_arn
        return args


def changes(api: Cfn, stack: Stack, req: LaunchRequest) -> list[str]:
    """What an update would change, in words ([] when nothing): the parameters dr sets whose
    current value differs (NoEcho and secret values cannot be compared and are not shown), and
    the template when its meaning differs. Parameters dr does not set keep their values."""
    current = stack.parameters
    found = []
    for key, want in sorted(req.parameters.items()):
        spec = req.template.parameters.get(key)
        spec = spec if isinstance(spec, dict) else {}
        if key in req.secret_keys or str(spec.get("NoEcho", "")).lower() == "true":
            continue  # AWS shows NoEcho values as ****: a changed secret is not detectable here
        if current.get(key) != str(want):
            found.append(f"parameter {key}: {current.get(key, '<unset>')!r} -> {str(want)!r}")
    if not same_template(api.template_body(stack.id, req.name), req.template.body):
        found.append(f"template: the stack's template differs from {req.template.path.name}")
    return found


def launch(ctx: StepContext, api: Cfn, req: LaunchRequest, *, owned: bool) -> Stack:
    """Create, recreate or update the stack until it is complete; returns it.
    `owned`: this run created the stack (or is about to): only then is it tagged with dr's tags,
    and deleted to be created again after ROLLBACK_COMPLETE."""
    for _ in range(3):  # at most: wait for a running operation, recreate, update
        stack = api.describe(req.name)
        if stack is not None and stack.in_progress:
            ctx.log(f"stack {req.name} is {stack.status}; waiting for it")
            stack = wait(ctx, api, stack.id)
        if stack is None:
            return _create(ctx, api, req)
        if stack.status == "ROLLBACK_COMPLETE":
            if not owned:
                raise _stack_failed(api, stack, "a previous create of")
            ctx.log(f"stack {req.name} is in ROLLBACK_COMPLETE (a failed create): deleting it "
                    "to create it again")
            delete(ctx, api, stack.id)
            continue
        if stack.status in UPDATABLE:
            return _update(ctx, api, stack, req, owned=owned)
        if stack.status in NEEDS_A_HUMAN:
            raise _stack_failed(api, stack, "a previous operation on")
    raise OperationFailed(f"stack {req.name} in {api.region} did not settle into a state dr can launch "
                          "from", hint="look at the stack events and run again")


def _create(ctx: StepContext, api: Cfn, req: LaunchRequest) -> Stack:
    ctx.log(f"creating stack {req.name} in {api.region} from {req.template.path.name}")
    try:
        stack_id = api.create(req.api_args())
    except AwsError as exc:
        if exc.code != "AlreadyExistsException":
            raise
        stack_id = req.name  # made by an earlier attempt of this very step: wait for it
    stack = wait(ctx, api, stack_id)
    if stack is None or stack.status not in COMPLETE:
        raise _stack_failed(api, stack or Stack(stack_id, req.name, "DELETE_COMPLETE"), "creating")
    return stack


def _update(ctx: StepContext, api: Cfn, stack: Stack, req: LaunchRequest, *, owned: bool) -> Stack:
    differences = changes(api, stack, req)
    if not differences:
        ctx.log(f"stack {req.name} is {stack.status} with this template and these "
                "parameters: nothing to update")
        return stack
    ctx.log(f"updating stack {req.name} in {api.region}: {'; '.join(differences)}"
            + ("" if owned else " (a stack this run did not create: its tags are kept, and parameters "
                                "dr.yaml does not set keep their current values)"))
    if not api.update(req.api_args(stack, tag=owned)):
        return stack  # CloudFormation's own "No updates are to be performed"
    done = wait(ctx, api, stack.id)
    if done is None or done.status not in COMPLETE:
        raise _stack_failed(api, done or stack, "updating")
    return done


def delete(ctx: StepContext, api: Cfn, stack_id: str) -> None:
    """Delete the stack and wait until it is gone; DELETE_FAILED says which resources remain."""
    api.delete(stack_id)
    stack = wait(ctx, api, stack_id)
    if stack is not None:
        raise _stack_failed(api, stack, "deleting")
