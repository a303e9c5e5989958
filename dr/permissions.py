"""The IAM actions dr needs, declared per feature, and a least-privilege policy for one dr.yaml.

`FEATURES` is a plain map: feature -> grants, each grant a *scope* (where the actions apply) and
the actions. The backup kinds, the state store and notifications are declared here, next to a
note of the AWS calls they make (dr/backup/rds_api.py, s3.py, destination.py, dr/state/s3.py,
dr/kms.py, dr/crypto/keys.py, dr/scheduler/alerts.py). Runbook step types declare their own
`iam_actions` (dr/runbook/steps, the registry); `STEP_SCOPES` says where each of those applies.

`policy_for(config)` turns the features a config enables into an IAM policy document: resources
are ARNs built from the config (buckets, instances, clusters, the stack, the topic, the DR key)
and `*` only for actions AWS cannot scope to a resource (rds:Describe*, cloudformation:
ValidateTemplate, route53:ListHostedZonesByName, ...). Keys dr only names by alias are matched
with the `kms:ResourceAliases` condition; keys dr never names (the source databases' and
buckets' keys in the primary region) are reachable only through RDS or S3 (`kms:ViaService`).
No action is ever `*` or `service:*`, nor any other wildcard: every action is spelt out.

`dr permissions` prints it; terraform/modules/foundation attaches it to dr's role, so the code
and the role cannot drift (tests/unit/test_terraform.py regenerates the example's policy file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr.config import Config

__all__ = ["FAILOVER_STEP_TYPES", "FEATURES", "SCOPES", "STEP_SCOPES", "Grant", "account_of",
           "diff_policies", "features_for", "grants_for", "policy_actions", "policy_for", "render",
           "runbook_step_types", "step_types_for"]


@dataclass(frozen=True)
class Grant:
    scope: str
    actions: tuple[str, ...]


def _g(scope: str, *actions: str) -> Grant:
    return Grant(scope, tuple(actions))


#: scope -> (Sid, what it covers). The order here is the order of the policy's statements.
SCOPES: dict[str, tuple[str, str]] = {
    "unscoped": ("NoResourceLevelPermissions", "actions AWS cannot scope to a resource: Resource *"),
    "dr_key": ("DrKey", "kms.dr_key, called directly by dr (alias: kms:ResourceAliases condition)"),
    "dr_key_grant": ("DrKeyGrantsForAwsServices", "kms:CreateGrant on the DR key, only for AWS "
                                                  "services (RDS copies and restores)"),
    "dr_key_via_rds": ("DrKeyViaRds", "the DR key, used by RDS on dr's behalf (kms:ViaService)"),
    "dr_key_via_s3": ("DrKeyViaS3", "the DR key, used by S3 for SSE-KMS objects (kms:ViaService)"),
    "dr_key_envelope": ("DrKeyMysqlEnvelope", "data keys for client-side encrypted MySQL backups "
                                              "(encryption context dr:kind=mysql)"),
    "primary_key_via_rds": ("PrimaryKeysViaRds", "the source databases' keys in the primary region, "
                                                 "through RDS only"),
    "primary_key_grant_via_rds": ("PrimaryKeyGrantsViaRds", "kms:CreateGrant on the source "
                                                            "databases' keys, through RDS only"),
    "primary_key_via_s3": ("PrimaryKeysViaS3", "the source buckets' SSE-KMS keys, through S3 only"),
    "state_bucket": ("StateBucket", "state.bucket"),
    "state_objects": ("StateObjects", "objects under state.prefix"),
    "s3_source_buckets": ("S3SourceBuckets", "s3[].source"),
    "s3_source_objects": ("S3SourceObjects", "objects under s3[].prefix in the source"),
    "s3_destination_buckets": ("S3DestinationBuckets", "s3[].destination"),
    "s3_destination_objects": ("S3DestinationObjects", "objects under s3[].prefix in the destination"),
    "backup_buckets": ("BackupBuckets", "the buckets of mysql[].destination (s3://)"),
    "backup_objects": ("BackupObjects", "objects under each mysql[].destination prefix"),
    "rds_sources": ("RdsSources", "rds[].instance / rds[].cluster in the primary region"),
    "rds_snapshots": ("RdsSnapshots", "dr's snapshots dr-<name>-* in both regions"),
    "rds_restore": ("RdsRestore", "restored instances and clusters (rds.restore), both regions"),
    "rds_drill_deletes": ("RdsDrillDeletes", "drill leftovers named *drill-* in the DR region"),
    "rds_drill_tagged": ("RdsDrillTaggedDeletes", "drill leftovers tagged dr:drill=true in the "
                                                  "DR region"),
    "cfn_stacks": ("CloudFormationStacks", "stack.name (and its drill-suffixed names), both regions"),
    "cfn_pass_role": ("PassRoleToCloudFormation", "a stack service role (stack.launch role_arn)"),
    "route53_zone": ("Route53Zone", "hosted zones (the zone id is not in dr.yaml)"),
    "route53_records": ("Route53Records", "changes to dns.record and drill-*.<zone> only"),
    "route53_changes": ("Route53Changes", "change status"),
    "route53_health_checks": ("Route53HealthChecks", "health checks"),
    "sns_topic": ("SnsTopic", "notify.sns_topic"),
    "stack_secrets": ("StackParameterSecrets", "Secrets Manager secrets named by stack parameters, both "
                                               "regions"),
    "stack_ssm_parameters": ("StackParameterSsm", "SSM parameters named by stack parameters, both regions"),
    "stack_secret_keys": ("StackParameterSecretKeys", "their KMS keys, through Secrets Manager / SSM only "
                                                      "(kms:ViaService)"),
}

_RDS_KEY_USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey")

#: feature -> the grants it needs. A plain map; `features_for(config)` picks the enabled ones.
FEATURES: dict[str, tuple[Grant, ...]] = {
    # Every command that touches AWS resolves kms.dr_key first (dr/kms.py: DescribeKey).
    "dr-key": (_g("dr_key", "kms:DescribeKey"),),
    # dr/state/s3.py: HeadBucket (ListBucket), GetBucketLocation, Get/Put(If-None-Match)/Delete
    # Object, ListObjectsV2; objects are SSE-KMS under the DR key.
    "state-s3": (
        _g("state_bucket", "s3:ListBucket", "s3:GetBucketLocation"),
        _g("state_objects", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
        _g("dr_key_via_s3", "kms:GenerateDataKey", "kms:Decrypt"),
    ),
    # dr/backup/rds_api.py + rds.py: describe the source, snapshot it (tagged), copy it to the DR
    # region under the DR key (RDS creates a grant on it, and reads the source's key), prune.
    "rds-instance": (
        _g("unscoped", "rds:DescribeDBInstances", "rds:DescribeDBSnapshots"),
        _g("rds_sources", "rds:CreateDBSnapshot"),
        _g("rds_snapshots", "rds:CreateDBSnapshot", "rds:CopyDBSnapshot", "rds:DeleteDBSnapshot",
           "rds:AddTagsToResource", "rds:ListTagsForResource"),
        _g("dr_key_grant", "kms:CreateGrant"),
        _g("dr_key_via_rds", *_RDS_KEY_USE),
        _g("primary_key_via_rds", "kms:Decrypt", "kms:DescribeKey"),
        _g("primary_key_grant_via_rds", "kms:CreateGrant"),
    ),
    "rds-cluster": (
        _g("unscoped", "rds:DescribeDBClusters", "rds:DescribeDBClusterSnapshots"),
        _g("rds_sources", "rds:CreateDBClusterSnapshot"),
        _g("rds_snapshots", "rds:CreateDBClusterSnapshot", "rds:CopyDBClusterSnapshot",
           "rds:DeleteDBClusterSnapshot", "rds:AddTagsToResource", "rds:ListTagsForResource"),
        _g("dr_key_grant", "kms:CreateGrant"),
        _g("dr_key_via_rds", *_RDS_KEY_USE),
        _g("primary_key_via_rds", "kms:Decrypt", "kms:DescribeKey"),
        _g("primary_key_grant_via_rds", "kms:CreateGrant"),
    ),
    # dr/backup/s3.py: GetBucketLocation on both; ListObjectsV2 on both; HeadObject,
    # GetObjectTagging on the source; CopyObject (TaggingDirective COPY) / CreateMultipartUpload +
    # UploadPartCopy (a source VersionId) + Complete/AbortMultipartUpload into the destination under
    # the DR key; readiness reads the destination's versioning and default encryption.
    "s3": (
        _g("s3_source_buckets", "s3:ListBucket", "s3:GetBucketLocation"),
        _g("s3_source_objects", "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"),
        _g("s3_destination_buckets", "s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning",
           "s3:GetEncryptionConfiguration"),
        _g("s3_destination_objects", "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload",
           "s3:GetObject", "s3:GetObjectTagging"),  # the last two: verify --deep reads each copy
        _g("dr_key_via_s3", "kms:GenerateDataKey", "kms:Decrypt"),
        _g("primary_key_via_s3", "kms:Decrypt"),
    ),
    # s3[].delete: mirror deletes destination objects whose source is gone (after delete_grace).
    "s3-mirror": (_g("s3_destination_objects", "s3:DeleteObject"),),
    # dr/backup/destination.py: GetBucketLocation (check), multipart upload (Create/Upload/
    # Complete/Abort = PutObject, AbortMultipartUpload) under the DR key, GetObject (restore,
    # verify), ListObjectsV2, DeleteObject (prune); dr/backup/cleanup.py: ListMultipartUploads
    # and AbortMultipartUpload for the uploads of killed runs.
    "mysql-s3": (
        _g("backup_buckets", "s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"),
        _g("backup_objects", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"),
        _g("dr_key_via_s3", "kms:GenerateDataKey", "kms:Decrypt"),
    ),
    # dr/crypto/keys.py KmsKeyProvider: the envelope's data key (GenerateDataKey, Decrypt) with
    # the encryption context {dr:backup, dr:kind: mysql}. Not needed with mysql[].key_file.
    "mysql-kms": (_g("dr_key_envelope", "kms:GenerateDataKey", "kms:Decrypt"),),
    # dr/scheduler/alerts.py and the notify step: Publish.
    "notify": (_g("sns_topic", "sns:Publish"),),
}

#: runbook step action -> where it applies. Every `iam_actions` entry of a registered step type
#: must be here (a test checks it): a new action needs a decision about its scope.
STEP_SCOPES: dict[str, tuple[str, ...]] = {
    "sns:Publish": ("sns_topic",),
    "kms:DescribeKey": ("dr_key", "primary_key_via_rds"),
    "kms:Encrypt": ("dr_key",),
    "kms:CreateGrant": ("dr_key_grant", "primary_key_grant_via_rds"),
    "rds:DescribeDBInstances": ("unscoped",),
    "rds:DescribeDBClusters": ("unscoped",),
    "rds:DescribeDBSnapshots": ("unscoped",),
    "rds:DescribeDBClusterSnapshots": ("unscoped",),
    "rds:RestoreDBInstanceFromDBSnapshot": ("rds_restore",),
    "rds:RestoreDBClusterFromSnapshot": ("rds_restore",),
    "rds:CreateDBInstance": ("rds_restore",),
    "rds:AddTagsToResource": ("rds_restore",),
    "rds:DeleteDBInstance": ("rds_drill_deletes", "rds_drill_tagged"),
    "rds:DeleteDBCluster": ("rds_drill_deletes", "rds_drill_tagged"),
    "rds:DeleteDBSnapshot": ("rds_drill_deletes", "rds_drill_tagged"),
    "rds:DeleteDBClusterSnapshot": ("rds_drill_deletes", "rds_drill_tagged"),
    "cloudformation:ValidateTemplate": ("unscoped",),
    "cloudformation:DescribeStacks": ("unscoped",),  # teardown lists every stack in the region
    "cloudformation:CreateStack": ("cfn_stacks",),
    "cloudformation:UpdateStack": ("cfn_stacks",),
    "cloudformation:DeleteStack": ("cfn_stacks",),
    "cloudformation:DescribeStackEvents": ("cfn_stacks",),
    "cloudformation:GetTemplate": ("cfn_stacks",),
    "cloudformation:ListStackResources": ("cfn_stacks",),
    "cloudformation:TagResource": ("cfn_stacks",),
    # stack parameters given by reference in dr.yaml, read in the region the stack launches in
    "secretsmanager:GetSecretValue": ("stack_secrets",),
    "ssm:GetParameter": ("stack_ssm_parameters",),
    "iam:PassRole": ("cfn_pass_role",),
    "route53:ListHostedZonesByName": ("unscoped",),
    "route53:ListHealthChecks": ("unscoped",),
    "route53:CreateHealthCheck": ("unscoped",),
    "route53:GetHostedZone": ("route53_zone",),
    "route53:ListResourceRecordSets": ("route53_zone",),
    "route53:ChangeResourceRecordSets": ("route53_records",),
    "route53:GetChange": ("route53_changes",),
    "route53:GetHealthCheckStatus": ("route53_health_checks",),
    "route53:DeleteHealthCheck": ("route53_health_checks",),
    "route53:ListTagsForResources": ("route53_health_checks",),
    # mysql.restore reads a backup from its s3:// destination and unwraps its data key.
    "s3:GetObject": ("backup_objects",),
    "s3:ListBucket": ("backup_buckets",),
    "kms:Decrypt": ("dr_key_envelope", "dr_key_via_s3", "stack_secret_keys"),
}

#: The step types the shipped runbooks (runbooks/failover.yaml, drill.yaml, failback.yaml) use.
FAILOVER_STEP_TYPES = ("readiness", "rds.restore", "stack.launch", "http.wait_healthy", "dns.flip",
                       "dns.restore", "teardown", "notify", "mysql.restore")

_ACCOUNT_RE = re.compile(r"\d{12}")


# --- which features a config enables ----------------------------------------------------------


def features_for(config: Config, all_features: bool = False) -> list[str]:
    """The backup/state/notify features `config` uses (every one with all_features)."""
    if all_features:
        return list(FEATURES)
    found = ["dr-key"]
    if config.state.bucket:
        found.append("state-s3")
    if any(r.instance for r in config.rds):
        found.append("rds-instance")
    if any(r.cluster for r in config.rds):
        found.append("rds-cluster")
    if config.s3:
        found.append("s3")
    if any(r.delete == "mirror" for r in config.s3):
        found.append("s3-mirror")
    if any(m.destination.startswith("s3://") for m in config.mysql):
        found.append("mysql-s3")
    if any(m.key_file is None for m in config.mysql):
        found.append("mysql-kms")
    if config.notify.sns_topic:
        found.append("notify")
    return found


def step_types_for(config: Config, all_features: bool = False) -> list[str]:
    """The runbook step types the shipped runbooks would run with this config.

    With a `stack` section, dr drill / restore / failback are usable: their step types count.
    `rds.restore` needs an rds entry, `mysql.restore` a mysql entry."""
    from dr.runbook.steps import REGISTRY

    if all_features:
        return sorted(REGISTRY)
    if config.stack is None:
        return []
    types = [t for t in FAILOVER_STEP_TYPES if t in REGISTRY]
    if not config.rds:
        types = [t for t in types if t != "rds.restore"]
    if not config.mysql:
        types = [t for t in types if t != "mysql.restore"]
    return types


def runbook_step_types(path: str | Path) -> list[str]:
    """The step types a runbook file uses (its steps' `type:`), without running the loader."""
    import yaml

    from dr.errors import ConfigError

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read runbook {path}: {exc}") from None
    steps = doc.get("steps") if isinstance(doc, dict) else None
    if not isinstance(steps, list):
        raise ConfigError(f"runbook {path}: expected a mapping with a `steps` list")
    return sorted({s["type"] for s in steps if isinstance(s, dict) and isinstance(s.get("type"), str)})


# --- scopes -> resources and conditions ---------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None


class _Resolver:
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


def account_of(config: Config) -> str | None:
    """The account id written in the config's ARNs (the SNS topic, a key ARN), if any."""
    for arn in (config.notify.sns_topic, config.kms.dr_key):
        if arn and arn.startswith("arn:"):
            parts = arn.split(":")
            if len(parts) > 4 and _ACCOUNT_RE.fullmatch(parts[4]):
                return parts[4]
    return None


# --- the policy -------------------------------------------------------------------------------


def grants_for(config: Config, *, all_features: bool = False,
               step_types: Iterable[str] | None = None) -> dict[str, set[str]]:
    """scope -> the actions the enabled features and step types need there."""
    from dr.runbook.steps import REGISTRY

    wanted: dict[str, set[str]] = {}
    for feature in features_for(config, all_features):
        for grant in FEATURES[feature]:
            wanted.setdefault(grant.scope, set()).update(grant.actions)
    types = set(step_types_for(config, all_features)) | set(step_types or ())
    route53 = all_features or (config.dns is not None and config.dns.provider == "route53")
    for name in sorted(types):
        if name not in REGISTRY:
            from dr.errors import ConfigError

            raise ConfigError(f"unknown step type {name!r} (known: {', '.join(sorted(REGISTRY))})")
        for action in REGISTRY[name].iam_actions:
            if action.startswith("route53:") and not route53:
                continue  # dns.provider rfc2136 (or none): the DNS steps need no IAM
            if action not in STEP_SCOPES:
                raise KeyError(f"step type {name!r} declares {action!r}, which dr/permissions.py "
                               "STEP_SCOPES does not place; add it there with its resource scope")
            for scope in STEP_SCOPES[action]:
                wanted.setdefault(scope, set()).add(action)
    return wanted


def policy_for(config: Config, account: str | None = None, *, all_features: bool = False,
               step_types: Iterable[str] | None = None) -> dict[str, Any]:
    """A least-privilege IAM policy document (a dict) for the features `config` enables.

    account: the AWS account id for ARNs; default the one in the config's ARNs, else `*`.
    all_features: every feature and step type, whatever the config enables (ARNs still come from
    the config where it names a resource; elsewhere a wildcard of that resource type).
    step_types: more runbook step types to cover (e.g. those of a custom runbook)."""
    if account is not None and not _ACCOUNT_RE.fullmatch(account):
        from dr.errors import UsageError

        raise UsageError(f"--account: expected a 12-digit AWS account id, got {account!r}")
    account = account or account_of(config) or "*"
    resolver = _Resolver(config, account, all_features)
    wanted = grants_for(config, all_features=all_features, step_types=step_types)
    statements = []
    for scope, (sid, _about) in SCOPES.items():
        actions = wanted.get(scope)
        if not actions:
            continue
        where = resolver.resolve(scope)
        if where is None:
            continue
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions),
                                     "Resource": list(where.resources) if len(where.resources) > 1
                                     else where.resources[0]}
        if where.condition:
            statement["Condition"] = where.condition
        statements.append(statement)
    unknown = set(wanted) - set(SCOPES)
    if unknown:
        raise KeyError(f"unknown IAM scopes {sorted(unknown)} (dr/permissions.py SCOPES)")
    return {"Version": "2012-10-17", "Statement": statements}


def render(policy: Mapping[str, Any]) -> str:
    """The policy as `dr permissions` prints it (stable: diffs of it are reviewable)."""
    return json.dumps(policy, indent=2) + "\n"


def policy_actions(policy: Mapping[str, Any]) -> set[str]:
    """Every action a policy document allows (its Allow statements)."""
    found: set[str] = set()
    for statement in _statements(policy):
        if statement.get("Effect") == "Allow":
            action = statement.get("Action", [])
            found.update([action] if isinstance(action, str) else action)
    return found


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def diff_policies(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two policy documents, statement by statement (Sid)."""
    def by_sid(policy):
        return {s.get("Sid", f"#{i}"): s for i, s in enumerate(_statements(policy))}

    exp, act = by_sid(expected), by_sid(actual)
    lines = []
    for sid in sorted(set(exp) | set(act)):
        e, a = exp.get(sid), act.get(sid)
        if e is None:
            lines.append(f"{sid}: in the file, not needed by this dr.yaml")
        elif a is None:
            lines.append(f"{sid}: missing from the file ({', '.join(_list(e.get('Action')))})")
        elif e != a:
            for key in ("Action", "Resource", "Condition", "Effect"):
                if e.get(key) != a.get(key):
                    if key == "Action":
                        more = sorted(set(_list(e[key])) - set(_list(a.get(key))))
                        less = sorted(set(_list(a.get(key))) - set(_list(e[key])))
                        lines.append(f"{sid}: actions missing {more or '[]'}, extra {less or '[]'}")
                    else:
                        lines.append(f"{sid}: {key} differs: expected {json.dumps(e.get(key))}, "
                                     f"file has {json.dumps(a.get(key))}")
    if expected.get("Version") != actual.get("Version"):
        lines.append(f"Version: expected {expected.get('Version')}, file has {actual.get('Version')}")
    return lines


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
