"""rds.restore: restore a dr recovery point (an RDS snapshot copy) to a new DB instance or Aurora
cluster, and the helpers that find the copy, start the restore, wait for it and delete it.

Every step works in the region the run moves to (`target_region`: the DR region for a failover
or a drill), names what it creates deterministically (`ctx.name`, drill-suffixed in drills) and
tags it with the run (`dr:run`), so a resumed run adopts what it started instead of restoring a
second copy, and a drill's teardown deletes only what this run made. The recovery time reported
for RPO is when the data was captured (the original snapshot's time), not when the copy reached
the DR region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dr.aws import AwsSession, aws_call
from dr.backup import rds_api
from dr.backup.rds_api import CLUSTER, INSTANCE, KINDS, RdsKind, aware
from dr.config import Config, RdsResource
from dr.errors import AwsError, ConfigError, OperationFailed
from dr.runbook.steps import ownership
from dr.runbook.steps.base import AbortRun, Param, StepContext, StepType, is_reference, target_region
from dr.runbook.steps.ownership import TAG_RUN, run_tags
from dr.clock import iso, parse_iso
from dr.wait import Backoff, poll

TAG_RESTORED_FROM, TAG_RECOVERY_TIME, TAG_RESOURCE = "dr:restored-from", "dr:recovery-time", "dr:resource"
MAX_ID = 63
# How long a restore or a delete is waited for at most (the step's own timeout usually ends it
# first), and how often RDS is asked meanwhile.
WAIT_TIMEOUT = 3 * 3600.0
WAIT_BACKOFF = Backoff(first=1.0, factor=2.0, most=30.0)
FAILED_STATES = {"failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
                 "storage-full", "inaccessible-encryption-credentials", "restore-error",
                 "incompatible-option-group"}


@dataclass(frozen=True)
class RecoveryCopy:
    """The snapshot a restore starts from, and when its data was captured."""

    id: str
    kind: RdsKind
    region: str
    recovery_time: datetime
    engine: str


_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")


def valid_identifier(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value)) and "--" not in value and not value.endswith("-")


def bounded_name(ctx: StepContext, base: str, limit: int = MAX_ID) -> str:
    """ctx.name(base), shortening `base` (never the drill suffix) to fit AWS's length limit."""
    full = ctx.name(base)
    if len(full) <= limit:
        return full
    return ctx.name(base[: len(base) - (len(full) - limit)].rstrip("-"))




def recovery_time(item: Mapping[str, Any]) -> datetime | None:
    """When the snapshot's data was captured: a copy keeps the original's time."""
    tags = {t["Key"]: t["Value"] for t in item.get("TagList") or []}
    if item.get("OriginalSnapshotCreateTime"):
        return aware(item["OriginalSnapshotCreateTime"])
    if tags.get(rds_api.TAG_CREATED_AT):
        try:
            return parse_iso(tags[rds_api.TAG_CREATED_AT])
        except ValueError:
            pass
    return aware(item.get("SnapshotCreateTime"))


def _describe_snapshot(rds, kind: RdsKind, snapshot_id: str, region: str) -> dict[str, Any] | None:
    try:
        items = aws_call(getattr(rds, kind.describe), **{kind.id_key: snapshot_id},
                         action="describing snapshot", resource=snapshot_id, region=region)[kind.list_key]
    except AwsError as exc:
        if exc.code == kind.not_found:
            return None
        raise
    return items[0] if items else None


def _to_copy(kind: RdsKind, region: str, item: Mapping[str, Any]) -> RecoveryCopy:
    when = recovery_time(item)
    if when is None:
        raise OperationFailed(f"snapshot {item[kind.id_key]} in {region} has no creation time yet")
    return RecoveryCopy(id=item[kind.id_key], kind=kind, region=region, recovery_time=when,
                        engine=str(item.get("Engine") or ""))


def newest_copy(session: AwsSession, resource: RdsResource, region: str) -> RecoveryCopy:
    """The newest available dr-made recovery point of `resource` in `region`.

    Only `region` is asked: in a failover the primary region's API may be down, and a listing
    that waits for it (like the catalog's, which covers both regions) would stall the run."""
    kind = KINDS[resource.kind]
    snaps = [s for s in rds_api.list_snapshots(session.client("rds", region), kind, resource.source_id, region)
             if s.managed_name == resource.name and s.status == "available"]
    if not snaps:
        raise OperationFailed(
            f"no available copy of {resource.name} ({kind.label} {resource.source_id}) in {region}",
            hint="run `dr backup run` (and wait for the copy to reach the DR region), "
                 "or pass `snapshot:` to restore a snapshot of your choice")
    newest = max(snaps, key=_captured)
    item = _describe_snapshot(session.client("rds", region), kind, newest.id, region)
    if item is None:
        raise OperationFailed(f"snapshot {newest.id} in {region} vanished while being chosen",
                              hint="run again")
    return _to_copy(kind, region, item)


def _captured(snap: rds_api.Snapshot) -> tuple[datetime, str]:
    when = snap.created or datetime.min.replace(tzinfo=timezone.utc)
    try:
        when = parse_iso(snap.tags[rds_api.TAG_CREATED_AT])
    except (KeyError, ValueError):
        pass
    return when, snap.id


def chosen_copy(session: AwsSession, resource: RdsResource, snapshot_id: str, region: str) -> RecoveryCopy:
    kind = KINDS[resource.kind]
    item = _describe_snapshot(session.client("rds", region), kind, snapshot_id, region)
    if item is None:
        raise OperationFailed(f"snapshot {snapshot_id} ({kind.label} snapshot) not found in {region}",
                              hint=f"list the copies with `dr backup list --name {resource.name}`")
    if item.get("Status") != "available":
        raise OperationFailed(f"snapshot {snapshot_id} in {region} is {item.get('Status')}, not available",
                              hint="wait for it to finish copying, or choose another")
    return _to_copy(kind, region, item)


# --- the target -----------------------------------------------------------------------------------


def describe_target(rds, kind: RdsKind, identifier: str, region: str) -> dict[str, Any] | None:
    try:
        items = aws_call(getattr(rds, kind.describe_source), **{kind.source_param: identifier},
                         action="describing", resource=f"{kind.label} {identifier}",
                         region=region)[kind.source_list_key]
    except AwsError as exc:
        if exc.code == kind.source_not_found:
            return None
        raise
    return items[0] if items else None


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("TagList") or []}


def cluster_instance_id(identifier: str) -> str:
    return f"{identifier[:MAX_ID - 2].rstrip('-')}-1"


@dataclass(frozen=True)
class RestoreOptions:
    identifier: str
    instance_class: str | None = None
    subnet_group: str | None = None
    security_groups: tuple[str, ...] = ()
    multi_az: bool = False

    def network_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.subnet_group:
            args["DBSubnetGroupName"] = self.subnet_group
        if self.security_groups:
            args["VpcSecurityGroupIds"] = list(self.security_groups)
        return args


def start_restore(ctx: StepContext, rds, resource: RdsResource, copy: RecoveryCopy,
                  opts: RestoreOptions, region: str) -> None:
    """Issue the restore calls (instance, or cluster plus its writer instance)."""
    tags = {**run_tags(ctx), TAG_RESOURCE: resource.name, TAG_RESTORED_FROM: copy.id,
            TAG_RECOVERY_TIME: iso(copy.recovery_time)}
    tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
    where = dict(action="restoring", region=region)
    if copy.kind is INSTANCE:
        args = {"DBInstanceIdentifier": opts.identifier, "DBSnapshotIdentifier": copy.id,
                "Tags": tag_list, "MultiAZ": opts.multi_az, **opts.network_args()}
        if opts.instance_class:
            args["DBInstanceClass"] = opts.instance_class
        _tolerate_exists(lambda: aws_call(rds.restore_db_instance_from_db_snapshot, **args,
                                          resource=f"DB instance {opts.identifier} from {copy.id}", **where),
                         "DBInstanceAlreadyExists")
        return
    _tolerate_exists(lambda: aws_call(
        rds.restore_db_cluster_from_snapshot, DBClusterIdentifier=opts.identifier,
        SnapshotIdentifier=copy.id, Engine=copy.engine, Tags=tag_list, **opts.network_args(),
        resource=f"Aurora cluster {opts.identifier} from {copy.id}", **where), "DBClusterAlreadyExistsFault")
    ensure_cluster_instance(rds, opts, copy.engine, tag_list, region)


def ensure_cluster_instance(rds, opts: RestoreOptions, engine: str, tag_list: list[dict[str, str]],
                            region: str) -> None:
    """A restored Aurora cluster has no instance (and serves nothing) until one is added."""
    instance_id = cluster_instance_id(opts.identifier)
    if describe_target(rds, INSTANCE, instance_id, region) is not None:
        return
    _tolerate_exists(lambda: aws_call(
        rds.create_db_instance, DBInstanceIdentifier=instance_id, DBClusterIdentifier=opts.identifier,
        Engine=engine, DBInstanceClass=opts.instance_class, Tags=tag_list,
        action="creating the writer instance of", resource=f"Aurora cluster {opts.identifier}",
        region=region), "DBInstanceAlreadyExists")


def _tolerate_exists(call, code: str) -> None:
    try:
        call()
    except AwsError as exc:
        if exc.code != code:  # a retried request whose first attempt got through
            raise


def _poll(ctx: StepContext, describe, what: str, region: str, timeout: float) -> dict[str, Any]:
    def failed(found: tuple[dict[str, Any] | None, str]) -> None:
        item, status = found
        if item is None:
            raise OperationFailed(f"{what} in {region} disappeared while being restored",
                                  hint="someone deleted it; run again")
        if status in FAILED_STATES:
            raise OperationFailed(f"{what} in {region} is {status}: the restore failed",
                                  hint="look at its events in the RDS console (rds describe-events); "
                                       "check the subnet group, security groups and the DR key grant")

    return poll(describe, ready=lambda found: found[1] == "available", failed=failed,
                what=f"{what} in {region} to be available", clock=ctx.wait_clock, timeout=timeout,
                backoff=WAIT_BACKOFF,
                hint="run again to keep waiting (the restore is not repeated)").value[0]


def wait_available(ctx: StepContext, rds, kind: RdsKind, identifier: str, region: str,
                   timeout: float = WAIT_TIMEOUT) -> dict[str, Any]:
    """Wait for the instance (or the cluster and its writer) to be available; returns the
    instance or cluster description."""
    if kind is INSTANCE:
        return _poll(ctx, lambda: _with_status(describe_target(rds, INSTANCE, identifier, region),
                                               "DBInstanceStatus"),
                     f"DB instance {identifier}", region, timeout)
    cluster = _poll(ctx, lambda: _with_status(describe_target(rds, CLUSTER, identifier, region), "Status"),
                    f"Aurora cluster {identifier}", region, timeout)
    writer = cluster_instance_id(identifier)
    _poll(ctx, lambda: _with_status(describe_target(rds, INSTANCE, writer, region), "DBInstanceStatus"),
          f"DB instance {writer} of Aurora cluster {identifier}", region, timeout)
    return cluster


def _with_status(item: dict[str, Any] | None, key: str) -> tuple[dict[str, Any] | None, str]:
    return item, (item or {}).get(key, "")


def outputs_of(kind: RdsKind, item: Mapping[str, Any]) -> dict[str, Any]:
    """The step outputs from the instance or cluster description (tags carry the recovery point)."""
    tags = tags_of(item)
    if kind is INSTANCE:
        endpoint = item.get("Endpoint") or {}
        identifier, address, port = item["DBInstanceIdentifier"], endpoint.get("Address"), endpoint.get("Port")
    else:
        identifier, address, port = item["DBClusterIdentifier"], item.get("Endpoint"), item.get("Port")
    return {"identifier": identifier, "endpoint": address, "port": port,
            "snapshot_id": tags.get(TAG_RESTORED_FROM), "snapshot_time": tags.get(TAG_RECOVERY_TIME),
            "engine": item.get("Engine")}


# --- deleting -------------------------------------------------------------------------------------


def delete_target(ctx: StepContext, rds, kind: RdsKind, identifier: str, region: str,
                  timeout: float = WAIT_TIMEOUT) -> None:
    """Delete the instance (or the cluster and its instances) with no final snapshot; wait."""
    if kind is CLUSTER:
        cluster = describe_target(rds, CLUSTER, identifier, region)
        members = [m["DBInstanceIdentifier"] for m in (cluster or {}).get("DBClusterMembers") or []]
        for member in members:
            delete_target(ctx, rds, INSTANCE, member, region, timeout)
        if cluster is None:
            return
        _tolerate_gone(lambda: aws_call(rds.delete_db_cluster, DBClusterIdentifier=identifier,
                                        SkipFinalSnapshot=True, action="deleting",
                                        resource=f"Aurora cluster {identifier}", region=region),
                       CLUSTER.source_not_found)
    else:
        if describe_target(rds, INSTANCE, identifier, region) is None:
            return
        _tolerate_gone(lambda: aws_call(rds.delete_db_instance, DBInstanceIdentifier=identifier,
                                        SkipFinalSnapshot=True, DeleteAutomatedBackups=True,
                                        action="deleting", resource=f"DB instance {identifier}",
                                        region=region), INSTANCE.source_not_found)
    poll(lambda: describe_target(rds, kind, identifier, region), ready=lambda item: item is None,
         what=f"{kind.label} {identifier} in {region} to be gone", clock=ctx.wait_clock, timeout=timeout,
         backoff=WAIT_BACKOFF, hint="it keeps billing until it is gone: delete it by hand")


def _tolerate_gone(call, code: str) -> None:
    try:
        call()
    except AwsError as exc:
        if exc.code != code and "already being deleted" not in str(exc):
            raise


# --- the step -------------------------------------------------------------------------------------


class RdsTargetTaken(OperationFailed, AbortRun):
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
        if is_reference(name) or name is None:
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
        if ident and not is_reference(ident) and not valid_identifier(ident):
            problems.append(f"identifier: {ident!r} is not an RDS identifier (1-63 letters, digits and "
                            "hyphens, starting with a letter, no '--', not ending in '-')")
        return problems

    def _setup(self, params: Mapping[str, Any], ctx: StepContext):
        resource = ctx.config.rds_resource(params["resource"])
        region = target_region(ctx)
        opts = RestoreOptions(
            identifier=params.get("identifier") or bounded_name(ctx, f"{resource.source_id}-dr"),
            instance_class=params.get("instance_class"),
            subnet_group=params.get("subnet_group"),
            security_groups=tuple(params.get("security_groups") or ()),
            multi_az=bool(params.get("multi_az")))
        return resource, KINDS[resource.kind], region, opts, ctx.session.client("rds", region)

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        resource, kind, region, opts, rds = self._setup(params, ctx)
        existing = describe_target(rds, kind, opts.identifier, region)
        if existing is not None:
            if ownership.tags_say_ours(tags_of(existing), ctx) is not None:
                # never adopt (or later delete) a database this run did not restore
                message, hint = ownership.made_elsewhere(ctx, f"{kind.label} {opts.identifier}", region,
                                                         tags_of(existing))
                raise RdsTargetTaken(message, hint=hint)
            ctx.log(f"{kind.label} {opts.identifier} was started by this run: waiting for it")
            if kind is CLUSTER:
                ensure_cluster_instance(rds, opts, existing.get("Engine", ""), existing.get("TagList") or [],
                                        region)
        else:
            snapshot = params.get("snapshot")
            copy = (chosen_copy(ctx.session, resource, snapshot, region) if snapshot
                    else newest_copy(ctx.session, resource, region))
            ctx.log(f"restoring {copy.id} (data from {iso(copy.recovery_time)}) to {kind.label} "
                    f"{opts.identifier} in {region}")
            ctx.created(kind.record_kind, opts.identifier, region, snapshot=copy.id)
            if kind is CLUSTER:
                ctx.created("rds-instance", cluster_instance_id(opts.identifier), region, cluster=opts.identifier)
            start_restore(ctx, rds, resource, copy, opts, region)
        item = wait_available(ctx, rds, kind, opts.identifier, region)
        return outputs_of(kind, item)

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        item = describe_target(rds, kind, opts.identifier, region)
        if item is None or tags_of(item).get(TAG_RUN) != ctx.run_id:
            return None
        if (item.get("DBInstanceStatus") or item.get("Status")) != "available":
            return None
        if kind is CLUSTER:
            writer = describe_target(rds, INSTANCE, cluster_instance_id(opts.identifier), region)
            if writer is None or writer.get("DBInstanceStatus") != "available":
                return None
        return outputs_of(kind, item)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        identifier = (outputs or {}).get("identifier") or opts.identifier
        item = describe_target(rds, kind, identifier, region)
        if item is None:
            return
        why = ownership.owned(ctx, kind.record_kind, identifier, region, tags_of(item))
        if why:
            raise OperationFailed(f"not deleting {kind.label} {identifier} in {region}: {why}",
                                  hint="it was left exactly as it is")
        ctx.log(f"deleting {kind.label} {identifier} in {region} (no final snapshot)")
        delete_target(ctx, rds, kind, identifier, region)


STEP_TYPES = (RdsRestore,)
