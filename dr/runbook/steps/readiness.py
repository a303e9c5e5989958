"""readiness: check that the target region can take over, before anything is launched.

Fails what fails a failover last first (the DR key, the newest copy of each RDS resource and its
age against the RPO objective, the stack template in the region, the DNS record and the
credentials that change it) and stops the run (AbortRun) when any of it is not so. The checks
are those of `dr validate --readiness` (dr/failover/readiness.py: key_check, copy_check,
template_checks, dns_checks), observed in the run's target region; the step also encrypts a
probe with the DR key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dr.config import Config
from dr.errors import DrError
from dr.aws.kms import resolve_dr_key
from dr.failover.readiness import Check, copy_check, dns_checks, flip_modes, key_check, template_checks
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
            ctx.session.kms(config.regions.dr).encrypt_probe(key.arn, config.kms.dr_key)
            return key_check(str(key), None, config.regions.dr, encrypts=True)
        except DrError as exc:
            return key_check(None, exc.message, config.regions.dr)

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
            checks.append(copy_check(f"rds:{r.name}:copy", copy.id, copy.recovery_time, now,
                                     config.objectives.rpo, accept))
        # The stalest resource decides how much data a failover loses.
        return checks, (min(newest_times) if newest_times else None)


STEP_TYPES = (Readiness,)
