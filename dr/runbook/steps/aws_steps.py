"""The AWS step types of dr's runbooks: readiness, rds.restore, stack.launch, teardown.

Every step works in the region the run moves to (`ctx.region`, the DR region for a failover or
a drill), names what it creates deterministically (`ctx.name`, drill-suffixed in drills) and tags
it with the run (`dr:run`), so a resumed run adopts what it started instead of duplicating it,
and a drill's teardown can find everything it made and prove that nothing billable is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dr.aws import aws_call
from dr.backup.rds_api import KINDS
from dr.config import Config, format_duration
from dr.errors import ConfigError, DrError, OperationFailed
from dr.kms import resolve_dr_key
from dr.readiness import Check
from dr.runbook.steps import cfn, leftovers
from dr.runbook.steps import rds_restore as rr
from dr.runbook.steps.base import DYNAMIC_OUTPUTS, AbortRun, Param, StepContext, StepType
from dr.state.runs import iso


def arg(step: StepType, params: Mapping[str, Any], name: str) -> Any:
    """A parameter's value, or its declared default when the runbook leaves it out."""
    value = params.get(name)
    if value is None:
        for p in step.params:
            if p.name == name:
                return p.default
    return value


def target_region(ctx: StepContext) -> str:
    return ctx.region or ctx.config.regions.dr


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


# --- readiness ------------------------------------------------------------------------------------


class Readiness(StepType):
    name = "readiness"
    description = ("Checks that the target region can take over before anything is launched: the "
                   "DR key exists and encrypts, the newest copy of each RDS resource is there and "
                   "within the RPO objective, the stack template is valid there and its region "
                   "mappings cover the region, and the Route 53 zone answers.")
    params = (
        Param("accept_data_loss", "bool", default=False,
              help="pass even when the newest copy is older than the RPO objective (--accept-data-loss)"),
        Param("dns_check", "bool", default=True, help="check that the Route 53 zone exists"),
        Param("resources", "list", default=None, help="rds names to check (default: all in dr.yaml)"),
    )
    outputs = ("checks", "newest_copy_time", "rpo_seconds")
    iam_actions = (
        "kms:DescribeKey", "kms:Encrypt", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots",
        "cloudformation:ValidateTemplate", "route53:ListHostedZonesByName", "route53:GetHostedZone",
    )
    example = """\
- id: ready
  type: readiness
  with:
    accept_data_loss: false
"""

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        names = arg(self, params, "resources") or []
        known = {r.name for r in config.rds}
        return [f"resources: no rds resource named {n!r} in dr.yaml (known: {', '.join(sorted(known)) or 'none'})"
                for n in names if not _is_reference(n) and n not in known]

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        region, config = target_region(ctx), ctx.config
        checks = [self._key(ctx)]
        copy_checks, newest = self._copies(params, ctx, region)
        checks += copy_checks
        if config.stack is not None:
            checks += self._template(ctx, region)
        if arg(self, params, "dns_check") and config.dns is not None:
            checks.append(self._zone(ctx))
        now = ctx.clock.now()
        outputs = {"checks": [c.to_dict() for c in checks],
                   "newest_copy_time": iso(newest) if newest else None,
                   "rpo_seconds": int((now - newest).total_seconds()) if newest else None}
        failed = [c for c in checks if not c.ok]
        for c in checks:
            ctx.log(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        if failed:  # a safety gate: nothing after this step may start
            raise AbortRun(f"{region} cannot take over: "
                           + "; ".join(f"{c.name}: {c.detail}" for c in failed))
        return outputs

    def _key(self, ctx: StepContext) -> Check:
        config = ctx.config
        try:
            key = resolve_dr_key(ctx.session, config.kms.dr_key, config.regions.dr)
            kms = ctx.session.client("kms", config.regions.dr)
            aws_call(kms.encrypt, KeyId=key.arn, Plaintext=b"dr readiness probe",
                     action="encrypting a probe with", resource=config.kms.dr_key, region=config.regions.dr)
            return Check("dr-key", True, f"{key} is enabled in {config.regions.dr} and encrypts")
        except DrError as exc:
            return Check("dr-key", False, exc.message)

    def _copies(self, params: Mapping[str, Any], ctx: StepContext, region: str):
        config, now = ctx.config, ctx.clock.now()
        names = arg(self, params, "resources")
        resources = [r for r in config.rds if names is None or r.name in names]
        accept = bool(arg(self, params, "accept_data_loss"))
        checks, newest_times = [], []
        for r in resources:
            try:
                copy = rr.newest_copy(ctx.session, r, region)
            except DrError as exc:
                checks.append(Check(f"rds:{r.name}:copy", False, exc.message))
                continue
            newest_times.append(copy.recovery_time)
            age = now - copy.recovery_time
            fresh = age <= config.objectives.rpo
            detail = (f"newest copy {copy.id} holds data from {format_duration(_whole(age))} ago "
                      f"({'within' if fresh else 'over'} the RPO objective {format_duration(config.objectives.rpo)})")
            if not fresh and accept:
                detail += "; data loss accepted"
            checks.append(Check(f"rds:{r.name}:copy", fresh or accept, detail))
        # The stalest resource decides how much data a failover loses.
        return checks, (min(newest_times) if newest_times else None)

    def _template(self, ctx: StepContext, region: str) -> list[Check]:
        try:
            template = cfn.load_template(ctx.config.stack.template)
        except ConfigError as exc:
            return [Check("template", False, exc.message)]
        checks = []
        try:
            client = ctx.session.client("cloudformation", region)
            aws_call(client.validate_template, TemplateBody=template.body, action="validating template",
                     resource=template.path.name, region=region)
            checks.append(Check("template", True, f"{template.path.name} is valid in {region}"))
        except DrError as exc:
            checks.append(Check("template", False, exc.message))
        gaps = template.region_mapping_gaps(region)
        checks.append(Check(
            "template:region-mappings", not gaps,
            f"mapping {', '.join(gaps)} in {template.path.name} has no entry for {region}: the stack "
            "cannot launch there (add the region's values, e.g. its AMI ids)" if gaps
            else f"every region-keyed mapping in {template.path.name} covers {region}"))
        return checks

    def _zone(self, ctx: StepContext) -> Check:
        dns = ctx.config.dns
        if dns.provider != "route53":
            return Check("dns-zone", True, f"{dns.provider}: checked by the dns steps, not here")
        try:
            r53 = ctx.session.client("route53", leftovers.ROUTE53_REGION)
            zone_id = leftovers.find_zone(r53, dns.zone)
            if zone_id is None:
                return Check("dns-zone", False, f"Route 53 hosted zone {dns.zone} not found "
                                                "(check dns.zone in dr.yaml)")
            aws_call(r53.get_hosted_zone, Id=zone_id, action="reading hosted zone", resource=dns.zone,
                     region="global")
            return Check("dns-zone", True, f"Route 53 zone {dns.zone} ({zone_id.rsplit('/', 1)[-1]}) answers")
        except DrError as exc:
            return Check("dns-zone", False, exc.message)


def _whole(delta: timedelta) -> timedelta:
    return timedelta(seconds=max(0, int(delta.total_seconds())))


# --- rds.restore ----------------------------------------------------------------------------------


class RdsRestore(StepType):
    name = "rds.restore"
    description = ("Restores the newest (or a chosen) copy of an RDS resource in the target region "
                   "to a NEW DB instance, or a new Aurora cluster with one writer instance, and "
                   "waits until it is available. The recovery time of the snapshot is the run's RPO.")
    params = (
        Param("resource", "str", required=True, help="the rds name in dr.yaml"),
        Param("snapshot", "str", help="a snapshot id in the target region (default: the newest copy)"),
        Param("identifier", "str", help="the new instance/cluster id (default: <source id>-dr, "
                                        "drill-suffixed in drills)"),
        Param("instance_class", "str", help="e.g. db.t3.medium (required for Aurora; default for an "
                                            "instance: the snapshot's class)"),
        Param("subnet_group", "str", help="DB subnet group in the target region"),
        Param("security_groups", "list", default=None, help="VPC security group ids"),
        Param("multi_az", "bool", default=False, help="a Multi-AZ instance (not for Aurora)"),
    )
    outputs = ("identifier", "endpoint", "port", "snapshot_id", "snapshot_time", "engine")
    iam_actions = (
        "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance", "rds:DescribeDBInstances",
        "rds:DescribeDBClusters", "rds:AddTagsToResource", "rds:DeleteDBInstance", "rds:DeleteDBCluster",
        "kms:CreateGrant", "kms:DescribeKey",
    )
    example = """\
- id: db
  type: rds.restore
  needs: [ready]
  with:
    resource: app-db
    instance_class: db.t3.medium
    subnet_group: acme-dr-private
    security_groups: [sg-0123456789abcdef0]
  timeout: 45m
"""

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        name = params.get("resource")
        if _is_reference(name) or name is None:
            return []
        try:
            resource = config.rds_resource(name)
        except ConfigError as exc:
            return [f"resource: {exc.message}"]
        problems = []
        if resource.kind == "cluster" and not params.get("instance_class"):
            problems.append(f"instance_class: required for the Aurora cluster {resource.cluster} "
                            "(the writer instance's class, e.g. db.r6g.large)")
        if resource.kind == "cluster" and params.get("multi_az"):
            problems.append("multi_az: not for Aurora (add reader instances instead)")
        ident = params.get("identifier")
        if ident and not _is_reference(ident) and not rr.valid_identifier(ident):
            problems.append(f"identifier: {ident!r} is not an RDS identifier (1-63 letters, digits and "
                            "hyphens, starting with a letter, no '--', not ending in '-')")
        return problems

    def _setup(self, params: Mapping[str, Any], ctx: StepContext):
        resource = ctx.config.rds_resource(params["resource"])
        region = target_region(ctx)
        opts = rr.RestoreOptions(
            identifier=arg(self, params, "identifier") or rr.bounded_name(ctx, f"{resource.source_id}-dr"),
            instance_class=arg(self, params, "instance_class"),
            subnet_group=arg(self, params, "subnet_group"),
            security_groups=tuple(arg(self, params, "security_groups") or ()),
            multi_az=bool(arg(self, params, "multi_az")))
        return resource, KINDS[resource.kind], region, opts, ctx.session.client("rds", region)

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        resource, kind, region, opts, rds = self._setup(params, ctx)
        existing = rr.describe_target(rds, kind, opts.identifier, region)
        if existing is not None:
            made_by = rr.tags_of(existing).get(rr.TAG_RUN)
            if made_by != ctx.run_id:  # never adopt (or later delete) someone else's database
                raise AbortRun(
                    f"{kind.label} {opts.identifier} already exists in {region} and was not made by "
                    f"this run ({'made by run ' + made_by if made_by else 'not made by dr'}); delete it "
                    "if it is stale, or pass `identifier:` to restore under another name")
            ctx.log(f"{kind.label} {opts.identifier} was started by this run: waiting for it")
            if kind is rr.CLUSTER:
                rr.ensure_cluster_instance(rds, opts, existing.get("Engine", ""),
                                           existing.get("TagList") or [], region)
        else:
            snapshot = arg(self, params, "snapshot")
            copy = (rr.chosen_copy(ctx.session, resource, snapshot, region) if snapshot
                    else rr.newest_copy(ctx.session, resource, region))
            ctx.log(f"restoring {copy.id} (data from {iso(copy.recovery_time)}) to {kind.label} "
                    f"{opts.identifier} in {region}")
            rr.start_restore(ctx, rds, resource, copy, opts, region)
        item = rr.wait_available(ctx, rds, kind, opts.identifier, region)
        return rr.outputs_of(kind, item)

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        item = rr.describe_target(rds, kind, opts.identifier, region)
        if item is None or rr.tags_of(item).get(rr.TAG_RUN) != ctx.run_id:
            return None
        if (item.get("DBInstanceStatus") or item.get("Status")) != "available":
            return None
        if kind is rr.CLUSTER:
            writer = rr.describe_target(rds, rr.INSTANCE, rr.cluster_instance_id(opts.identifier), region)
            if writer is None or writer.get("DBInstanceStatus") != "available":
                return None
        return rr.outputs_of(kind, item)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        identifier = (outputs or {}).get("identifier") or opts.identifier
        item = rr.describe_target(rds, kind, identifier, region)
        if item is None:
            return
        if rr.tags_of(item).get(rr.TAG_RUN) != ctx.run_id:
            ctx.log(f"not deleting {kind.label} {identifier} in {region}: this run did not make it")
            return
        ctx.log(f"deleting {kind.label} {identifier} in {region} (no final snapshot)")
        rr.delete_target(ctx, rds, kind, identifier, region)


# --- stack.launch ---------------------------------------------------------------------------------


class StackLaunch(StepType):
    name = "stack.launch"
    description = ("Launches the configured CloudFormation stack in the target region: creates it, "
                   "deletes and recreates it after ROLLBACK_COMPLETE, or updates it when its template "
                   "or parameters changed; waits, and outputs the stack's outputs (plus stack_id). "
                   "Parameters: stack.parameters, overlaid by stack.dr_parameters (not when the target "
                   "is the primary region: a failback), the snapshot (into stack.snapshot_parameter) and "
                   "this step's `parameters`.")
    params = (
        Param("parameters", "dict", default=None, help="template parameters overlaid last, e.g. "
                                                       "{DBHost: '${steps.db.endpoint}'}"),
        Param("snapshot", "str", help="a snapshot id for stack.snapshot_parameter (${steps.db.snapshot_id})"),
        Param("name", "str", help="stack name (default: stack.name, drill-suffixed in drills)"),
        Param("template", "str", help="template file (default: stack.template)"),
        Param("capabilities", "list", default=None, help="default: stack.capabilities"),
        Param("role_arn", "str", help="a CloudFormation service role that creates the resources"),
    )
    outputs = ("stack_id", "stack_name", "outputs", DYNAMIC_OUTPUTS)
    iam_actions = (
        "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplate", "cloudformation:TagResource", "iam:PassRole",
    )
    example = """\
- id: stack
  type: stack.launch
  needs: [db]
  with:
    snapshot: ${steps.db.snapshot_id}
    parameters:
      DBHost: ${steps.db.endpoint}
  timeout: 30m
"""

    def output_names(self, params: Mapping[str, Any], config: Config) -> tuple[str, ...]:
        """stack_id, stack_name, outputs (all of them as one mapping) and each of the template's
        Outputs (`${steps.<id>.WebsiteURL}`); any name while the template cannot be read."""
        try:
            return ("stack_id", "stack_name", "outputs") + self._template(params, config).outputs
        except ConfigError:
            return self.outputs

    def _template(self, params: Mapping[str, Any], config: Config) -> cfn.Template:
        path = params.get("template")
        if path is None:
            if config.stack is None:
                raise ConfigError("stack.launch needs the stack section of dr.yaml (name, template), "
                                  "or the `name` and `template` parameters")
            path = config.stack.template
        return cfn.load_template(path)

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        if config.stack is None and not params.get("name"):
            return ["name: required when dr.yaml has no stack section"]
        try:
            template = self._template(params, config)
        except ConfigError as exc:
            return [exc.message]
        overlay = params.get("parameters") or {}
        if not isinstance(overlay, Mapping):
            return [] if _is_reference(overlay) else ["parameters: expected a mapping of template parameters"]
        keys = set(config.stack.parameters_for_dr() if config.stack else {}) | set(overlay)
        if params.get("snapshot") and config.stack is not None and config.stack.snapshot_parameter:
            keys.add(config.stack.snapshot_parameter)
        allowed = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")
        bad_caps = [c for c in params.get("capabilities") or () if c not in allowed]
        problems = cfn.parameter_problems(template, keys)
        if bad_caps:
            problems.append(f"capabilities: {', '.join(map(str, bad_caps))} not one of {', '.join(allowed)}")
        return problems

    def request(self, params: Mapping[str, Any], ctx: StepContext) -> cfn.LaunchRequest:
        config = ctx.config
        stack = config.stack
        template = self._template(params, config)
        # dr_parameters are for the DR region; a failback to the primary uses the plain ones.
        in_primary = target_region(ctx) == config.regions.primary
        values: dict[str, str] = {} if stack is None else \
            dict(stack.parameters) if in_primary else stack.parameters_for_dr()
        snapshot = arg(self, params, "snapshot")
        if snapshot:
            if stack is not None and stack.snapshot_parameter:
                values[stack.snapshot_parameter] = snapshot
            else:
                ctx.log("stack.snapshot_parameter is not set in dr.yaml: the snapshot is not passed "
                        "to the template")
        for key, value in (arg(self, params, "parameters") or {}).items():
            values[key] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        caps = arg(self, params, "capabilities")
        return cfn.LaunchRequest(
            name=arg(self, params, "name") or ctx.name(stack.name),
            template=template, parameters=values,
            capabilities=tuple(caps if caps is not None else (stack.capabilities if stack else ())),
            tags={**rr.run_tags(ctx), "dr:managed": "true"}, role_arn=arg(self, params, "role_arn"))

    @staticmethod
    def _outputs(stack: Mapping[str, Any]) -> dict[str, Any]:
        outs = cfn.outputs_of(stack)
        return {**outs, "stack_id": stack["StackId"], "stack_name": stack["StackName"], "outputs": outs}

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        req, region = self.request(params, ctx), target_region(ctx)
        client = ctx.session.client("cloudformation", region)
        stack = cfn.launch(ctx, client, req, region)
        ctx.log(f"stack {req.name} is {stack['StackStatus']} in {region}")
        return self._outputs(stack)

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        req, region = self.request(params, ctx), target_region(ctx)
        stack = cfn.describe(ctx.session.client("cloudformation", region), req.name, region)
        if stack is None or stack["StackStatus"] not in cfn.COMPLETE \
                or cfn.tags_of(stack).get(rr.TAG_RUN) != ctx.run_id:
            return None
        return self._outputs(stack)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        region = target_region(ctx)
        name = (outputs or {}).get("stack_name") or self.request(params, ctx).name
        client = ctx.session.client("cloudformation", region)
        stack = cfn.describe(client, name, region)
        if stack is None:
            return
        if cfn.tags_of(stack).get(rr.TAG_RUN) != ctx.run_id:
            ctx.log(f"not deleting stack {name} in {region}: this run did not launch it")
            return
        ctx.log(f"deleting stack {name} in {region}")
        cfn.delete(ctx, client, stack["StackId"], region)


# --- teardown -------------------------------------------------------------------------------------


class Teardown(StepType):
    name = "teardown"
    description = (
        "Ends a drill and proves it cost nothing afterwards. It finds everything THIS drill made in "
        "the target region, by its dr:run tag or its drill-suffixed name (stacks, DB instances and "
        "clusters, snapshots, Route 53 drill records and health checks), deletes it and looks again: "
        "anything billable still there fails it, by name. As the last step of a drill (at: now) it "
        "takes stock when it runs and sweeps in the drill's teardown phase, so `dr drill --keep` "
        "keeps everything; as a hook (at: end or failure) it sweeps when the run ends, after the "
        "other steps' teardowns. Production names carry no drill suffix and are never touched; "
        "outside a drill it does nothing.")
    params = (
        Param("at", "str", default="now", help="now (the last step of the drill), end or failure (a hook)"),
        Param("delete", "bool", default=True, help="delete what is found (false: only check)"),
        Param("dns", "bool", default=True, help="include Route 53 drill records and health checks"),
    )
    outputs = ("found", "left", "deleted")
    iam_actions = (
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack", "cloudformation:DescribeStackEvents",
        "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusterSnapshots", "rds:DeleteDBInstance", "rds:DeleteDBCluster",
        "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot", "route53:ListHostedZonesByName",
        "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "route53:ListHealthChecks",
        "route53:ListTagsForResources", "route53:DeleteHealthCheck",
    )
    example = """\
- id: cleanup
  type: teardown
  needs: [flip]          # last: takes stock now, sweeps in the drill's teardown phase
"""
    PHASES = ("now", "end", "failure")

    @classmethod
    def phase(cls, params: Mapping[str, Any]) -> str | None:
        at = params.get("at") or "now"
        return None if at == "now" else at

    def validate(self, params: Mapping[str, Any], config: Config) -> list[str]:
        at = params.get("at")
        if isinstance(at, str) and at not in self.PHASES:
            return [f"at: expected one of {', '.join(self.PHASES)}, got {at!r}"]
        return []

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        if not ctx.drill:
            ctx.log("teardown: this run is not a drill; nothing is torn down")
            return {"found": [], "left": [], "deleted": []}
        if (arg(self, params, "at") or "now") == "now":
            region, match = target_region(ctx), leftovers.DrillMatcher(ctx)
            found = leftovers.find(ctx, region, match, dns=bool(arg(self, params, "dns")))
            ctx.log(f"teardown: drill {match.label} has {len(found)} resource(s) in {region}; they are "
                    "removed in the drill's teardown phase")
            return {"found": [f.to_dict() for f in found], "left": [], "deleted": []}
        return self.sweep(params, ctx)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        if ctx.drill:
            self.sweep(params, ctx)

    def sweep(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        """Find, delete (stacks first: they take their resources with them), look again."""
        region, match = target_region(ctx), leftovers.DrillMatcher(ctx)
        dns = bool(arg(self, params, "dns"))
        found = initial = leftovers.find(ctx, region, match, dns=dns)
        deleted: list[dict[str, str]] = []
        errors: list[str] = []
        if arg(self, params, "delete") and found:
            stacks = [f for f in found if f.kind == "cloudformation-stack"]
            self._delete(ctx, stacks, deleted, errors)
            if stacks:
                found = leftovers.find(ctx, region, match, dns=dns)
            self._delete(ctx, [f for f in found if f.kind != "cloudformation-stack"], deleted, errors)
            found = leftovers.find(ctx, region, match, dns=dns)
        if found:
            names = "; ".join(str(item) for item in found)
            why = f" (errors: {'; '.join(errors)})" if errors else ""
            raise OperationFailed(f"drill {match.label} left billable resources behind: {names}{why}",
                                  hint="delete them (or run the teardown again); they bill until gone")
        ctx.log(f"teardown: nothing of drill {match.label} is left in {region}")
        return {"found": [f.to_dict() for f in initial], "left": [], "deleted": deleted}

    @staticmethod
    def _delete(ctx: StepContext, items: list[leftovers.Leftover], deleted: list[dict[str, str]],
                errors: list[str]) -> None:
        for item in items:
            try:
                ctx.log(f"teardown: deleting {item}")
                item.delete()
                deleted.append(item.to_dict())
            except DrError as exc:
                errors.append(f"{item}: {exc.message}")


STEP_TYPES = (Readiness, RdsRestore, StackLaunch, Teardown)
