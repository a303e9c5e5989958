"""The slot-lock protocol: exactly one scheduler runs each slot of each job.

A job's slot is claimed by creating `locks/schedule/<job>/<slot>.json` with `create_json` (an S3
conditional write): whoever creates it runs the slot. The document then carries the run's
heartbeat while it runs (a lock whose heartbeat is older than `stale_after` belongs to a dead
scheduler), and its outcome when it ends. The slot logic itself (keys, which slot is due, whether
a previous run still blocks) is pure, in dr.scheduler.jobs; this module does the store I/O.

The runbook lease (dr.runbook.lease) is the other lock protocol on the same store primitive;
different semantics (one run, liveness by lease expiry), same rule: create wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from dr.clock import Clock, iso, parse_iso_or_none
from dr.scheduler import jobs as J
from dr.scheduler.spool import StoreUnavailable
from dr.state.base import StateStore
from dr.state.recorder import Recorder

log = logging.getLogger("dr.scheduler")
LOCK_FORMAT = "dr-schedule-lock/1"


@dataclass
class SlotClaim:
    """What trying to claim a slot gave."""

    outcome: str  # "won" | "taken" (by another scheduler) | "busy" (its previous slot still runs)
                  # | "unreachable" (the store)
    key: str
    doc: dict
    slot: datetime | None = None  # taken: the newest claimed slot; busy: the slot still running
    error: str | None = None      # unreachable: why
    local: bool = False           # claimed while the store was unreachable (the spool has the lock)
    checked: bool = False         # the store was asked whether the slot is free (won or lost a create)


@dataclass
class SlotHistory:
    """What the lock documents say about a job, for a scheduler that starts."""

    last_claimed: datetime | None = None
    last_success: datetime | None = None
    last_duration: float | None = None


class SlotLocks:
    def __init__(self, store: StateStore, owner: str, *, stale_after: timedelta, tz: tzinfo | None = None):
        self.store, self.owner, self.stale_after, self.tz = store, owner, stale_after, tz

    def history(self, job: J.Job) -> SlotHistory:
        """The last claimed slot and the last success, from the job's lock documents."""
        keys = self.store.list_keys(J.lock_prefix(job.name))
        found = SlotHistory()
        latest = J.latest_slot(keys)
        if latest:
            found.last_claimed = latest[0]
        for key in sorted(keys, reverse=True)[:10]:
            doc = self.get(key)
            if doc and doc.get("status") == "completed":
                found.last_success = parse_iso_or_none(doc.get("finished_at"))
                found.last_duration = doc.get("duration_seconds")
                break
        return found

    def claim(self, job: J.Job, due: J.Due, now: datetime, last_claimed: datetime | None, *,
              claim_locally: bool) -> SlotClaim:
        """Try to win `due.slot`. With `claim_locally`, an unreachable store does not stop the run:
        the lock is kept in the spool (flushed later; a backup is idempotent per slot)."""
        key = J.lock_key(job.name, due.slot)
        doc = {"format": LOCK_FORMAT, "job": job.name, "kind": job.kind, "slot": iso(due.slot),
               "owner": self.owner, "acquired_at": iso(now), "heartbeat": iso(now),
               "status": "running", "missed_slots": 0}
        try:
            latest = J.latest_slot(self.store.list_keys(J.lock_prefix(job.name)))
            if latest and latest[0] >= due.slot:
                return SlotClaim("taken", key, doc, slot=latest[0])
            if latest and J.lock_blocks(self.get(latest[1]), now, self.stale_after):
                return SlotClaim("busy", key, doc, slot=latest[0])
            doc["missed_slots"] = J.missed_slots(job.schedule, latest[0] if latest else last_claimed,
                                                 due.slot, self.tz)
            won = self.store.create_json(key, doc)
        except StoreUnavailable as exc:
            if not claim_locally:
                return SlotClaim("unreachable", key, doc, error=str(exc))
            doc["degraded"] = "claimed locally: the state store was unreachable"
            create_local = getattr(self.store, "create_local", None)
            won = create_local(key, doc) if create_local else True
            return SlotClaim("won" if won else "taken", key, doc, slot=due.slot, local=True, checked=True)
        return SlotClaim("won" if won else "taken", key, doc, slot=due.slot, checked=True)

    def beat(self, key: str, doc: dict, now: datetime) -> None:
        self.put(key, {**doc, "heartbeat": iso(now)})

    def finish(self, key: str, doc: dict, *, status: str, finished: datetime, run_id: str | None,
               error: str | None, seconds: float) -> None:
        """The run's outcome into its lock (only the first line of an error)."""
        doc.update(status=status, finished_at=iso(finished), heartbeat=iso(finished), run_id=run_id,
                   error=error.splitlines()[0] if error else None, duration_seconds=round(seconds, 3))
        self.put(key, doc)

    def abandon(self, key: str, doc: dict, now: datetime) -> None:
        """A run still going when the scheduler stopped: a rerun continues it."""
        self.put(key, {**doc, "status": "interrupted", "heartbeat": iso(now),
                       "error": "the scheduler stopped before this run finished"})

    def prune(self, jobs: list[J.Job], now: datetime, keep: timedelta) -> None:
        """Locks older than `keep`, but never a job's newest (it says which slot ran last)."""
        for job in jobs:
            keys = self.store.list_keys(J.lock_prefix(job.name))
            for key in J.locks_to_prune(keys, now, keep):
                self.store.delete(key)

    def get(self, key: str) -> dict | None:
        try:
            return self.store.get_json(key)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot read %s: %s", key, exc)
            return None

    def put(self, key: str, doc: dict) -> None:
        try:
            self.store.put_json(key, doc)
        except Exception as exc:  # noqa: BLE001 - the spooling store keeps it; a plain one logs
            log.warning("cannot write %s: %s", key, exc)


def record_crash(store: StateStore, clock: Clock, job: J.Job, *, started: datetime, slot: datetime,
                 error: str) -> str | None:
    """A run record for a job that raised before writing its own, so reports count it; its id,
    or None if it could not be written."""
    kind = "backup" if job.makes_copies else "verify"
    try:
        with Recorder(store, clock, kind, f"dr schedule (job {job.name}, slot {iso(slot)})",
                      started=started) as rec:
            with rec.resource(job.target, job.record_kind or job.kind, started=started) as r:
                r.fail(error)
            rec.finish(error=error)
    except Exception as exc:  # noqa: BLE001
        log.error("%s: could not record the failure: %s", job.name, exc)
        return None
    return rec.run_id
