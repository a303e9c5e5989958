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
from dr.failover.readiness import Check, dns_checks, flip_modes, template_checks
from dr.runbook.steps import ownership
from dr.runbook.steps import rds_restore as rr
from dr.runbook.steps.base import AbortRun, Param, StepContext, StepType
from dr.clock import iso


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
    description = ("Checks that the target region can take over before anything is launched, what "
                   "fails a failover last first: the DR key exists and encrypts, the newest copy of each "
                   "RDS resource is there and within the RPO objective, the stack template is valid there, "
                   "its region mappings cover the region, every parameter has a value (references read in "
                   "the region), the relaunched stack runs on the restored database, and the DNS record is "
                   "readable, writable with the configured credentials (RFC 2136: a TSIG-signed update of "
                   "_dr-readiness.<zone>) and of a routing policy the runbook's dns.flip can change.")
    params = (
        Param("accept_data_loss", "bool", default=False,
              help="pass even when the newest copy is older than the RPO objective (--accept-data-loss)"),
        Param("dns_check", "bool", default=True, help="check the DNS record, credentials and routing"),
        Param("resources", "list", default=None, help="rds names to check (default: all in dr.yaml)"),
    )
    outputs = ("checks", "newest_copy_time", "newest_copy_age_seconds")
    iam_actions = (
        "kms:DescribeKey", "kms:Encrypt", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots",
        "cloudformation:ValidateTemplate", "route53:ListHostedZonesByName", "route53:GetHostedZone",
        "route53:ListResourceRecordSets", "secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt",
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
            restores = any(t == "rds.restore" for _, t, _ in ctx.plan) or not ctx.plan
            checks += template_checks(ctx.session, config, region, restores)
        if arg(self, params, "dns_check") and config.dns is not None:
            checks += dns_checks(ctx.session, config, flip_modes((t, w) for _, t, w in ctx.plan), ctx.wait)
        now = ctx.clock.now()
        outputs = {"checks": [c.to_dict() for c in checks],
                   "newest_copy_time": iso(newest) if newest else None,
                   "newest_copy_age_seconds": int((now - newest).total_seconds()) if newest else None}
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


def _whole(delta: timedelta) -> timedelta:
    return timedelta(seconds=max(0, int(delta.total_seconds())))


# --- rds.restore ----------------------------------------------------------------------------------


class RestoreRefused(OperationFailed, AbortRun):
    """The target exists and is not this run's: stop the run (retrying cannot change that)."""


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
            if ownership.tags_say_ours(rr.tags_of(existing), ctx) is not None:
                # never adopt (or later delete) a database this run did not restore
                message, hint = ownership.made_elsewhere(ctx, f"{kind.label} {opts.identifier}", region,
                                                         rr.tags_of(existing))
                raise RestoreRefused(message, hint=hint)
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
            ctx.created(kind.record_kind, opts.identifier, region, snapshot=copy.id)
            if kind is rr.CLUSTER:
                ctx.created("rds-instance", rr.cluster_instance_id(opts.identifier), region, cluster=opts.identifier)
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
        why = ownership.owned(ctx, kind.record_kind, identifier, region, rr.tags_of(item))
        if why:
            raise OperationFailed(f"not deleting {kind.label} {identifier} in {region}: {why}",
                                  hint="it was left exactly as it is")
        ctx.log(f"deleting {kind.label} {identifier} in {region} (no final snapshot)")
        rr.delete_target(ctx, rds, kind, identifier, region)


STEP_TYPES = (Readiness, RdsRestore)
