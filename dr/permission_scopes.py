"""Where each IAM scope of dr/permissions.py applies: its resources (ARNs built from the config)
and condition. `ScopeResolver(config, account, all_features).resolve(scope)`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dr.config import Config


# --- scopes -> resources and conditions ---------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None


class ScopeResolver:
    """Builds each scope's resources (ARNs) and condition from the config."""

    def __init__(self, config: Config, account: str, all_features: bool):
        self.c, self.account, self.all = config, account, all_features
        self.primary, self.dr = config.regions.primary, config.regions.dr
        self.partition = _partition(self.dr)
        self.suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    def arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"

    def s3(self, resource: str) -> str:
        return f"arn:{self.partition}:s3:::{resource}"

    def via(self, service: str, *regions: str) -> dict[str, Any]:
        names = sorted({f"{service}.{r}.{self.suffix}" for r in regions})
        return {"StringEquals": {"kms:ViaService": names[0] if len(names) == 1 else names}}

    # -- keys

    def dr_key(self, extra: Mapping[str, Any] | None = None) -> _Where:
        ref = self.c.kms.dr_key
        alias = None
        if ref.startswith("arn:") and ":alias/" in ref:
            alias = "alias/" + ref.split(":alias/", 1)[1]
        elif ref.startswith("arn:"):
            return _Where((ref,), _merge(extra))
        elif ref.startswith("alias/"):
            alias = ref
        else:  # a key id
            return _Where((self.arn("kms", self.dr, f"key/{ref}"),), _merge(extra))
        cond = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
        return _Where((self.arn("kms", self.dr, "key/*"),), _merge(cond, extra))

    def primary_key(self, extra: Mapping[str, Any]) -> _Where:
        return _Where((self.arn("kms", self.primary, "key/*"),), dict(extra))

    # -- the resolver proper

    def resolve(self, scope: str) -> _Where | None:
        c = self.c
        grant_cond = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        if scope == "unscoped":
            return _Where(("*",))
        if scope == "dr_key":
            return self.dr_key()
        if scope == "dr_key_grant":
            return self.dr_key(grant_cond)
        if scope == "dr_key_via_rds":
            return self.dr_key(self.via("rds", self.dr))
        if scope == "dr_key_via_s3":
            return self.dr_key(self.via("s3", self.dr))
        if scope == "dr_key_envelope":
            return self.dr_key({"StringEquals": {"kms:EncryptionContext:dr:kind": "mysql"}})
        if scope == "primary_key_via_rds":
            return self.primary_key(self.via("rds", self.primary, self.dr))
        if scope == "primary_key_grant_via_rds":
            return self.primary_key(_merge(self.via("rds", self.primary, self.dr), grant_cond))
        if scope == "primary_key_via_s3":
            return self.primary_key(self.via("s3", self.primary))
        if scope == "state_bucket":
            return _Where((self.s3(c.state.bucket),)) if c.state.bucket else self._any_bucket()
        if scope == "state_objects":
            if not c.state.bucket:
                return self._any_bucket(objects=True)
            prefix = "/".join(p for p in c.state.prefix.split("/") if p)
            return _Where((self.s3(f"{c.state.bucket}/{prefix}/*" if prefix else f"{c.state.bucket}/*"),))
        if scope == "s3_source_buckets":
            return self._buckets([r.source for r in c.s3])
        if scope == "s3_source_objects":
            return self._objects([(r.source, r.prefix) for r in c.s3])
        if scope == "s3_destination_buckets":
            return self._buckets([r.destination for r in c.s3])
        if scope == "s3_destination_objects":
            return self._objects([(r.destination, r.prefix) for r in c.s3])
        if scope == "backup_buckets":
            return self._buckets([_s3_url(m.destination)[0] for m in c.mysql
                                  if m.destination.startswith("s3://")])
        if scope == "backup_objects":
            return self._objects([_s3_url(m.destination) for m in c.mysql
                                  if m.destination.startswith("s3://")])
        if scope == "rds_sources":
            arns = [self.arn("rds", self.primary, f"db:{r.instance}") for r in c.rds if r.instance]
            arns += [self.arn("rds", self.primary, f"cluster:{r.cluster}") for r in c.rds if r.cluster]
            if not arns and self.all:
                arns = [self.arn("rds", self.primary, "db:*"), self.arn("rds", self.primary, "cluster:*")]
            return _Where(tuple(arns)) if arns else None
        if scope == "rds_snapshots":
            arns = []
            for region in (self.primary, self.dr):
                for r in c.rds:
                    kind = "snapshot" if r.instance else "cluster-snapshot"
                    arns.append(self.arn("rds", region, f"{kind}:dr-{r.name}-*"))
                if not c.rds and self.all:
                    arns += [self.arn("rds", region, "snapshot:dr-*"),
                             self.arn("rds", region, "cluster-snapshot:dr-*")]
            return _Where(tuple(arns)) if arns else None
        if scope == "rds_restore":
            return _Where(tuple(self.arn("rds", region, f"{kind}:*") for region in (self.primary, self.dr)
                                for kind in ("db", "cluster", "snapshot", "cluster-snapshot", "subgrp",
                                             "og", "pg", "cluster-pg")))
        if scope == "rds_drill_deletes":
            return _Where(tuple(self.arn("rds", self.dr, f"{kind}:*drill-*")
                                for kind in ("db", "cluster", "snapshot", "cluster-snapshot")))
        if scope == "rds_drill_tagged":
            return _Where(tuple(self.arn("rds", self.dr, f"{kind}:*")
                                for kind in ("db", "cluster", "snapshot", "cluster-snapshot")),
                          {"StringEquals": {"aws:ResourceTag/dr:drill": "true"}})
        if scope == "cfn_stacks":
            name = f"{c.stack.name}*" if c.stack is not None else "*"
            return _Where(tuple(self.arn("cloudformation", region, f"stack/{name}/*")
                                for region in (self.primary, self.dr)))
        if scope == "cfn_pass_role":
            return _Where((f"arn:{self.partition}:iam::{self.account}:role/*",),
                          {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}})
        if scope == "route53_zone":
            return _Where((f"arn:{self.partition}:route53:::hostedzone/*",))
        if scope == "route53_records":
            cond = None
            if c.dns is not None and not self.all:
                zone = c.dns.zone.rstrip(".").lower()
                names = sorted({c.dns.record.rstrip(".").lower(), f"drill-*.{zone}"})
                cond = {"ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": names}}
            return _Where((f"arn:{self.partition}:route53:::hostedzone/*",), cond)
        if scope == "route53_changes":
            return _Where((f"arn:{self.partition}:route53:::change/*",))
        if scope == "route53_health_checks":
            return _Where((f"arn:{self.partition}:route53:::healthcheck/*",))
        if scope in ("stack_secrets", "stack_ssm_parameters", "stack_secret_keys"):
            return self._stack_refs(scope)
        if scope == "sns_topic":
            if c.notify.sns_topic:
                return _Where((c.notify.sns_topic,))
            return _Where((self.arn("sns", self.dr, "*"),)) if self.all else None
        raise KeyError(f"unknown IAM scope {scope!r} (dr/permissions.py SCOPES)")

    def _stack_refs(self, scope: str) -> _Where | None:
        """Secrets and SSM parameters the stack's parameters name, in both regions (a failover
        reads them in the DR region, a failback in the primary); their KMS keys only through
        those services."""
        from dr.config import Secret

        stack = self.c.stack
        refs = [v for _, v in (*stack.parameters, *stack.dr_parameters)] if stack is not None else []
        refs = [r for r in refs if isinstance(r, Secret)]
        regions = (self.primary, self.dr)
        if scope == "stack_secrets":
            names = [r.secretsmanager.split(":secret:", 1)[-1] for r in refs if r.secretsmanager]
            arns = [self.arn("secretsmanager", region, f"secret:{name}-*") for region in regions for name in names]
            if not arns and self.all:
                arns = [self.arn("secretsmanager", region, "secret:*") for region in regions]
            return _Where(tuple(sorted(set(arns)))) if arns else None
        if scope == "stack_ssm_parameters":
            names = [r.ssm.split(":parameter/", 1)[-1].lstrip("/").split(":", 1)[0] for r in refs if r.ssm]
            arns = [self.arn("ssm", region, f"parameter/{name}") for region in regions for name in names]
            if not arns and self.all:
                arns = [self.arn("ssm", region, "parameter/*") for region in regions]
            return _Where(tuple(sorted(set(arns)))) if arns else None
        services = sorted({f"{svc}.{region}.amazonaws.com" for region in regions for r in refs
                           for svc in (("secretsmanager",) if r.secretsmanager else ("ssm",) if r.ssm else ())})
        if not services and self.all:
            services = sorted(f"{svc}.{region}.amazonaws.com" for region in regions for svc in ("secretsmanager", "ssm"))
        if not services:
            return None
        return _Where(tuple(self.arn("kms", region, "key/*") for region in regions),
                      {"StringEquals": {"kms:ViaService": services}})

    def _any_bucket(self, objects: bool = False) -> _Where | None:
        if not self.all:
            return None
        return _Where((self.s3("*/*" if objects else "*"),))

    def _buckets(self, names: Iterable[str]) -> _Where | None:
        names = sorted(set(names))
        if not names:
            return self._any_bucket()
        return _Where(tuple(self.s3(n) for n in names))

    def _objects(self, pairs: Iterable[tuple[str, str]]) -> _Where | None:
        arns = sorted({self.s3(f"{bucket}/{prefix}*") for bucket, prefix in pairs})
        if not arns:
            return self._any_bucket(objects=True)
        return _Where(tuple(arns))


def _merge(*conditions: Mapping[str, Any] | None) -> dict[str, Any] | None:
    out: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        for op, pairs in (cond or {}).items():
            out.setdefault(op, {}).update(pairs)
    return out or None


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _s3_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix
