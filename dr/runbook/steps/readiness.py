"""readiness: check that the target region can take over, before anything is launched.

Fails what fails a failover last first (the DR key, the newest copy of each RDS resource and its
age against the RPO objective, the stack template in the region, the DNS record and the
credentials that change it) and stops the run (AbortRun) when any of it is not so.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dr.aws import aws_call
from dr.config import Config, format_duration
from dr.errors import DrError
from dr.kms import resolve_dr_key
from dr.failover.readiness import Check, dns_checks, flip_modes, template_checks
from dr.runbook.steps import rds_restore
from dr.runbook.steps.base import AbortRun, Param, StepContext, StepType, is_reference, target_region
from dr.clock import iso


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
        names = params.get("resources") or []
        known = {r.name for r in config.rds}
        return [f"resources: no rds resource named {n!r} in dr.yaml (known: {', '.join(sorted(known)) or 'none'})"
                for n in names if not is_reference(n) and n not in known]

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        region, config = target_region(ctx), ctx.config
        checks = [self._key(ctx)]
        copy_checks, newest = self._copies(params, ctx, region)
        checks += copy_checks
        if config.stack is not None:
            restores = any(t == "rds.restore" for _, t, _ in ctx.plan) or not ctx.plan
            checks += template_checks(ctx.session, config, region, restores)
        if params["dns_check"] and config.dns is not None:
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
        names = params.get("resources")
        resources = [r for r in config.rds if names is None or r.name in names]
        accept = bool(params.get("accept_data_loss"))
        checks, newest_times = [], []
        for r in resources:
            try:
                copy = rds_restore.newest_copy(ctx.session, r, region)
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


STEP_TYPES = (Readiness,)
