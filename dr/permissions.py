"""The IAM actions dr needs, declared per feature, and a least-privilege policy for one dr.yaml.

`FEATURES` (`features()`) is a plain map: feature -> grants, each grant a *scope* (where the
actions apply) and the actions. The state store and notifications are declared here; each backup
kind declares its own next to its code (`features` in dr/backup/kinds/<kind>.py), each with a
note of the AWS calls it makes. Runbook step types declare their own `iam_actions`
(dr/runbook/steps, the registry); `STEP_SCOPES` says where each of those applies. Where a scope's
resources are (ARNs built from the config) is dr/permission_scopes.py.

`policy_for(config)` turns the features a config enables into an IAM policy document: resources
are ARNs built from the config (buckets, instances, clusters, the stack, the topic, the DR key)
and `*` only for actions AWS cannot scope to a resource (rds:Describe*, cloudformation:
ValidateTemplate, route53:ListHostedZonesByName, ...). Keys dr only names by alias are matched
with the `kms:ResourceAliases` condition; keys dr never names (the source databases' and
buckets' keys in the primary region) are reachable only through RDS or S3 (`kms:ViaService`).
No action is ever `*` or `service:*`, nor any other wildcard: every action is spelt out.

`dr permissions` prints it; terraform/modules/foundation attaches it to dr's role, so the code
and the role cannot drift (tests/unit/terraform/test_terraform.py regenerates the example's policy file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dr.config import Config
from dr.permission_scopes import ScopeResolver

__all__ = ["CORE_FEATURES", "FAILOVER_STEP_TYPES", "NOTIFY_FEATURES", "SCOPES", "STEP_SCOPES", "Grant", "account_of",
           "diff_policies", "features", "features_for", "grants_for", "policy_actions", "policy_for", "render",
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

#: feature -> the grants it needs: the state store and notifications here, then every backup
#: kind's own (`features` in dr/backup/kinds/<kind>.py, next to the calls that need them).
#: `features_for(config)` picks the enabled ones.
CORE_FEATURES: dict[str, tuple[Grant, ...]] = {
    # Every command that touches AWS resolves kms.dr_key first (dr/aws/kms.py: DescribeKey).
    "dr-key": (_g("dr_key", "kms:DescribeKey"),),
    # dr/state/s3.py: HeadBucket (ListBucket), GetBucketLocation, Get/Put(If-None-Match)/Delete
    # Object, ListObjectsV2; objects are SSE-KMS under the DR key.
    "state-s3": (
        _g("state_bucket", "s3:ListBucket", "s3:GetBucketLocation"),
        _g("state_objects", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
        _g("dr_key_via_s3", "kms:GenerateDataKey", "kms:Decrypt"),
    ),
}
#: dr/scheduler/alerts.py and the notify step: Publish.
NOTIFY_FEATURES: dict[str, tuple[Grant, ...]] = {"notify": (_g("sns_topic", "sns:Publish"),)}


def __getattr__(name: str):
    if name == "FEATURES":  # every feature, the backup kinds' included (they import Grant from here)
        return features()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def features() -> dict[str, tuple[Grant, ...]]:
    """Every feature -> its grants: the core, each registered backup kind's, notifications."""
    from dr.backup.kinds import KINDS

    found = dict(CORE_FEATURES)
    for kind in KINDS.values():
        for name, grants in kind.features.items():
            if name in found:
                raise ValueError(f"IAM feature {name!r} is declared twice (backup kind {kind.name})")
            found[name] = grants
    return {**found, **NOTIFY_FEATURES}


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
    from dr.backup.kinds import KINDS

    every = features()
    if all_features:
        return list(every)
    wanted = {"dr-key"} | ({"state-s3"} if config.state.bucket else set())
    wanted |= {f for kind in KINDS.values() for r in kind.resources(config)
               for f in kind.features_for(config, r)}
    if config.notify.sns_topic:
        wanted.add("notify")
    return [f for f in every if f in wanted]


def step_types_for(config: Config, all_features: bool = False) -> list[str]:
    """The runbook step types the shipped runbooks would run with this config.

    With a `stack` section, dr drill / restore / failback are usable: their step types count.
    `rds.restore` needs an rds entry, `mysql.restore` a mysql entry."""
    from dr.runbook.steps import REGISTRY

    if all_features:
        return sorted(REGISTRY)
    if config.stack is None:
        return []
    from dr.backup.kinds import KINDS

    unused = {t for kind in KINDS.values() if not kind.resources(config) for t in kind.restore_steps}
    return [t for t in FAILOVER_STEP_TYPES if t in REGISTRY and t not in unused]


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
    every = features()
    for feature in features_for(config, all_features):
        for grant in every[feature]:
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
    resolver = ScopeResolver(config, account, all_features)
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
