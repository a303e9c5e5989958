"""The backup services behind `dr backup run|list|prune|verify`: plan, execute, record.

Every kind of data (dr/backup/kinds) goes through the same steps; this module iterates the
registry and names no kind."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

from dr.backup.cleanup import Cleanup, sweep
from dr.backup.kind import BackupKind, KindRun
from dr.backup.kinds import KINDS, kind_of
from dr.backup.leases import RunLease
from dr.backup.plan import PlanItem, Table
from dr.context import Context
from dr.errors import DrError, Interrupted, UsageError
from dr.aws.kms import DrKey, resolve_dr_key
from dr.state.recorder import Recorder, ResourceRecorder, error_message
from dr.state.records import RunRecord, new_run_id

log = logging.getLogger(__name__)

#: kind name -> the selected resources of that kind, in registry order
Selection = dict[str, tuple]


def select(ctx: Context, only: str | None, name: str | None) -> Selection:
    """The resources a command works on: all, one kind (`--only`), or one by name (`--name`)."""
    config = ctx.config
    if only is not None and only not in KINDS:
        raise UsageError(f"--only {only}: this version backs up {', '.join(KINDS)}")
    if name is not None:
        found = kind_of(config, name)
        kind = found.name if found is not None else config.resource_names().get(name)
        if kind is None:
            known = {r.name: None for k in KINDS.values() for r in k.resources(config)}
            known.update(config.resource_names())
            raise UsageError(f"no resource named {name!r} in {config.source} "
                             f"(known: {', '.join(known) or 'none are configured'})")
        if only is not None and only != kind:
            raise UsageError(f"--name {name} is an {kind} resource, but --only says {only}")
        only = kind
    return {k.name: tuple(r for r in k.resources(config) if name in (None, r.name))
            if only in (None, k.name) else () for k in KINDS.values()}


def _leftover_resources(sel: Selection) -> list:
    return [r for k in KINDS.values() if k.leaves_leftovers for r in sel.get(k.name, ())]


@dataclass
class BackupOutcome:
    dry_run: bool
    plan: list[PlanItem]
    record: RunRecord | None = None
    cleanup: list[Cleanup] = field(default_factory=list)

    def to_dict(self) -> dict:
        d: dict = {"dry_run": self.dry_run, "plan": [i.to_dict() for i in self.plan],
                   "cleanup": [c.to_dict() for c in self.cleanup]}
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def run_backup(ctx: Context, *, only: str | None = None, name: str | None = None,
               dry_run: bool = False) -> BackupOutcome:
    sel = select(ctx, only, name)
    if not any(sel.values()):
        return BackupOutcome(dry_run=dry_run, plan=[])
    config, now = ctx.config, ctx.clock.now()
    needs_key = any(KINDS[k].needs_dr_key(r) for k, rs in sel.items() for r in rs)
    dr_key, key_error = _dr_key(ctx) if needs_key else (None, None)
    jobs = [(KINDS[k], r) for k, rs in sel.items() for r in rs]
    # a dry run reads more to say what would move, unless the item is blocked by the DR key anyway
    plan = [kind.plan(kind.observe(ctx, r, now, dry_run and not (key_error and kind.needs_dr_key(r))),
                      config, dr_key, key_error) for kind, r in jobs]
    if dry_run:
        return BackupOutcome(dry_run=True, plan=plan)

    run_id = new_run_id("backup", now)
    cleanup = sweep(ctx, _leftover_resources(sel), servers=("server",), by=run_id)
    rec = Recorder(ctx.store, ctx.clock, "backup", ctx.command, plan=[i.to_dict() for i in plan],
                   error=key_error, run_id=run_id, started=now, interrupt_hint=RERUN_HINT,
                   summary={"cleanup": [c.to_dict() for c in cleanup]} if cleanup else None)
    with RunLease(ctx.store, run_id, "backup", ctx.clock) as lease, rec:
        _BackupPass(ctx, rec, dr_key, now, lease).run(jobs, plan)
    return BackupOutcome(dry_run=False, plan=plan, record=rec.record, cleanup=cleanup)


RERUN_HINT = ("run the same `dr backup run` again: it reuses this slot's snapshots, takes no "
              "second one, and copies only the objects still missing")


def _dr_key(ctx: Context) -> tuple[DrKey | None, str | None]:
    try:
        return resolve_dr_key(ctx.aws, ctx.config.kms.dr_key, ctx.config.regions.dr), None
    except DrError as exc:
        return None, str(exc)


class _BackupPass:
    """Runs the planned items kind by kind (a kind's resources in threads when it says so); the
    Recorder saves every transition."""

    def __init__(self, ctx: Context, rec: Recorder, dr_key: DrKey | None, now: datetime,
                 lease: RunLease):
        self.ctx, self.rec, self.dr_key, self.now, self.lease = ctx, rec, dr_key, now, lease
        self.cancel = threading.Event()

    def run(self, jobs: list[tuple[BackupKind, object]], plan: list[PlanItem]) -> None:
        for kind in KINDS.values():
            mine = [(r, item) for (k, r), item in zip(jobs, plan) if k is kind]
            shared: dict = {}
            runnable = []
            for resource, item in mine:
                recorded = self.rec.add(item.name, item.record_kind)
                if item.blocked:
                    recorded.fail(item.blocked)
                else:
                    runnable.append((kind, item, resource, recorded, shared))
            if kind.workers > 1 and runnable:
                self._in_threads(kind, runnable)
                continue
            for job in runnable:
                try:
                    self._one(*job)
                except (Interrupted, KeyboardInterrupt):
                    self._stop()

    def _stop(self):
        """Ctrl-C (or a kind's own stop on it): everything running is interrupted, and the run."""
        self.cancel.set()
        self.rec.interrupt()
        raise Interrupted(f"interrupted; run {self.rec.run_id} recorded where it stopped",
                          hint=RERUN_HINT) from None

    def _in_threads(self, kind: BackupKind, runnable: list) -> None:
        pool = ThreadPoolExecutor(max_workers=min(kind.workers, len(runnable)),
                                  thread_name_prefix=f"dr-{kind.name}")
        futures = [pool.submit(self._one_in_thread, *job) for job in runnable]
        try:
            for future in as_completed(futures):
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._stop()
        pool.shutdown(wait=True)

    def _one_in_thread(self, *job) -> None:
        try:
            self._one(*job)
        except Interrupted as exc:  # the others go on; Ctrl-C in the main thread stops all
            job[3].interrupt(error_message(exc))

    def _one(self, kind: BackupKind, item: PlanItem, resource, recorded: ResourceRecorder,
             shared: dict) -> None:
        run = KindRun(self.ctx, self.rec.record, recorded, self.dr_key, self.now, self.lease,
                      self.cancel, shared)
        try:
            kind.execute(self.ctx, item, resource, run)
        except (Interrupted, KeyboardInterrupt):
            raise
        except Exception as exc:
            if recorded.status != "running":
                # the resource is recorded already; what failed after it (its manifest in the
                # state store) fails the run, with its own message, as it always did
                raise
            if isinstance(exc, DrError):
                log.error("%s: %s", item.name, exc)
            else:  # a bug or an unexpected AWS answer: record it, go on
                log.exception("%s: unexpected error", item.name)
            recorded.fail(error_message(exc))
        else:
            if recorded.status == "running":
                recorded.complete()


# ---------------------------------------------------------------------------- list and prune


@dataclass
class Listing:
    """Every recovery point that could be listed, per kind, and what could not be (resource ->
    error): one failing source (RDS unreachable) never hides the others."""

    points: dict[str, list] = field(default_factory=dict)  # kind name -> its points
    failed: dict[str, str] = field(default_factory=dict)

    def tables(self, now: datetime, show_all: bool) -> list[Table]:
        kinds = sorted(KINDS.values(), key=lambda k: k.list_rank)
        return [k.list_table(self.points.get(k.name, []), now, show_all) for k in kinds]


def listing(ctx: Context, name: str | None = None) -> Listing:
    """Each kind's recovery points (RDS snapshots in both regions, S3 copy runs, MySQL backups
    and their verifications, ...), newest first; each resource on its own."""
    found = Listing()
    for kind_name, resources in select(ctx, None, name).items():
        points = found.points.setdefault(kind_name, [])
        for resource in resources:
            try:
                points += KINDS[kind_name].points(ctx, [resource])
            except DrError as exc:
                found.failed[resource.name] = str(exc)
    return found


def verify(ctx: Context, name: str | None = None, backup: str | None = None,
           deep: int | str | None = None) -> dict:
    """Each kind's check of its copies against their sources (S3: the listings compared now, with
    `deep` also headers, metadata, tags and KMS key of a sample; MySQL: the newest backup restored
    into a scratch database and compared with its manifest, recorded as a run of kind "verify")."""
    sel = select(ctx, None, name)
    can = [k.name for k in KINDS.values() if k.verify_takes is not None]  # registry order
    takes = {option: [k.name for k in KINDS.values() if option in (k.verify_takes or ())]
             for option in ("backup", "deep")}
    if name is not None and not any(sel[k] for k in can):
        kind = next((k for k, rs in sel.items() if rs), None)
        raise UsageError(f"dr backup verify checks {' and '.join(can)} resources; "
                         f"{name} is {kind}", hint="dr backup list shows its copies and their age")
    if backup is not None and not any(sel[k] for k in takes["backup"]):
        raise UsageError(f"--backup {backup}: " + (
            f"{name} is not a {' or '.join(takes['backup'])} resource" if name
            else f"dr.yaml has no {' or '.join(takes['backup'])} resource"))
    if deep is not None and not any(sel[k] for k in takes["deep"]):
        kinds = " or ".join(takes["deep"])
        raise UsageError(f"--deep checks {kinds} copies; " + (f"{name} is not an {kinds} resource" if name
                                                              else f"dr.yaml has no {kinds} entries"))
    results: dict = {}
    for kind_name, resources in sel.items():
        if resources and kind_name in can:
            results.update(KINDS[kind_name].verify(ctx, resources, backup=backup, deep=deep))
    return results


@dataclass
class PruneOutcome:
    dry_run: bool
    tables: list[Table] = field(default_factory=list)
    decisions: dict[str, list] = field(default_factory=dict)  # kind name -> its plan_prune
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    record: RunRecord | None = None
    cleanup: list[Cleanup] = field(default_factory=list)

    def to_dict(self, now: datetime) -> dict:
        d = {"dry_run": self.dry_run, "cleanup": [c.to_dict() for c in self.cleanup],
             "deleted": self.deleted, "failed": self.failed}
        for table in self.tables:
            d[table.key] = table.data
            d.update(table.extra)
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def prune(ctx: Context, *, name: str | None = None, dry_run: bool = False) -> PruneOutcome:
    sel = select(ctx, None, name)
    now = ctx.clock.now()
    outcome = PruneOutcome(dry_run=dry_run)
    run_id = new_run_id("prune", now)
    # leftovers of interrupted runs: files, uploads, scratch/staging databases, stuck records
    outcome.cleanup = sweep(ctx, _leftover_resources(sel), servers=("server", "verify"),
                            dry_run=dry_run, scan_records=True, by=run_id)
    if dry_run:
        _prune_kinds(ctx, sel, now, outcome, None)
        return outcome
    rec = Recorder(ctx.store, ctx.clock, "prune", ctx.command, run_id=run_id, started=now,
                   summary={"cleanup": [c.to_dict() for c in outcome.cleanup]}
                   if outcome.cleanup else None)
    with RunLease(ctx.store, run_id, "prune", ctx.clock), rec:
        _prune_kinds(ctx, sel, now, outcome, rec)
        rec.finish(error="; ".join(f"{k}: {v}" for k, v in outcome.failed.items()) or None)
    outcome.record = rec.record
    return outcome


def _prune_kinds(ctx: Context, sel: Selection, now: datetime, outcome: PruneOutcome,
                 rec: Recorder | None) -> None:
    for kind in KINDS.values():
        part = kind.prune(ctx, _resources(sel, kind), now, outcome.dry_run)
        if part is None:
            continue
        outcome.tables.append(part.table)
        outcome.decisions[kind.name] = part.decisions
        outcome.deleted += part.deleted
        outcome.failed.update(part.failed)
        if rec is not None:
            rec.record.plan += part.planned
            rec.save()


def _resources(sel: Selection, kind: BackupKind) -> Sequence:
    return sel.get(kind.name, ())
