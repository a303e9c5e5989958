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

from dr.aws import AwsSession
from dr.aws import rds as rds_api
from dr.aws.rds import CLUSTER, INSTANCE, KINDS, Database, Rds, RdsKind, Snapshot
from dr.config import Config, RdsResource
from dr.errors import ConfigError, OperationFailed
from dr.runbook.steps import ownership
from dr.runbook.steps.base import AbortRun, Param, StepContext, StepType, is_reference, target_region
from dr.runbook.steps.ownership import TAG_RUN, run_tags
from dr.clock import iso, parse_iso
from dr.wait import Backoff, poll

TAG_RESTORED_FROM, TAG_RECOVERY_TIME, TAG_RESOURCE = "dr:restored-from", "dr:recovery-time", "dr:resource"
MAX_ID = 63
WAIT_SECONDS = 3 * 3600.0  # a restore or a delete not done by then needs a human
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




def newest_copy(session: AwsSession, resource: RdsResource, region: str) -> RecoveryCopy:
    """The newest available dr-made recovery point of `resource` in `region`.

    Only `region` is asked: in a failover the primary region's API may be down, and a listing
    that waits for it (like the catalog's, which covers both regions) would stall the run."""
    kind = KINDS[resource.kind]
    rds = session.rds(region)
    snaps = [s for s in rds.snapshots(kind, resource.source_id)
             if s.managed_name == resource.name and s.status == "available"]
    if not snaps:
        raise OperationFailed(
            f"no available copy of {resource.name} ({kind.label} {resource.source_id}) in {region}",
            hint="run `dr backup run` (and wait for the copy to reach the DR region), "
                 "or pass `snapshot:` to restore a snapshot of your choice")
    newest = max(snaps, key=_captured)
    snap = rds.snapshot(kind, newest.id)
    if snap is None:
        raise OperationFailed(f"snapshot {newest.id} in {region} vanished while being chosen",
                              hint="run again")
    return _to_copy_of(kind, snap)


def _to_copy_of(kind: RdsKind, snap: Snapshot) -> RecoveryCopy:
    if snap.recovery_time is None:
        raise OperationFailed(f"snapshot {snap.id} in {snap.region} has no creation time yet")
    return RecoveryCopy(id=snap.id, kind=kind, region=snap.region, recovery_time=snap.recovery_time,
                        engine=snap.engine)


def _captured(snap: Snapshot) -> tuple[datetime, str]:
    when = snap.created or datetime.min.replace(tzinfo=timezone.utc)
    try:
        when = parse_iso(snap.tags[rds_api.TAG_CREATED_AT])
    except (KeyError, ValueError):
        pass
    return when, snap.id


def chosen_copy(session: AwsSession, resource: RdsResource, snapshot_id: str, region: str) -> RecoveryCopy:
    kind = KINDS[resource.kind]
    snap = session.rds(region).snapshot(kind, snapshot_id)
    if snap is None:
        raise OperationFailed(f"snapshot {snapshot_id} ({kind.label} snapshot) not found in {region}",
                              hint=f"list the copies with `dr backup list --name {resource.name}`")
    if snap.status != "available":
        raise OperationFailed(f"snapshot {snapshot_id} in {region} is {snap.status}, not available",
                              hint="wait for it to finish copying, or choose another")
    return _to_copy_of(kind, snap)


# --- the target -----------------------------------------------------------------------------------


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


def start_restore(ctx: StepContext, rds: Rds, resource: RdsResource, copy: RecoveryCopy,
                  opts: RestoreOptions) -> None:
    """Issue the restore calls (instance, or cluster plus its writer instance)."""
    tags = {**run_tags(ctx), TAG_RESOURCE: resource.name, TAG_RESTORED_FROM: copy.id,
            TAG_RECOVERY_TIME: iso(copy.recovery_time)}
    if copy.kind is INSTANCE:
        rds.restore_instance(opts.identifier, copy.id, tags, instance_class=opts.instance_class,
                             multi_az=opts.multi_az, network=opts.network_args())
        return
    rds.restore_cluster(opts.identifier, copy.id, copy.engine, tags, network=opts.network_args())
    ensure_cluster_instance(rds, opts, copy.engine, tags)


def ensure_cluster_instance(rds: Rds, opts: RestoreOptions, engine: str, tags: dict[str, str]) -> None:
    """A restored Aurora cluster has no instance (and serves nothing) until one is added."""
    instance_id = cluster_instance_id(opts.identifier)
    if rds.database(INSTANCE, instance_id) is not None:
        return
    rds.create_cluster_instance(instance_id, opts.identifier, engine, opts.instance_class, tags)


def _wait(ctx: StepContext, rds: Rds, kind: RdsKind, identifier: str, what: str,
          timeout: float = WAIT_SECONDS) -> Database:
    region = rds.region

    def describe() -> Database:
        found = rds.database(kind, identifier)
        if found is None:
            raise OperationFailed(f"{what} in {region} disappeared while being restored",
                                  hint="someone deleted it; run again")
        if found.status in FAILED_STATES:
            raise OperationFailed(f"{what} in {region} is {found.status}: the restore failed",
                                  hint="look at its events in the RDS console (rds describe-events); "
                                       "check the subnet group, security groups and the DR key grant")
        return found

    return poll(describe, ready=lambda db: db.status == "available", what=f"{what} in {region}",
                clock=ctx.wait_clock, timeout=timeout, backoff=Backoff(1.0, 2.0, 30.0), still=lambda db: db.status,
                hint="run again to keep waiting (the restore is not repeated)").value


def wait_available(ctx: StepContext, rds: Rds, kind: RdsKind, identifier: str) -> Database:
    """Wait for the instance (or the cluster and its writer) to be available; returns the
    instance or the cluster."""
    if kind is INSTANCE:
        return _wait(ctx, rds, INSTANCE, identifier, f"DB instance {identifier}")
    cluster = _wait(ctx, rds, CLUSTER, identifier, f"Aurora cluster {identifier}")
    writer = cluster_instance_id(identifier)
    _wait(ctx, rds, INSTANCE, writer, f"DB instance {writer} of Aurora cluster {identifier}")
    return cluster


def outputs_of(db: Database) -> dict[str, Any]:
    """The step outputs from the instance or cluster (tags carry the recovery point)."""
    return {"identifier": db.id, "endpoint": db.endpoint, "port": db.port,
            "snapshot_id": db.tags.get(TAG_RESTORED_FROM), "snapshot_time": db.tags.get(TAG_RECOVERY_TIME),
            "engine": db.engine or None}


# --- deleting -------------------------------------------------------------------------------------


def delete_target(ctx: StepContext, rds: Rds, kind: RdsKind, identifier: str,
                  timeout: float = WAIT_SECONDS) -> None:
    """Delete the instance (or the cluster and its instances) with no final snapshot; wait."""
    region = rds.region
    if kind is CLUSTER:
        cluster = rds.database(CLUSTER, identifier)
        for member in cluster.members if cluster is not None else ():
            delete_target(ctx, rds, INSTANCE, member, timeout)
        if cluster is None:
            return
    elif rds.database(INSTANCE, identifier) is None:
        return
    rds.delete_database(kind, identifier)
    poll(lambda: rds.database(kind, identifier), ready=lambda db: db is None,
         what=f"deleting {kind.label} {identifier} in {region}", clock=ctx.wait_clock, timeout=timeout,
         backoff=Backoff(1.0, 2.0, 30.0),
         hint="it keeps billing until it is gone: delete it by hand")


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
        return resource, KINDS[resource.kind], region, opts, ctx.session.rds(region)

    def execute(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
        resource, kind, region, opts, rds = self._setup(params, ctx)
        existing = rds.database(kind, opts.identifier)
        if existing is not None:
            if ownership.tags_say_ours(existing.tags, ctx) is not None:
                # never adopt (or later delete) a database this run did not restore
                message, hint = ownership.made_elsewhere(ctx, f"{kind.label} {opts.identifier}", region,
                                                         existing.tags)
                raise RdsTargetTaken(message, hint=hint)
            ctx.log(f"{kind.label} {opts.identifier} was started by this run: waiting for it")
            if kind is CLUSTER:
                ensure_cluster_instance(rds, opts, existing.engine, existing.tags)
        else:
            snapshot = params.get("snapshot")
            copy = (chosen_copy(ctx.session, resource, snapshot, region) if snapshot
                    else newest_copy(ctx.session, resource, region))
            ctx.log(f"restoring {copy.id} (data from {iso(copy.recovery_time)}) to {kind.label} "
                    f"{opts.identifier} in {region}")
            ctx.created(kind.record_kind, opts.identifier, region, snapshot=copy.id)
            if kind is CLUSTER:
                ctx.created("rds-instance", cluster_instance_id(opts.identifier), region, cluster=opts.identifier)
            start_restore(ctx, rds, resource, copy, opts)
        return outputs_of(wait_available(ctx, rds, kind, opts.identifier))

    def check(self, params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any] | None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        db = rds.database(kind, opts.identifier)
        if db is None or db.tags.get(TAG_RUN) != ctx.run_id or db.status != "available":
            return None
        if kind is CLUSTER:
            writer = rds.database(INSTANCE, cluster_instance_id(opts.identifier))
            if writer is None or writer.status != "available":
                return None
        return outputs_of(db)

    def teardown(self, params: Mapping[str, Any], outputs: Mapping[str, Any], ctx: StepContext) -> None:
        _, kind, region, opts, rds = self._setup(params, ctx)
        identifier = (outputs or {}).get("identifier") or opts.identifier
        db = rds.database(kind, identifier)
        if db is None:
            return
        why = ownership.owned(ctx, kind.record_kind, identifier, region, db.tags)
        if why:
            raise OperationFailed(f"not deleting {kind.label} {identifier} in {region}: {why}",
                                  hint="it was left exactly as it is")
        ctx.log(f"deleting {kind.label} {identifier} in {region} (no final snapshot)")
        delete_target(ctx, rds, kind, identifier)


STEP_TYPES = (RdsRestore,)
