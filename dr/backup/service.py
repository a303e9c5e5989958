"""The backup services behind `dr backup run|list|prune`: plan, execute, record."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime

import dr
from dr.aws import rds as rds_api
from dr.backup import rds, s3
from dr.backup.catalog import RecoveryPoint, list_rds_points
from dr.backup.cleanup import Cleanup, sweep
from dr.backup.leases import RunLease
from dr.backup.prune import PruneDecision, plan_prune
from dr.backup.rds import RdsBackupItem, RdsExecutor
from dr.backup.s3 import S3PlanItem
from dr.config import MysqlResource, RdsResource, S3Resource
from dr.context import Context
from dr.errors import DrError, Interrupted, OperationFailed, UsageError
from dr.aws.kms import DrKey, resolve_dr_key
from dr.clock import iso, parse_iso
from dr.state.records import ResourceResult, RunRecord, StepRecord, new_run_id

log = logging.getLogger(__name__)
KINDS = ("rds", "s3", "mysql")


@dataclass(frozen=True)
class Selection:
    rds: tuple[RdsResource, ...]
    s3: tuple[S3Resource, ...]
    mysql: tuple[MysqlResource, ...] = ()


def select(ctx: Context, only: str | None, name: str | None) -> Selection:
    """The resources a command works on: all, one kind (`--only`), or one by name (`--name`)."""
    config = ctx.config
    if only is not None and only not in KINDS:
        raise UsageError(f"--only {only}: this version backs up {', '.join(KINDS)}")
    if name is not None:
        kind = config.resource_names().get(name)
        if kind is None:
            known = ", ".join(config.resource_names()) or "none are configured"
            raise UsageError(f"no resource named {name!r} in {config.source} (known: {known})")
        if only is not None and only != kind:
            raise UsageError(f"--name {name} is an {kind} resource, but --only says {only}")
        only = kind
    if only is None and name is None and not (config.rds or config.s3 or config.mysql):
        return Selection((), ())
    rds = tuple(r for r in config.rds if name in (None, r.name)) if only in (None, "rds") else ()
    s3 = tuple(r for r in config.s3 if name in (None, r.name)) if only in (None, "s3") else ()
    my = tuple(r for r in config.mysql if name in (None, r.name)) if only in (None, "mysql") else ()
    return Selection(rds, s3, my)


def select_rds(ctx: Context, only: str | None, name: str | None) -> list[RdsResource]:
    return list(select(ctx, only, name).rds)


@dataclass
class BackupOutcome:
    dry_run: bool
    plan: list[RdsBackupItem]
    s3_plan: list[S3PlanItem] = field(default_factory=list)
    mysql_plan: list[dict] = field(default_factory=list)
    record: RunRecord | None = None
    cleanup: list[Cleanup] = field(default_factory=list)

    def to_dict(self) -> dict:
        d: dict = {"dry_run": self.dry_run,
                   "plan": [i.to_dict() for i in self.plan] + [i.to_dict() for i in self.s3_plan]
                   + self.mysql_plan, "cleanup": [c.to_dict() for c in self.cleanup]}
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def run_backup(ctx: Context, *, only: str | None = None, name: str | None = None,
               dry_run: bool = False) -> BackupOutcome:
    sel = select(ctx, only, name)
    if not sel.rds and not sel.s3 and not sel.mysql:
        return BackupOutcome(dry_run=dry_run, plan=[])
    config, now = ctx.config, ctx.clock.now()
    needs_key = sel.rds or sel.s3 or any(
        m.key_file is None or m.destination.startswith("s3://") for m in sel.mysql)
    dr_key, key_error = _dr_key(ctx) if needs_key else (None, None)
    observations = [rds.observe(ctx.aws, config, r, now) for r in sel.rds]
    plan = rds.plan_rds_backup(observations, config, dr_key, key_error)
    s3_plan = [s3.plan_item(ctx.aws, config, r, key_error, count=dry_run) for r in sel.s3]
    mysql_plan = [_mysql_plan_item(r, now, key_error) for r in sel.mysql]
    if dry_run:
        return BackupOutcome(dry_run=True, plan=plan, s3_plan=s3_plan, mysql_plan=mysql_plan)

    run_id = new_run_id("backup", now)
    cleanup = sweep(ctx, sel.mysql, servers=("server",), by=run_id)
    record = RunRecord(run_id=run_id, kind="backup", status="running",
                       started_at=iso(now), command=ctx.command,
                       plan=[i.to_dict() for i in plan] + [i.to_dict() for i in s3_plan]
                       + mysql_plan, dr_version=dr.__version__, error=key_error,
                       summary={"cleanup": [c.to_dict() for c in cleanup]} if cleanup else {})
    with RunLease(ctx.store, run_id, "backup", ctx.clock) as lease:
        _run_all(ctx, sel, record, plan, s3_plan, mysql_plan, dr_key, now, lease)
    return BackupOutcome(dry_run=False, plan=plan, s3_plan=s3_plan, mysql_plan=mysql_plan,
                         record=record, cleanup=cleanup)


def _run_all(ctx: Context, sel: Selection, record: RunRecord, plan, s3_plan, mysql_plan,
             dr_key: DrKey | None, now: datetime, lease: RunLease) -> None:
    config = ctx.config
    runner = _Runner(ctx, record)
    runner.save()
    by_name = {r.name: r for r in sel.rds}
    runnable = []
    for item in plan:
        result = runner.start_result(item.name, item.kind.record_kind, item.blocked)
        if not item.blocked:
            runnable.append((item, by_name[item.name], result))
    if runnable:
        executor = RdsExecutor(ctx.aws, config, ctx.clock, dr_key, runner.cancel, runner.save)
        runner.run_all(executor, runnable)
    s3_by_name = {r.name: r for r in sel.s3}
    for item in s3_plan:
        result = runner.start_result(item.name, "s3", item.blocked)
        if not item.blocked:
            runner.run_s3(s3_by_name[item.name], result, dr_key)
    for resource, item in zip(sel.mysql, mysql_plan):
        result = runner.start_result(resource.name, "mysql", item["blocked"])
        if not item["blocked"]:
            runner.run_mysql(resource, result, dr_key, now, lease)
    runner.finish()


def _mysql_plan_item(resource: MysqlResource, now: datetime, key_error: str | None) -> dict:
    from dr.backup.mysql import backup_id

    uses_kms = resource.key_file is None
    return {"name": resource.name, "kind": "mysql", "source": resource.server.host,
            "databases": list(resource.databases), "destination": resource.destination,
            "backup_id": backup_id(resource.name, resource.schedule.slot_start(now)),
            "actions": [f"dump {', '.join(resource.databases)} from {resource.server.host}:"
                        f"{resource.server.port} (one consistent snapshot), compress (zstd), "
                        f"encrypt ({'KMS data key' if uses_kms else 'local key file'}), stream to "
                        f"{resource.destination}"],
            "blocked": key_error if (key_error and uses_kms) else None}


def _dr_key(ctx: Context) -> tuple[DrKey | None, str | None]:
    try:
        return resolve_dr_key(ctx.aws, ctx.config.kms.dr_key, ctx.config.regions.dr), None
    except DrError as exc:
        return None, str(exc)


class _Runner:
    """Runs items, saves the record at every transition, turns Ctrl-C into an interrupted record."""

    def __init__(self, ctx: Context, record: RunRecord):
        self.ctx, self.record = ctx, record
        self.cancel = threading.Event()
        self._lock = threading.Lock()
        self._runs = ctx.runs

    def save(self) -> None:
        with self._lock:
            self._runs.save(self.record)

    def start_result(self, name: str, kind: str, blocked: str | None) -> ResourceResult:
        now = iso(self.ctx.clock.now())
        result = ResourceResult(name=name, kind=kind, status="running", started_at=now)
        if blocked:
            result.status, result.error, result.finished_at = "failed", blocked, now
        self.record.results.append(result)
        return result

    def run_all(self, executor: RdsExecutor, runnable: list) -> None:
        pool = ThreadPoolExecutor(max_workers=min(4, len(runnable)), thread_name_prefix="dr-rds")
        futures = [pool.submit(self._one, executor, *job) for job in runnable]
        try:
            for future in as_completed(futures):
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._interrupted()
        pool.shutdown(wait=True)

    def _interrupted(self) -> None:
        for result in self.record.results:
            if result.status == "running":
                result.status, result.finished_at = "interrupted", iso(self.ctx.clock.now())
        self.record.status = "interrupted"
        self.record.error = "interrupted by the user (Ctrl-C)"
        self.record.finished_at = iso(self.ctx.clock.now())
        self.save()
        raise Interrupted(
            f"interrupted; run {self.record.run_id} recorded where it stopped",
            hint="run the same `dr backup run` again: it reuses this slot's snapshots, takes no "
                 "second one, and copies only the objects still missing") from None

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

    def run_s3(self, resource: S3Resource, result: ResourceResult, dr_key: DrKey) -> None:
        sync = s3.S3Sync(self.ctx.aws, self.ctx.config, resource, dr_key.arn, self.ctx.clock,
                         self.cancel, self.ctx.store)
        step = StepRecord(name="copy", status="running", started_at=iso(self.ctx.clock.now()),
                          detail=f"s3://{resource.source}/{resource.prefix} -> "
                                 f"s3://{resource.destination}/{resource.prefix}")
        result.steps.append(step)
        self.save()
        try:
            stats = sync.run()
        except Interrupted:
            step.status, step.finished_at = "interrupted", iso(self.ctx.clock.now())
            result.summary = sync.stats.summary()
            self._interrupted()
        except KeyboardInterrupt:
            self.cancel.set()
            self._interrupted()
        except DrError as exc:
            step.status, step.error = "failed", str(exc)
            result.status, result.error = "failed", str(exc)
            stats = sync.stats
        else:
            step.status = "completed" if not stats.failed else "failed"
            result.status = step.status
            if stats.failed:
                result.error = f"{len(stats.failed)} object(s) failed to copy; first: " \
                               f"{stats.failed[0]['key']}: {stats.failed[0]['reason']}"
        finished = self.ctx.clock.now()
        step.finished_at = result.finished_at = iso(finished)
        result.summary = stats.summary()
        result.summary["seconds"] = round(
            (finished - parse_iso(result.started_at)).total_seconds(), 3)
        if stats.newest_source_modified is not None:
            result.recovery_points.append({
                "id": self.record.run_id, "region": self.ctx.config.regions.dr, "role": "copy",
                "arn": f"arn:aws:s3:::{resource.destination}/{resource.prefix}",
                "created": iso(stats.newest_source_modified), "kms_key_id": dr_key.arn})
        s3.save_manifest(self.ctx.store, resource, self.record, result)
        self.save()

    def run_mysql(self, resource: MysqlResource, result: ResourceResult, dr_key: DrKey | None,
                  now: datetime, lease: RunLease | None = None) -> None:
        from dr.backup import mysql

        step = StepRecord(name="dump", status="running", started_at=iso(self.ctx.clock.now()),
                          detail=f"{resource.server.host} -> {resource.destination}")
        result.steps.append(step)
        self.save()
        try:
            summary = mysql.run_backup(self.ctx, resource, dr_key.arn if dr_key else None, now,
                                       lease=lease)
            step.status = result.status = "completed"
            result.summary = summary
            result.recovery_points.append({
                "id": summary["backup_id"], "role": "copy", "created": summary["created"],
                "region": self.ctx.config.regions.dr if resource.destination.startswith("s3://")
                else "local", "arn": resource.destination, "kms_key_id": summary.get("key_id")})
        except KeyboardInterrupt:
            step.status = "interrupted"
            self.cancel.set()
            self._interrupted()
        except DrError as exc:
            step.status, step.error = "failed", str(exc)
            result.status, result.error = "failed", str(exc)
            log.error("%s: %s", resource.name, exc)
        except Exception as exc:  # a bug or an unexpected library error: record it, go on
            log.exception("%s: unexpected error", resource.name)
            step.status, step.error = "failed", f"unexpected error: {exc!r}"
            result.status, result.error = "failed", f"unexpected error: {exc!r}"
        finally:
            step.finished_at = result.finished_at = iso(self.ctx.clock.now())
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


@dataclass
class Listing:
    """Every recovery point that could be listed, and what could not be (resource -> error):
    one failing source (RDS unreachable) never hides the others."""

    points: list[RecoveryPoint] = field(default_factory=list)
    s3_runs: list[dict] = field(default_factory=list)
    mysql_backups: list = field(default_factory=list)
    verifications: dict[str, dict] = field(default_factory=dict)  # mysql resource -> index
    failed: dict[str, str] = field(default_factory=dict)


def listing(ctx: Context, name: str | None = None) -> Listing:
    """RDS snapshots in both regions, S3 copy runs (from the state store), MySQL backups (from
    their destinations) and their verifications, newest first; each resource on its own."""
    from dr.backup import mysql, verified

    found = Listing()
    sel = select(ctx, None, name)
    for resource in sel.rds:
        try:
            found.points += list_rds_points(ctx.aws, ctx.config, [resource])
        except DrError as exc:
            found.failed[resource.name] = str(exc)
    for resource in sel.s3:
        try:
            found.s3_runs += s3.list_manifests(ctx.store, resource.name)
        except DrError as exc:
            found.failed[resource.name] = str(exc)
    for resource in sel.mysql:
        try:
            found.mysql_backups += mysql.list_backups(mysql.destination(ctx, resource, None),
                                                      resource)
            found.verifications[resource.name] = verified.load(ctx.store, resource.name)
        except DrError as exc:
            found.failed[resource.name] = str(exc)
    found.points.sort(key=lambda p: (p.created is not None, p.created, p.id), reverse=True)
    found.s3_runs.sort(key=lambda m: m["run_id"].split("-", 1)[-1], reverse=True)
    found.mysql_backups.sort(key=lambda b: b.created, reverse=True)
    return found


def verify(ctx: Context, name: str | None = None, backup: str | None = None,
           deep: int | str | None = None) -> dict:
    """S3: the listings compared now; with `deep` (a sample size or "all"), also the headers,
    metadata, tags and KMS key of that many objects in sync, on both sides. MySQL: the newest
    backup restored into a scratch database on the verify server and compared with its manifest
    (the restore time is the measured RTO of that database); recorded as a run of kind "verify"
    and per backup (dr.backup.verified)."""
    sel = select(ctx, None, name)
    if name is not None and not (sel.s3 or sel.mysql):
        raise UsageError(f"dr backup verify checks s3 and mysql resources; {name} is rds",
                         hint="dr backup list shows its copies and their age")
    if backup is not None and not sel.mysql:
        raise UsageError(f"--backup {backup}: {name} is not a mysql resource")
    if deep is not None and not sel.s3:
        raise UsageError("--deep checks S3 copies; " + (f"{name} is not an s3 resource" if name
                                                         else "dr.yaml has no s3 entries"))
    how = None
    if deep is not None and sel.s3:
        how = s3.Deep(resolve_dr_key(ctx.aws, ctx.config.kms.dr_key, ctx.config.regions.dr).arn,
                      None if deep == "all" else int(deep))
    results: dict = {r.name: s3.verify(ctx.aws, ctx.config, r, how) for r in sel.s3}
    if sel.mysql:
        record = verify_mysql(ctx, [(r, backup) for r in sel.mysql])
        for result in record.results:
            results[result.name] = MysqlVerify(result.summary)
    return results


def verify_mysql(ctx: Context, targets: list[tuple[MysqlResource, str | None]],
                 command: str | None = None) -> RunRecord:
    """Verify each (resource, backup id or None for the newest): restore into a scratch
    database on its verify server, compare, drop; one run of kind "verify" records it all
    (per resource: the backup verified, ok or the mismatches, the time the restore took and
    the time the whole verification took). Stale scratch databases are cleaned up first."""
    now = ctx.clock.now()
    run_id = new_run_id("verify", now)
    cleanup = sweep(ctx, [r for r, _ in targets], servers=("verify",), by=run_id)
    record = RunRecord(run_id=run_id, kind="verify", status="running", started_at=iso(now),
                       command=command or ctx.command, dr_version=dr.__version__,
                       summary={"cleanup": [c.to_dict() for c in cleanup]} if cleanup else {})
    with RunLease(ctx.store, run_id, "verify", ctx.clock) as lease:
        ctx.runs.save(record)
        try:
            for resource, backup in targets:
                result = ResourceResult(name=resource.name, kind="mysql", status="running",
                                        started_at=iso(ctx.clock.now()))
                record.results.append(result)
                ctx.runs.save(record)
                _verify_one(ctx, resource, backup, result, lease, run_id)
                ctx.runs.save(record)
        except BaseException as exc:
            record.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            record.error = str(exc) or type(exc).__name__
            for result in record.results:
                if result.status == "running":
                    result.status, result.finished_at = record.status, iso(ctx.clock.now())
            record.finished_at = iso(ctx.clock.now())
            ctx.runs.save(record)
            raise
        record.status = "completed" if all(r.status == "completed" for r in record.results) \
            else "failed"
        record.finished_at = iso(ctx.clock.now())
        ctx.runs.save(record)
    return record


def _verify_one(ctx: Context, resource: MysqlResource, backup: str | None,
                result: ResourceResult, lease: RunLease, run_id: str) -> None:
    """Verify one backup into `result`, and record its verdict per backup (dr.backup.verified):
    `verified`, `failed` (it does not restore or does not match), or none when the attempt
    could not judge the backup (no verify server, the server or the destination unreachable)."""
    from dr.backup import mysql, verified
    from dr.crypto.errors import IntegrityError
    from dr.mysql.errors import RestoreError, StreamFormatError

    t0 = time.monotonic()
    chosen = None
    verdict = None
    try:
        backups = mysql.list_backups(mysql.destination(ctx, resource, None), resource)
        chosen = backups[0] if backup is None and backups else \
            next((b for b in backups if b.id == backup), None)
        if chosen is None:
            raise OperationFailed(
                f"no backup {backup} of {resource.name}" if backup else
                f"no complete backup of {resource.name} in {resource.destination}",
                hint=f"run `dr backup run --name {resource.name}` first")
        found = mysql.verify(ctx, resource, chosen.id, lease=lease)
        verdict = verified.VERIFIED if found["ok"] else verified.FAILED
        result.status = "completed" if found["ok"] else "failed"
        if not found["ok"]:
            result.error = "; ".join(m for d in found["databases"].values() for m in d["mismatches"])
    except DrError as exc:
        found = {"ok": False, "error": str(exc)}
        result.status, result.error = "failed", str(exc)
        if chosen is not None and isinstance(exc, (IntegrityError, StreamFormatError, RestoreError)):
            verdict = verified.FAILED  # the backup itself did not decrypt, parse or restore
    except Exception as exc:  # a bug or an unexpected library error: record it, go on
        log.exception("%s: unexpected error while verifying", resource.name)
        found = {"ok": False, "error": f"unexpected error: {exc!r}"}
        result.status, result.error = "failed", found["error"]
    if chosen is not None:
        found.setdefault("backup_id", chosen.id)
        found.setdefault("created", iso(chosen.created))
    found["verify_seconds"] = round(time.monotonic() - t0, 3)
    found["verdict"] = verdict
    result.summary = found
    result.finished_at = iso(ctx.clock.now())
    if verdict is not None:
        try:
            verified.record(ctx.store, resource.name, chosen.id, {
                "status": verdict, "at": result.finished_at, "run_id": run_id,
                "created": iso(chosen.created), "restore_seconds": found.get("restore_seconds"),
                "verify_seconds": found["verify_seconds"],
                "error": None if verdict == verified.VERIFIED else result.error})
        except DrError as exc:
            log.error("%s: could not record the verification of %s: %s", resource.name,
                      chosen.id, exc)
            result.summary["record_error"] = str(exc)


def newest_unverified(ctx: Context, resource: MysqlResource):
    """The newest backup of `resource` with no verification outcome yet (None: all done)."""
    from dr.backup import mysql, verified

    done = verified.load(ctx.store, resource.name)
    for b in mysql.list_backups(mysql.destination(ctx, resource, None), resource):
        return None if b.id in done else b
    return None


@dataclass
class MysqlVerify:
    found: dict

    @property
    def ok(self) -> bool:
        return bool(self.found.get("ok"))

    def to_dict(self) -> dict:
        return self.found

    def lines(self) -> list[str]:
        if "error" in self.found:
            head = f"  backup {self.found['backup_id']}: " if self.found.get("backup_id") else "  "
            tail = (f"\n  recorded as {self.found['verdict']}" if self.found.get("verdict") else
                    "\n  the backup stays unverified: this attempt could not judge it"
                    if self.found.get("backup_id") else "")
            return [f"{head}{self.found['error']}{tail}"]
        out = [f"  backup {self.found['backup_id']} ({self.found['created']}) restored in "
               f"{self.found['restore_seconds']}s (the whole verification: "
               f"{self.found.get('verify_seconds')}s); recorded as "
               f"{self.found.get('verdict') or 'not judged'}"]
        for db, r in self.found["databases"].items():
            out.append(f"  {db}: {r['tables']} tables, {r['rows']} rows, "
                       + (r.get("checked", "row counts match") if r["ok"]
                          else "; ".join(r["mismatches"])))
        return out


def list_mysql_backups(ctx: Context, name: str | None = None) -> list:
    from dr.backup import mysql

    found = []
    for resource in select(ctx, None, name).mysql:
        found += mysql.list_backups(mysql.destination(ctx, resource, None), resource)
    return sorted(found, key=lambda b: b.created, reverse=True)


@dataclass
class PruneOutcome:
    dry_run: bool
    decisions: list[PruneDecision]
    unmanaged: list[RecoveryPoint]
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    mysql: list[dict] = field(default_factory=list)
    record: RunRecord | None = None
    cleanup: list[Cleanup] = field(default_factory=list)

    def to_dict(self, now: datetime) -> dict:
        d = {"dry_run": self.dry_run, "decisions": [x.to_dict(now) for x in self.decisions],
             "mysql": self.mysql, "cleanup": [c.to_dict() for c in self.cleanup],
             "unmanaged_untouched": [p.to_dict(now) for p in self.unmanaged],
             "deleted": self.deleted, "failed": self.failed}
        if self.record is not None:
            d["run"] = self.record.to_dict()
        return d


def prune(ctx: Context, *, name: str | None = None, dry_run: bool = False) -> PruneOutcome:
    resources = select_rds(ctx, None, name)
    now = ctx.clock.now()
    points = list_rds_points(ctx.aws, ctx.config, resources) if resources else []
    decisions = plan_prune(points, {r.name: r for r in resources}, now)
    outcome = PruneOutcome(dry_run=dry_run, decisions=decisions,
                           unmanaged=[p for p in points if not p.managed])
    run_id = new_run_id("prune", now)
    # leftovers of interrupted runs: files, uploads, scratch/staging databases, stuck records
    outcome.cleanup = sweep(ctx, select(ctx, None, name).mysql, servers=("server", "verify"),
                            dry_run=dry_run, scan_records=True, by=run_id)
    if dry_run:
        _prune_mysql(ctx, name, now, outcome)
        return outcome
    record = RunRecord(run_id=run_id, kind="prune", status="running",
                       started_at=iso(now), command=ctx.command,
                       plan=[d.to_dict(now) for d in decisions], dr_version=dr.__version__,
                       summary={"cleanup": [c.to_dict() for c in outcome.cleanup]}
                       if outcome.cleanup else {})
    with RunLease(ctx.store, run_id, "prune", ctx.clock):
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
        _prune_mysql(ctx, name, now, outcome)
        record.status = "failed" if outcome.failed else "completed"
        record.error = "; ".join(f"{k}: {v}" for k, v in outcome.failed.items()) or None
        record.finished_at = iso(ctx.clock.now())
        ctx.runs.save(record)
    outcome.record = record
    return outcome


def _prune_mysql(ctx: Context, name: str | None, now: datetime, outcome: PruneOutcome) -> None:
    """Retention over MySQL backups whose manifests authenticate (an edited `created` must not
    make prune delete the newest backup); a backup whose manifest does not is never deleted and
    never counted, and is reported. The manifest goes first, so a crash never leaves a listed
    backup without its data."""
    from dr.backup import mysql, verified
    from dr.backup.retention import Candidate, apply_policy

    for resource in select(ctx, None, name).mysql:
        dest = mysql.destination(ctx, resource, None)
        proven, problems = mysql.authenticated_backups(dest, resource,
                                                       mysql.key_provider(ctx, resource))
        backups = {b.id: b for b in proven}
        for problem in problems:
            log.warning("%s: %s", resource.name, problem)
            outcome.mysql.append({"resource": resource.name, "id": "?", "created": "",
                                  "action": "keep", "reasons": [
                                      f"not deleted: its manifest does not authenticate ({problem})"]})
        decisions = apply_policy([Candidate(b.id, b.created) for b in backups.values()],
                                 resource.retention, now)
        gone: list[str] = []
        for d in decisions:
            outcome.mysql.append({"resource": resource.name, "id": d.id, "created": iso(d.created),
                                  "action": "keep" if d.keep else "delete",
                                  "reasons": list(d.reasons)})
            if d.keep or outcome.dry_run:
                continue
            try:
                dest.delete(f"{resource.name}/{d.id}{mysql.MANIFEST_SUFFIX}")
                dest.delete(backups[d.id].data_name)
                outcome.deleted.append(dest.describe(backups[d.id].data_name))
                gone.append(d.id)
            except DrError as exc:
                outcome.failed[d.id] = str(exc)
        if gone:
            try:
                verified.forget(ctx.store, resource.name, gone)
            except DrError as exc:
                log.warning("%s: could not forget the verifications of pruned backups: %s",
                            resource.name, exc)


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
