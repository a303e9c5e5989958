"""What a scheduled job runs: a backup of one resource, or a scheduled verification; and what
the daemon learns from it (`JobOutcome`). The daemon (daemon.py) runs these in threads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dr.context import Context
from dr.report.compute import copy_events
from dr.report.model import CopyEvent
from dr.scheduler import jobs as J


@dataclass
class JobOutcome:
    status: str  # completed | failed | interrupted | skipped
    run_id: str | None = None
    error: str | None = None
    copies: list[CopyEvent] = field(default_factory=list)


JobRunner = Callable[[Context, J.Job, datetime], JobOutcome]


def run_backup_job(ctx: Context, job: J.Job, slot: datetime) -> JobOutcome:
    """THE job: one backup pass of one resource, `dr backup run --name <job>`."""
    from dr.backup.service import run_backup

    outcome = run_backup(ctx, name=job.name)
    record = outcome.record
    if record is None:
        return JobOutcome("skipped", error=f"this version of dr does not back up {job.kind} "
                                           "resources yet; nothing was run")
    error = record.error or next((r.error for r in record.results if r.error), None)
    status = record.status if record.status in ("completed", "failed", "interrupted") else "failed"
    return JobOutcome(status, record.run_id, error, copy_events(record, ctx.config.regions.dr))


def run_verify_job(ctx: Context, job: J.Job, slot: datetime) -> JobOutcome:
    """A scheduled verification: the newest backup of `job.target`, if it was not verified yet,
    restored into a scratch database on the verify server, compared and dropped (one run of
    kind "verify"; the outcome is recorded per backup for `dr backup list`, readiness, report)."""
    from dr.backup.kinds import KINDS

    found = next(((kind, r) for kind in KINDS.values() if kind.verifies_backups
                  for r in kind.resources(ctx.config) if r.name == job.target), None)
    if found is None:
        return JobOutcome("skipped", error=f"no resource {job.target} whose backups are verified in the config")
    kind, resource = found
    record = kind.verify_newest(ctx, resource)
    if record is None:
        return JobOutcome("skipped", error=f"nothing to verify: the newest backup of {resource.name} "
                                           "has been verified already (or there is none yet)")
    error = record.error or next((r.error for r in record.results if r.error), None)
    status = record.status if record.status in ("completed", "failed", "interrupted") else "failed"
    return JobOutcome(status, record.run_id, error)


def run_job(ctx: Context, job: J.Job, slot: datetime) -> JobOutcome:
    """What the scheduler runs for `job`: a backup, or a scheduled verification."""
    if job.verifies:
        return run_verify_job(ctx, job, slot)
    return run_backup_job(ctx, job, slot)
