"""Restore a dr recovery point (an RDS snapshot copy) to a new DB instance or Aurora cluster.

The target's identifier is deterministic per run, and the target carries the run's tags, so a
resumed run adopts what it started instead of restoring a second copy, and a teardown deletes
only what this run made. The recovery time reported for RPO is when the data was captured (the
original snapshot's time), not when the copy reached the DR region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dr.aws import AwsSession, aws_call
from dr.backup import rds_api
from dr.backup.rds_api import CLUSTER, INSTANCE, KINDS, RdsKind, aware
from dr.config import RdsResource
from dr.errors import AwsError, OperationFailed
from dr.clock import iso, parse_iso

if TYPE_CHECKING:
    from dr.runbook.steps.base import StepContext

TAG_RUN, TAG_STEP, TAG_DRILL = "dr:run", "dr:step", "dr:drill"
TAG_RESTORED_FROM, TAG_RECOVERY_TIME, TAG_RESOURCE = "dr:restored-from", "dr:recovery-time", "dr:resource"
MAX_ID = 63
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


def run_tags(ctx: StepContext) -> dict[str, str]:
    return {TAG_RUN: ctx.run_id, TAG_STEP: ctx.step_id, TAG_DRILL: "true" if ctx.drill else "false"}


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


def _poll(ctx: StepContext, describe, what: str, region: str, max_polls: int) -> dict[str, Any]:
    interval = 1.0
    for _ in range(max_polls):
        item, status = describe()
        if item is None:
            raise OperationFailed(f"{what} in {region} disappeared while being restored",
                                  hint="someone deleted it; run again")
        if status == "available":
            return item
        if status in FAILED_STATES:
            raise OperationFailed(f"{what} in {region} is {status}: the restore failed",
                                  hint="look at its events in the RDS console (rds describe-events); "
                                       "check the subnet group, security groups and the DR key grant")
        ctx.wait(interval)
        interval = min(interval * 2, 30.0)
    raise OperationFailed(f"{what} in {region} was not available after {max_polls} checks",
                          hint="run again to keep waiting (the restore is not repeated)")


def wait_available(ctx: StepContext, rds, kind: RdsKind, identifier: str, region: str,
                   max_polls: int = 400) -> dict[str, Any]:
    """Wait for the instance (or the cluster and its writer) to be available; returns the
    instance or cluster description."""
    if kind is INSTANCE:
        return _poll(ctx, lambda: _with_status(describe_target(rds, INSTANCE, identifier, region),
                                               "DBInstanceStatus"),
                     f"DB instance {identifier}", region, max_polls)
    cluster = _poll(ctx, lambda: _with_status(describe_target(rds, CLUSTER, identifier, region), "Status"),
                    f"Aurora cluster {identifier}", region, max_polls)
    writer = cluster_instance_id(identifier)
    _poll(ctx, lambda: _with_status(describe_target(rds, INSTANCE, writer, region), "DBInstanceStatus"),
          f"DB instance {writer} of Aurora cluster {identifier}", region, max_polls)
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
                  max_polls: int = 400) -> None:
    """Delete the instance (or the cluster and its instances) with no final snapshot; wait."""
    if kind is CLUSTER:
        cluster = describe_target(rds, CLUSTER, identifier, region)
        members = [m["DBInstanceIdentifier"] for m in (cluster or {}).get("DBClusterMembers") or []]
        for member in members:
            delete_target(ctx, rds, INSTANCE, member, region, max_polls)
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
    interval = 1.0
    for _ in range(max_polls):
        if describe_target(rds, kind, identifier, region) is None:
            return
        ctx.wait(interval)
        interval = min(interval * 2, 30.0)
    raise OperationFailed(f"{kind.label} {identifier} in {region} was still there after "
                          f"{max_polls} checks", hint="it keeps billing until it is gone: delete it by hand")


def _tolerate_gone(call, code: str) -> None:
    try:
        call()
    except AwsError as exc:
        if exc.code != code and "already being deleted" not in str(exc):
            raise
