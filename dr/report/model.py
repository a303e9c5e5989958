"""The report's data: what `compute_report` returns and every renderer reads. Plain, frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dr.config import format_duration

STATUS_OK, STATUS_BREACH, STATUS_NO_COPY, STATUS_UNMEASURED = "ok", "breach", "no-copy", "unmeasured"


@dataclass(frozen=True, slots=True)
class CopyEvent:
    """A successful copy in the DR region: data as of `point_time`, usable from `available_at`."""

    resource: str
    point_time: datetime
    available_at: datetime
    point_id: str
    region: str
    run_id: str


@dataclass(frozen=True)
class Failure:
    resource: str  # "" when the run failed before reaching any resource
    at: datetime
    run_id: str
    error: str


@dataclass(frozen=True)
class ResourceReport:
    name: str
    kind: str  # rds | s3 | mysql | mongo
    schedule: str  # as written in dr.yaml ("" for mongo)
    objective: timedelta
    status: str  # ok | breach | no-copy | unmeasured
    newest: CopyEvent | None
    rpo: timedelta | None  # now - newest.point_time: the RPO right now
    worst_rpo: timedelta | None  # the largest RPO at any moment in the period
    worst_rpo_at: datetime | None
    copies: int  # successful copies completed in the period
    failures: int  # failed runs in the period
    recent_failures: tuple[Failure, ...]  # newest first, at most a few
    series: tuple[tuple[datetime, float | None], ...]  # (interval end, worst RPO seconds in it)
    covered_from: datetime | None = None  # first copy, when the period starts before any copy

    @property
    def over_objective(self) -> bool:
        return self.status in (STATUS_BREACH, STATUS_NO_COPY)


@dataclass(frozen=True)
class DrillStep:
    name: str
    kind: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


@dataclass(frozen=True)
class DrillReport:
    run_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    met: bool
    rto: timedelta | None            # run start -> healthy in the DR region
    rto_objective: timedelta
    rpo: timedelta | None
    rpo_objective: timedelta
    recovery_point_time: datetime | None
    steps: tuple[DrillStep, ...]
    error: str | None = None
    rto_traffic: timedelta | None = None  # run start -> traffic moved (DNS in sync + the old TTL)
    rpo_status: str = "measured"          # measured | not applicable | unknown
    rpo_note: str = ""


@dataclass(frozen=True)
class Verification:
    """One verification of one MySQL backup: restored into a scratch database and compared."""

    resource: str
    backup_id: str
    backup_created: datetime | None  # the backup's point time
    status: str  # verified | failed
    at: datetime  # when the verification finished
    run_id: str
    restore_seconds: float | None  # the restore alone (the measured RTO of that database)
    verify_seconds: float | None  # the whole verification: fetch, decrypt, restore, compare, drop
    error: str | None = None


@dataclass(frozen=True)
class VerificationReport:
    """Whether a MySQL resource's backups are proven restorable."""

    resource: str
    schedule: str  # mysql[].verify.every as written, "" when only `dr backup verify` verifies
    newest_backup: str | None  # the newest copy's backup id
    newest_status: str  # verified | failed | unverified | no-backup
    newest_verified: Verification | None  # the newest backup that verified (by point time)
    verified_rpo: timedelta | None  # now - newest_verified's point time: the RPO if only proven copies count
    last: Verification | None  # the latest verification (any outcome) in the period
    verifications: int  # in the period
    failed: int  # in the period


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    period_start: datetime
    days: int
    rpo_objective: timedelta
    rto_objective: timedelta
    primary_region: str
    dr_region: str
    config_source: str
    resources: tuple[ResourceReport, ...]
    drills: tuple[DrillReport, ...]  # newest first
    run_failures: tuple[Failure, ...]  # failed runs that reached no resource
    findings: tuple[str, ...]  # every reason the report is over objective, in words
    notes: tuple[str, ...]  # advice that is not a breach (no drill yet, config warnings)
    warnings: tuple[str, ...] = field(default=())  # skipped malformed records, from the loader
    records_read: int = 0
    verification: tuple[VerificationReport, ...] = ()  # one per mysql resource

    @property
    def breach(self) -> bool:
        return bool(self.findings)

    @property
    def last_drill(self) -> DrillReport | None:
        return self.drills[0] if self.drills else None


def human(td: timedelta | None) -> str:
    """'1h5m' (whole minutes above an hour), '<never>' for None."""
    if td is None:
        return "<never>"
    seconds = int(td.total_seconds())
    if seconds >= 3600:
        seconds -= seconds % 60
    return format_duration(timedelta(seconds=seconds))


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 copy', '2 copies', '0 copies'."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def period(days: int) -> str:
    """'the last day', 'the last 30 days'."""
    return "the last day" if days == 1 else f"the last {days} days"


def short(td: timedelta | None) -> str:
    """A step's duration: sub-second ones as '0.3s' (not '0s'), else as `human`."""
    if td is not None and td < timedelta(seconds=10) and td.total_seconds() != int(td.total_seconds()):
        return f"{td.total_seconds():.1f}s"
    return human(td)


def stamp(dt: datetime | None) -> str:
    from dr.render import human_time

    return human_time(dt)
