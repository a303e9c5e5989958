"""RDS instances and Aurora clusters: a snapshot in the primary region, copied to the DR region
under the DR key (the engine: dr/backup/rds.py), listed and pruned by their tags (catalog.py,
prune.py), restored by the runbook step `rds.restore`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from dr.aws import rds as rds_api
from dr.backup.kind import BackupKind, KindRun, PrunePart
from dr.backup.plan import Age, KeyCell, PlanItem, Table, Verb, When
from dr.clock import iso
from dr.config import Config, RdsResource
from dr.errors import DrError
from dr.permissions import Grant
from dr.render import human_time

if TYPE_CHECKING:  # the engines load when used: the registry is imported by `dr --help`
    from dr.backup.catalog import RecoveryPoint
    from dr.context import Context
    from dr.state.records import ResourceResult

_KEY_USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
            "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey")


def _features(describe: str, snapshots: str, *snapshot_actions: str):
    # dr/aws/rds.py + dr/backup/rds.py: describe the source, snapshot it (tagged), copy it to the DR
    # region under the DR key (RDS creates a grant on it, and reads the source's key), prune.
    return (
        Grant("unscoped", (f"rds:Describe{describe}s", f"rds:Describe{snapshots}s")),
        Grant("rds_sources", (f"rds:Create{snapshots}",)),
        Grant("rds_snapshots", snapshot_actions + ("rds:AddTagsToResource", "rds:ListTagsForResource")),
        Grant("dr_key_grant", ("kms:CreateGrant",)),
        Grant("dr_key_via_rds", _KEY_USE),
        Grant("primary_key_via_rds", ("kms:Decrypt", "kms:DescribeKey")),
        Grant("primary_key_grant_via_rds", ("kms:CreateGrant",)),
    )


class RdsBackupKind(BackupKind):
    name = "rds"
    restore_steps = ("rds.restore",)
    workers = 4
    list_rank = 10
    features = {
        "rds-instance": _features("DBInstance", "DBSnapshot", "rds:CreateDBSnapshot",
                                  "rds:CopyDBSnapshot", "rds:DeleteDBSnapshot"),
        "rds-cluster": _features("DBCluster", "DBClusterSnapshot",
                                 "rds:CreateDBClusterSnapshot", "rds:CopyDBClusterSnapshot",
                                 "rds:DeleteDBClusterSnapshot"),
    }

    def resources(self, config: Config) -> Sequence[RdsResource]:
        return config.rds

    def record_kind(self, resource: RdsResource) -> str:
        return rds_api.KINDS[resource.kind].record_kind

    def needs_dr_key(self, resource: RdsResource) -> bool:
        return True

    def features_for(self, config: Config, resource: RdsResource) -> list[str]:
        return ["rds-instance" if resource.instance else "rds-cluster"]

    # -- run

    def observe(self, ctx: Context, resource: RdsResource, now: datetime, count: bool):
        from dr.backup import rds

        return rds.observe(ctx.aws, ctx.config, resource, now)

    def plan(self, observation, config, dr_key, key_error) -> PlanItem:
        from dr.backup import rds

        (item,) = rds.plan_rds_backup([observation], config, dr_key, key_error)
        return PlanItem(
            name=item.name, kind=self.name, record_kind=item.kind.record_kind,
            summary=f"{item.kind.label} {item.source_id}, slot {human_time(item.slot)}",
            actions=item.actions, notes=item.notes, blocked=item.blocked, slot=item.slot,
            fields={"source": item.source_id, "snapshot_id": item.snapshot_id,
                    "slot": iso(item.slot), "notes": list(item.notes)}, engine=item)

    def execute(self, ctx: Context, item: PlanItem, resource: RdsResource, run: KindRun) -> None:
        from dr.backup import rds

        executor = run.shared.get("executor")
        if executor is None:  # one per run: its copy slots are shared by every thread
            executor = run.shared.setdefault("executor", rds.RdsExecutor(
                ctx.aws, ctx.config, ctx.clock, run.dr_key, run.cancel))
        executor.run(item.engine, resource, run.resource)

    def result_line(self, result: ResourceResult) -> str:
        copy = next((p for p in result.recovery_points if p["role"] == "copy"), None)
        return f" -> {copy['id']} in {copy['region']}" if copy else ""

    # -- list and prune

    def points(self, ctx: Context, resources: Sequence[RdsResource]) -> list[RecoveryPoint]:
        from dr.backup.catalog import list_rds_points

        return list_rds_points(ctx.aws, ctx.config, list(resources)) if resources else []

    def list_table(self, points: list[RecoveryPoint], now: datetime, show_all: bool) -> Table:
        points = sorted(points, key=lambda p: (p.created is not None, p.created, p.id), reverse=True)
        shown = [p for p in points if show_all or p.managed]
        table = Table("recovery_points", ("RESOURCE", "REGION", "ROLE", "ID", "CREATED", "AGE",
                                          "STATUS", "KEY"))
        table.rows = [(p.resource, p.region, p.role, p.id, When(p.created),
                       Age(now - p.created if p.created else None), p.status,
                       KeyCell(p.kms_key_id, p.encrypted)) for p in shown]
        table.data = [p.to_dict(now) for p in shown]
        if len(points) > len(shown):
            table.notes.append(f"({len(points) - len(shown)} manual snapshot(s) not made by dr are "
                               "not shown: --all shows them)")
        return table

    def plan_prune(self, points, resources, now):
        from dr.backup.prune import plan_prune

        return plan_prune(points, {r.name: r for r in resources}, now)

    def prune(self, ctx: Context, resources: Sequence[RdsResource], now: datetime, dry_run: bool):
        points = self.points(ctx, resources)
        decisions = self.plan_prune(points, resources, now)
        table = Table("decisions", ("RESOURCE", "REGION", "ID", "AGE", "ACTION", "WHY"))
        table.rows = [(d.point.resource, d.point.region, d.point.id,
                       Age(now - d.point.created if d.point.created else None), Verb(d.keep),
                       "; ".join(d.reasons)) for d in decisions]
        table.data = [d.to_dict(now) for d in decisions]
        unmanaged = [p for p in points if not p.managed]
        table.extra["unmanaged_untouched"] = [p.to_dict(now) for p in unmanaged]
        if unmanaged:
            table.footer.append(f"{len(unmanaged)} snapshot(s) not made by dr: never touched.")
        done = PrunePart(table, decisions, table.data)
        by_name = {r.name: r for r in resources}
        for d in decisions:
            if d.keep or dry_run:
                continue
            try:
                _delete_if_still_ours(ctx, d.point, by_name[d.point.resource])
                done.deleted.append(d.point.arn or d.point.id)
            except DrError as exc:
                done.failed[d.point.arn or d.point.id] = str(exc)
        return done

    def verify(self, ctx, resources, *, backup, deep):  # verify_takes None: never called
        raise NotImplementedError("a snapshot copy is checked as it is made (available, DR key)")

    # -- readiness

    def readiness_observe(self, ctx: Context, resource: RdsResource):
        from dr.backup.catalog import list_rds_points

        config = ctx.config
        kind = rds_api.KINDS[resource.kind]
        try:
            source = ctx.aws.rds(config.regions.primary).source(kind, resource.source_id)
            return resource, source, list_rds_points(ctx.aws, config, [resource]), None
        except DrError as exc:
            return resource, None, [], str(exc)

    def readiness(self, observation, config: Config, now: datetime):
        from dr.failover.readiness import Check, copy_check

        r, source, points, error = observation
        if error is not None:
            return [Check(f"rds:{r.name}", False, error)]
        checks = []
        if source is None:
            kind = rds_api.KINDS[r.kind]
            checks.append(Check(f"rds:{r.name}:source", False,
                                f"{kind.label} {r.source_id} not found in {config.regions.primary}"))
        copies = [p for p in points if p.role == "copy" and p.status == "available" and p.created]
        if not copies:
            return checks + [Check(f"rds:{r.name}:copy", False,
                                   f"no copy in {config.regions.dr} yet: run `dr backup run`")]
        newest = copies[0]
        # its data is as old as the source snapshot of the same id (the copy's own time is later)
        taken = min(p.created for p in points if p.id == newest.id and p.created)
        return checks + [copy_check(f"rds:{r.name}:copy", newest.id, taken, now,
                                    config.objectives.rpo)]


def _delete_if_still_ours(ctx: Context, point: RecoveryPoint, resource: RdsResource) -> None:
    """Re-read the snapshot just before deleting: only a dr-made one, still ours, is deleted."""
    kind = rds_api.KINDS[resource.kind]
    rds = ctx.aws.rds(point.region)
    snap = rds.snapshot(kind, point.id)
    if snap is None:
        return
    if snap.managed_name != resource.name:
        raise DrError(f"{point.id} in {point.region} is no longer tagged as dr's; left alone")
    rds.delete_snapshot(kind, point.id)
