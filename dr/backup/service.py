"""The backup services behind `dr backup run|list|prune`: plan, execute, record."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

import dr
from dr.backup import rds, rds_api
from dr.backup.catalog import RecoveryPoint, list_rds_points
from dr.backup.prune import PruneDecision, plan_prune
from dr.backup.rds import RdsBackupItem, RdsExecutor
from dr.config import RdsResource
from dr.context import Context
from dr.errors import DrError, Interrupted, UsageError
from dr.kms import DrKey, resolve_dr_key
from dr.state.runs import ResourceResult, RunRecord, iso, new_run_id

log = logging.getLogger(__name__)
KINDS = ("rds",)


def select_rds(ctx: Context, only: str | None, name: str | None) -> list[RdsResource]:
    if only is not None and only not in KINDS:
        raise UsageError(f"--only {only}: this version backs up {', '.join(KINDS)}")
    resources = list(ctx.config.rds)
    if name is not None:
        resources = [ctx.config.rds_resource(name)]
    return resources


@dataclass
class BackupOutcome:
    dry_run: bool
    plan: list[RdsBackupItem]
    record: RunRecord | None = None

    @property
    def ok(self) -> bool:
        if self.record is None:
            return True
        return self.record.status == "completed"

    def to_dict(self) -> dict:
        d: dict = {"dry_run": self.dry_run, "plan": [i.to_dict() for i in self.plan]}
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def run_backup(ctx: Context, *, only: str | None = None, name: str | None = None,
               dry_run: bool = False) -> BackupOutcome:
    resources = select_rds(ctx, only, name)
    config, now = ctx.config, ctx.clock.now()
    dr_key, key_error = _dr_key(ctx)
    observations = [rds.observe(ctx.aws, config, r, now) for r in resources]
    plan = rds.plan_rds_backup(observations, config, dr_key, key_error)
    if dry_run:
        return BackupOutcome(dry_run=True, plan=plan)

    record = RunRecord(run_id=new_run_id("backup", now), kind="backup", status="running",
                       started_at=iso(now), command=ctx.command,
                       plan=[i.to_dict() for i in plan], dr_version=dr.__version__,
                       error=key_error)
    runner = _Runner(ctx, record)
    runner.save()
    by_name = {r.name: r for r in resources}
    runnable = []
    for item in plan:
        result = ResourceResult(name=item.name, kind=item.kind.record_kind, status="running",
                                started_at=iso(ctx.clock.now()))
        record.results.append(result)
        if item.blocked:
            result.status, result.error = "failed", item.blocked
            result.finished_at = result.started_at
        else:
            runnable.append((item, by_name[item.name], result))
    if runnable:
        executor = RdsExecutor(ctx.aws, config, ctx.clock, dr_key, runner.cancel, runner.save)
        runner.run_all(executor, runnable)
    runner.finish()
    return BackupOutcome(dry_run=False, plan=plan, record=record)


def _dr_key(ctx: Context) -> tuple[DrKey | None, str | None]:
    try:
        return resolve_dr_key(ctx.aws, ctx.config.kms.dr_key, ctx.config.regions.dr), None
    except DrError as exc:
        return None, str(exc)


class _Runner:
    """Runs items in parallel, saves the record at every transition, handles Ctrl-C."""

    def __init__(self, ctx: Context, record: RunRecord):
        self.ctx, self.record = ctx, record
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self._runs = ctx.runs

    def save(self) -> None:
        with self._lock:
            self._runs.save(self.record)

    def run_all(self, executor: RdsExecutor, runnable: list) -> None:
        pool = ThreadPoolExecutor(max_workers=min(4, len(runnable)), thread_name_prefix="dr-rds")
        futures = [pool.submit(self._one, executor, *job) for job in runnable]
        try:
            for future in as_completed(futures):
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for result in self.record.results:
                if result.status == "running":
                    result.status, result.finished_at = "interrupted", iso(self.ctx.clock.now())
            self.record.status = "interrupted"
            self.record.error = "interrupted by the user (Ctrl-C)"
            self.record.finished_at = iso(self.ctx.clock.now())
            self.save()
            raise Interrupted(
                f"interrupted; run {self.record.run_id} recorded where it stopped",
                hint="run the same `dr backup run` again: it reuses this slot's snapshots "
                     "and takes no second one") from None
        pool.shutdown(wait=True)

    def _one(self, executor: RdsExecutor, item: RdsBackupItem, resource: RdsResource,
             result: ResourceResult) -> None:
        try:
            executor.run(item, resource, result)
            result.status = "completed"
        except Interrupted as exc:
            result.status, result.error = "interrupted", str(exc)
        except DrError as exc:
            result.status, result.error = "failed", str(exc)
            log.error("%s: %s", item.name, exc)
        except Exception as exc:  # a bug or an unexpected AWS answer: record it, go on
            log.exception("%s: unexpected error", item.name)
            result.status, result.error = "failed", f"unexpected error: {exc!r}"
        finally:
            result.finished_at = iso(self.ctx.clock.now())
            self.save()

    def finish(self) -> None:
        statuses = {r.status for r in self.record.results}
        if "interrupted" in statuses:
            self.record.status = "interrupted"
        elif "failed" in statuses or self.record.error:
            self.record.status = "failed"
        else:
            self.record.status = "completed"
        self.record.finished_at = iso(self.ctx.clock.now())
        self.save()


# ---------------------------------------------------------------------------- list and prune


def list_points(ctx: Context, name: str | None = None) -> list[RecoveryPoint]:
    return list_rds_points(ctx.aws, ctx.config, select_rds(ctx, None, name))


@dataclass
class PruneOutcome:
    dry_run: bool
    decisions: list[PruneDecision]
    unmanaged: list[RecoveryPoint]
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    record: RunRecord | None = None

    def to_dict(self, now: datetime) -> dict:
        d = {"dry_run": self.dry_run, "decisions": [x.to_dict(now) for x in self.decisions],
             "unmanaged_untouched": [p.to_dict(now) for p in self.unmanaged],
             "deleted": self.deleted, "failed": self.failed}
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def prune(ctx: Context, *, name: str | None = None, dry_run: bool = False) -> PruneOutcome:
    resources = select_rds(ctx, None, name)
    now = ctx.clock.now()
    points = list_rds_points(ctx.aws, ctx.config, resources)
    decisions = plan_prune(points, {r.name: r for r in resources}, now)
    outcome = PruneOutcome(dry_run=dry_run, decisions=decisions,
                           unmanaged=[p for p in points if not p.managed])
    if dry_run:
        return outcome
    record = RunRecord(run_id=new_run_id("prune", now), kind="prune", status="running",
                       started_at=iso(now), command=ctx.command,
                       plan=[d.to_dict(now) for d in decisions], dr_version=dr.__version__)
    ctx.runs.save(record)
    by_name = {r.name: r for r in resources}
    for d in decisions:
        if d.keep:
            continue
        try:
            _delete_if_still_ours(ctx, d.point, by_name[d.point.resource])
            outcome.deleted.append(d.point.arn or d.point.id)
        except DrError as exc:
            outcome.failed[d.point.arn or d.point.id] = str(exc)
    record.status = "failed" if outcome.failed else "completed"
    record.error = "; ".join(f"{k}: {v}" for k, v in outcome.failed.items()) or None
    record.finished_at = iso(ctx.clock.now())
    ctx.runs.save(record)
    outcome.record = record
    return outcome


def _delete_if_still_ours(ctx: Context, point: RecoveryPoint, resource: RdsResource) -> None:
    """Re-read the snapshot just before deleting: only a dr-made one, still ours, is deleted."""
    kind = rds_api.KINDS[resource.kind]
    client = ctx.aws.client("rds", point.region)
    snap = rds_api.get_snapshot(client, kind, point.id, point.region)
    if snap is None:
        return
    if snap.managed_name != resource.name:
        raise DrError(f"{point.id} in {point.region} is no longer tagged as dr's; left alone")
    rds_api.delete_snapshot(client, kind, point.id, point.region)
