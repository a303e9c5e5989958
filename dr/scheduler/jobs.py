"""What the scheduler runs and when: jobs, slots, catch-up, jitter, lock keys. All pure.

A *job* is one configured resource with a schedule (`run_backup(ctx, name=job.name)` is what it
runs), or the scheduled verification of a MySQL resource's backups (`mysql[].verify.every`: job
`<name>.verify`, kind `mysql-verify`, which restores the newest backup not verified yet into a
scratch database, compares and drops it). Its *slots* are the fire times of its schedule; the slot containing `now` is the one that
is due. After downtime the scheduler runs the current slot once, whatever number of slots were
missed: a backup copies the newest state, so running the older slots would only cost money.

The optional timezone changes how the schedule is read (cron fields and `every 1d` boundaries
are local wall time); slots are always stored and compared as UTC instants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from dr.config import Config, Schedule
from dr.clock import parse_iso_or_none

UTC = timezone.utc
LOCK_PREFIX = "locks/schedule/"
SLOT_FORMAT = "%Y%m%dT%H%M%SZ"  # ISO 8601 basic format: sortable and a valid state-key segment
MAX_JITTER_SHARE = 0.5  # jitter never delays a run by more than half its interval
_MISSED_COUNT_CAP = 10_000


VERIFY_SUFFIX = ".verify"  # resource names have no dots: `<name>.verify` never collides
VERIFY_KIND_SUFFIX = "-verify"  # a verification job's kind: `<backup kind>-verify` (mysql-verify)


@dataclass(frozen=True)
class Job:
    """One scheduled job: back up the resource `name` (of a backup kind: rds, s3, mysql, ...), or
    verify the backups of the resource `resource` (kind `<backup kind>-verify`, named
    `<resource>.verify`) for the kinds whose backups are verified."""

    name: str
    kind: str
    schedule: Schedule
    record_kind: str = ""  # the ResourceResult kind its runs record (rds-instance, s3, ...)
    resource: str = ""  # the resource it works on (default: its name)

    @property
    def makes_copies(self) -> bool:
        """Whether its runs make recovery points (and so count for the RPO)."""
        return not self.verifies

    @property
    def verifies(self) -> bool:
        """A scheduled verification of `target`'s backups, not a backup."""
        return self.kind.endswith(VERIFY_KIND_SUFFIX)

    @property
    def target(self) -> str:
        return self.resource or self.name


@dataclass(frozen=True)
class Due:
    """The slot a job should run now, when (slot + jitter), and how many slots were skipped."""

    job: str
    slot: datetime
    run_at: datetime
    missed: int  # slots between the last claimed one and this one, coalesced into this run


def jobs_from_config(config: Config) -> list[Job]:
    """Every resource of every backup kind (dr.backup.kinds), each on its schedule, then the
    scheduled verifications of the kinds whose backups are verified (mongo is watched, not run)."""
    from dr.backup.kinds import KINDS

    jobs = [Job(r.name, kind.name, r.schedule, kind.record_kind(r))
            for kind in KINDS.values() for r in kind.resources(config)]
    jobs += [Job(f"{r.name}{VERIFY_SUFFIX}", f"{kind.name}{VERIFY_KIND_SUFFIX}", r.verify_every, kind.record_kind(r), r.name)
             for kind in KINDS.values() if kind.verifies_backups for r in kind.resources(config)
             if r.verify is not None and r.verify_every is not None]
    return jobs


# --- slots ----------------------------------------------------------------------------------------


def slot_start(schedule: Schedule, now: datetime, tz: tzinfo | None = None) -> datetime:
    """The slot containing `now` (aware UTC), reading the schedule in `tz` (default UTC)."""
    if tz is None or tz is UTC:
        return schedule.slot_start(now)
    wall = now.astimezone(tz).replace(tzinfo=None)
    local = schedule.slot_start(wall).replace(tzinfo=None)  # naive in, naive-as-UTC out
    return local.replace(tzinfo=tz).astimezone(UTC)


def next_slot(schedule: Schedule, after: datetime, tz: tzinfo | None = None) -> datetime:
    """The first slot strictly after `after` (aware UTC)."""
    if tz is None or tz is UTC:
        return schedule.next_after(after)
    wall = after.astimezone(tz).replace(tzinfo=None)
    local = schedule.next_after(wall).replace(tzinfo=None)
    result = local.replace(tzinfo=tz).astimezone(UTC)
    if result <= after:  # a repeated wall-clock hour (DST ends): step past it
        return next_slot(schedule, after + timedelta(hours=1), tz)
    return result


def missed_slots(schedule: Schedule, last: datetime | None, slot: datetime,
                 tz: tzinfo | None = None) -> int:
    """How many slots lie strictly between `last` and `slot` (0 if none or `last` unknown)."""
    if last is None or last >= slot:
        return 0
    if schedule.interval is not None and (tz is None or tz is UTC):
        return max(0, int((slot - last) / schedule.interval) - 1)
    count, t = 0, next_slot(schedule, last, tz)
    while t < slot and count < _MISSED_COUNT_CAP:
        count += 1
        t = next_slot(schedule, t, tz)
    return count


def jitter_for(job: str, slot: datetime, max_jitter: timedelta, schedule: Schedule) -> timedelta:
    """A delay in [0, max_jitter), the same for a (job, slot) in every process, capped at half
    the schedule's interval so a jittered run never slides into the next slot."""
    limit = min(max_jitter, schedule.nominal_interval() * MAX_JITTER_SHARE)
    if limit <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(f"{job}|{format_slot(slot)}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=int(limit.total_seconds() * fraction))


def due(job: Job, now: datetime, last_claimed: datetime | None, *, tz: tzinfo | None = None,
        max_jitter: timedelta = timedelta(0)) -> Due | None:
    """The run this job owes now, or None if its current slot is already claimed.

    One run for the current slot, however many slots passed since `last_claimed` (catch-up).
    The run is due at slot start + jitter; a caller before `run_at` waits.
    """
    slot = slot_start(job.schedule, now, tz)
    if last_claimed is not None and last_claimed >= slot:
        return None
    run_at = slot + jitter_for(job.name, slot, max_jitter, job.schedule)
    return Due(job=job.name, slot=slot, run_at=run_at,
               missed=missed_slots(job.schedule, last_claimed, slot, tz))


def next_wakeup(job: Job, now: datetime, last_claimed: datetime | None, *, tz: tzinfo | None = None,
                max_jitter: timedelta = timedelta(0)) -> datetime:
    """When this job next needs attention: its pending run_at, or the next slot's run_at."""
    pending = due(job, now, last_claimed, tz=tz, max_jitter=max_jitter)
    if pending is not None:
        return pending.run_at
    upcoming = next_slot(job.schedule, now, tz)
    return upcoming + jitter_for(job.name, upcoming, max_jitter, job.schedule)


# --- locks ----------------------------------------------------------------------------------------


def format_slot(slot: datetime) -> str:
    return slot.astimezone(UTC).strftime(SLOT_FORMAT)


def parse_slot(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def lock_prefix(job: str) -> str:
    return f"{LOCK_PREFIX}{job}/"


def lock_key(job: str, slot: datetime) -> str:
    """`locks/schedule/<job>/<slot>.json`: exactly one scheduler creates it (create_json)."""
    return f"{lock_prefix(job)}{format_slot(slot)}.json"


def slot_of_key(key: str) -> datetime | None:
    name = key.rsplit("/", 1)[-1]
    return parse_slot(name[:-len(".json")]) if name.endswith(".json") else None


def latest_slot(keys: list[str]) -> tuple[datetime, str] | None:
    """The newest slot among lock keys (and its key); foreign keys are ignored."""
    slots = [(s, k) for k in keys if (s := slot_of_key(k)) is not None]
    return max(slots) if slots else None


def lock_blocks(previous: dict | None, now: datetime, stale_after: timedelta) -> bool:
    """Whether the previous slot's lock means the job is still running somewhere (no overlap).

    A lock says `running` with a `heartbeat` its owner refreshes; one whose heartbeat is older
    than `stale_after` belongs to a scheduler that died, and does not block.
    """
    if not previous or previous.get("status") != "running":
        return False
    beat = parse_iso_or_none(previous.get("heartbeat")) or parse_iso_or_none(previous.get("acquired_at"))
    return beat is not None and now - beat < stale_after


def locks_to_prune(keys: list[str], now: datetime, keep: timedelta) -> list[str]:
    """Lock keys older than `keep`, never the newest one (it says which slot ran last)."""
    newest = latest_slot(keys)
    return [k for k in keys if (s := slot_of_key(k)) is not None and now - s > keep
            and (newest is None or k != newest[1])]
