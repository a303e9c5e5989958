"""Sandbox fidelity: small monkeypatches that make moto behave like AWS where dr relies on it.

The sandbox must relaunch a real-world CloudFormation template (the LAMP stack in
`WordPress_Multi_AZ.yaml`) in its DR region *unchanged*. moto falls short on such templates in a
few places; each patch (in rds.py, cloudformation.py and s3.py, by AWS service) names the moto
behaviour it corrects (as of moto 5.2.5), what AWS does instead, and how it is fixed. `apply()` is called by the sandbox process only
(`dr.sandbox.server.EmbeddedAws`, and so `python -m dr.sandbox.server`); a plain
`python -m moto.server` stays unpatched, which is how the tests prove each patch is needed.

Every patch is idempotent, wraps moto's own function (the original is kept on the wrapper as
`__wrapped__`) and is skipped with a warning if the moto internals it wraps are gone, so a newer
moto that fixed the behaviour upstream keeps working.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dr.sandbox.fidelity import cloudformation, rds, s3

log = logging.getLogger(__name__)

CHECKED_WITH_MOTO = "5.2.5"


@dataclass(frozen=True)
class Patch:
    name: str
    wrong: str  # what moto does
    right: str  # what AWS does (and the patched sandbox now does)
    install: Callable[[], None]


# --- applying -----------------------------------------------------------------------------------

PATCHES: tuple[Patch, ...] = (
    Patch("rds-engine-case", "Engine: MySQL is refused (engine names compared case-sensitively)",
          "engine names are case-insensitive and stored lowercase", rds.patch_rds_engine_case),
    Patch("getatt-dotted-attribute", "!GetAtt DBInstance.Endpoint.Address (and ${A.B.C} in !Sub) "
          "is split on every dot, so the attribute read is 'Endpoint'; !GetAtt [A, B] crashes",
          "split on the first dot: attribute 'Endpoint.Address'; the list form works",
          cloudformation.patch_getatt_dotted),
    Patch("rds-cfn-instance", "AWS::RDS::DBInstance ignores DBSnapshotIdentifier and "
          "VPCSecurityGroups, and crashes on a DBSubnetGroupName string",
          "the instance is restored from the snapshot, with its security groups and subnet group",
          rds.patch_rds_cfn_instance),
    Patch("validate-template", "ValidateTemplate fails on cfn-lint warnings, with a garbled message",
          "only template errors fail validation", cloudformation.patch_validate_template),
    Patch("stack-create-failure", "a resource failure fails CreateStack and leaves the stack in "
          "CREATE_IN_PROGRESS, with no event", "CREATE_FAILED event, rollback, ROLLBACK_COMPLETE",
          cloudformation.patch_stack_create_failure),
    Patch("stack-parameter-list", "DescribeStacks shows List<> parameters as a Python repr and "
          "NoEcho parameters in clear", "comma-separated lists; NoEcho values shown as ****",
          cloudformation.patch_stack_parameter_list),
    Patch("getazs-region", '!GetAZs "" answers us-east-1 zones in every region',
          "the zones of the stack's own region", cloudformation.patch_getazs_region),
    Patch("rds-cfn-cluster", "AWS::RDS::DBCluster is skipped (no CloudFormation model); !GetAtt on "
          "it crashes; a DBInstance's DBClusterIdentifier is ignored",
          "the cluster is created (or restored from SnapshotIdentifier) and deleted with the stack; "
          "member instances join it", rds.patch_rds_cfn_cluster),
    Patch("stack-tags", "a stack's tags and the aws:cloudformation:* tags reach EC2 resources only, "
          "overwriting their own Tags", "every RDS instance and cluster, S3 bucket and EC2 resource "
          "the stack creates carries them; the resource's own Tags win", cloudformation.patch_stack_tags),
    Patch("deletion-policy-snapshot", "DeletionPolicy: Snapshot deletes an RDS instance or cluster "
          "without a snapshot", "a final manual snapshot, tagged like the resource, then the delete",
          rds.patch_deletion_policy_snapshot),
    Patch("rds-replica-promotion", "deleting an instance leaves its read replicas pointing at it; "
          "deleting one of them then fails (source not found)",
          "the same-Region read replicas of a deleted instance become standalone instances",
          rds.patch_rds_replica_promotion),
    Patch("s3-atomic-conditional-writes", "If-None-Match / If-Match writes are checked, then written, "
          "unlocked: two concurrent conditional writers can both win",
          "condition and write are atomic: exactly one concurrent conditional writer wins",
          s3.patch_s3_conditional_writes),
    Patch("yaml-tag-on-mapping", "a short-form tag on a mapping (!Base64 over an Fn::Sub block) "
          "reaches the resource as raw YAML nodes", "the mapping is read, as any other value",
          cloudformation.patch_yaml_tag_on_mapping),
    Patch("use-previous-value", "UpdateStack crashes (500) on UsePreviousValue for a parameter that "
          "took its default", "the stack's current value is kept, given or defaulted",
          cloudformation.patch_use_previous_value),
    Patch("target-group-delete", "DeleteStack leaves an AWS::ElasticLoadBalancingV2::TargetGroup behind "
          "(a named one then blocks the next stack)", "the target group is deleted with its stack",
          cloudformation.patch_target_group_delete),
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
