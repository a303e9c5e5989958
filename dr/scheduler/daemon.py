"""`dr schedule`: run each configured job at its cadence, once per slot across every scheduler.

One loop on the Clock (dr.clock): each pass reaps finished jobs (lock document, metrics, alerts),
refreshes the heartbeat of running ones, and starts the jobs that are due (dr.scheduler.jobs).
Starting a job means winning its slot's lock in the state store (`create_json`, an S3 conditional
write): exactly one scheduler runs a slot. Jobs run in threads, at most `max_parallel` at once,
never two runs of the same job (here, or anywhere while its lock's heartbeat is fresh). Between
passes the loop sleeps until the next thing to do (at most `max_sleep`), so it costs nothing idle.
Periodic chores (flushing the spool, refreshing RPOs from run records, pruning old locks) run on
the `schedule` library's scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo

import schedule as schedule_lib

import dr
from dr.config import format_duration
from dr.context import Context
from dr.errors import Interrupted
from dr.report.compute import copy_events
from dr.report.load import newest_copies
from dr.report.model import CopyEvent
from dr.scheduler import jobs as J
from dr.scheduler.alerts import AlertBook, Condition, LogPublisher, Publisher, SnsPublisher
from dr.scheduler.clocks import StopAwareClock
from dr.scheduler.metrics import Metrics
from dr.scheduler.spool import StoreUnavailable
from dr.state.runs import ResourceResult, RunRecord, iso, new_run_id

log = logging.getLogger("dr.scheduler")
LOCK_FORMAT = "dr-schedule-lock/1"
STORE_ALERT_AFTER = timedelta(minutes=10)


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Options:
    tz: tzinfo | None = None
    jitter: timedelta = timedelta(0)
    max_parallel: int = 4
    heartbeat: timedelta = timedelta(minutes=1)
    stale_after: timedelta = timedelta(minutes=5)  # a running lock without heartbeat this long: dead
    busy_retry: timedelta = timedelta(seconds=30)
    degrade_after: timedelta | None = None  # store down this long past run_at: claim locally
    lock_retention: timedelta = timedelta(days=7)
    rpo_alert_grace: timedelta = timedelta(minutes=10)
    max_sleep: float = 30.0  # clock seconds between loop passes, at most
    grace: float = 120.0  # real seconds to let running jobs finish after SIGTERM/SIGINT
    owner: str = field(default_factory=default_owner)


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
    from dr.backup.kinds.mysql import newest_unverified, verify_mysql

    resource = next((r for r in ctx.config.mysql if r.name == job.target), None)
    if resource is None:
        return JobOutcome("skipped", error=f"no mysql resource {job.target} in the config")
    target = newest_unverified(ctx, resource)
    if target is None:
        return JobOutcome("skipped", error=f"nothing to verify: the newest backup of {resource.name} "
                                           "has been verified already (or there is none yet)")
    record = verify_mysql(ctx, [(resource, target.id)])
    error = record.error or next((r.error for r in record.results if r.error), None)
    status = record.status if record.status in ("completed", "failed", "interrupted") else "failed"
    return JobOutcome(status, record.run_id, error)


def run_job(ctx: Context, job: J.Job, slot: datetime) -> JobOutcome:
    """What the scheduler runs for `job`: a backup, or a scheduled verification."""
    if job.kind == J.VERIFY_KIND:
        return run_verify_job(ctx, job, slot)
    return run_backup_job(ctx, job, slot)


@dataclass
class _Running:
    due: J.Due
    key: str
    doc: dict
    started: datetime
    last_beat: datetime
    thread: threading.Thread | None = None
    outcome: JobOutcome | None = None
    finished: datetime | None = None


@dataclass
class _JobState:
    job: J.Job
    last_claimed: datetime | None = None
    running: _Running | None = None
    retry_at: datetime | None = None
    claim_failures: int = 0
    busy: bool = False  # its previous slot still runs elsewhere


class Scheduler:
    def __init__(self, ctx: Context, jobs: list[J.Job], *, options: Options = Options(),
                 runner: JobRunner = run_job, publisher: Publisher | None = None):
        self.ctx, self.options, self.runner = ctx, options, runner
        self.clock = ctx.clock
        self.store = ctx.store
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.job_ctx = replace(ctx, clock=StopAwareClock(ctx.clock, self.stop_event))
        self.states = {j.name: _JobState(j) for j in jobs}
        self.started_at = self.clock.now()
        self.metrics = Metrics(ctx.config.objectives.rpo, self.started_at)
        for j in jobs:
            self.metrics.job(j.name, j.kind)
        if publisher is None:
            topic = ctx.config.notify.sns_topic
            publisher = SnsPublisher(ctx.aws, topic) if topic else LogPublisher()
        self.alerts = AlertBook(self.store, publisher, self.clock.now, options.owner)
        self.events: deque[dict] = deque(maxlen=1000)  # what happened, for --once and tests
        self._tick_mono: float | None = None
        self._warned: set[str] = set()
        self._refresh_soon = False
        self._refreshed = 0.0
        self._store_alert_open = False
        self._next_flush = 0.0
        self._flush_backoff = 5.0
        self.chores = schedule_lib.Scheduler()
        self.chores.every(30).seconds.do(self._chore, self.flush)
        self.chores.every(5).minutes.do(self._chore, self.refresh_rpo)
        self.chores.every(6).hours.do(self._chore, self.prune_locks)

    # -- entry points ------------------------------------------------------------------------------

    def run_forever(self) -> int:
        """Until stop(); returns how many jobs were still running when the grace period ended."""
        self.load_state()
        self._chore(self.refresh_rpo)
        log.info("scheduler started: %s", ", ".join(f"{j.job.name} ({j.job.schedule})"
                                                      for j in self.states.values()) or "no jobs",
                 extra={"event": "scheduler-started", "owner": self.options.owner})
        while not self.stop_event.is_set():
            self.wake.clear()
            self.tick()
            self.chores.run_pending()
            if self._refresh_soon and time.monotonic() - self._refreshed >= 60:
                self._chore(self.refresh_rpo)  # another scheduler ran a slot: learn its copy
            self.clock.sleep(self._sleep_seconds(), self.wake)
        return self._drain()

    def run_once(self) -> int:
        """Run what is due now (waiting out jitter), then flush and return; for cron & co."""
        self.load_state()
        self.options = replace(self.options, degrade_after=self.options.degrade_after or timedelta(seconds=30))
        while not self.stop_event.is_set():
            self.wake.clear()
            self.tick()
            now = self.clock.now()
            # A job whose previous run still runs elsewhere is left to the next invocation.
            waiting = [s for s in self.states.values() if s.running or not s.busy and
                       J.due(s.job, now, s.last_claimed, tz=self.options.tz, max_jitter=self.options.jitter)]
            if not waiting:
                break
            self.clock.sleep(self._sleep_seconds(), self.wake)
        unfinished = self._drain()
        self._chore(self.refresh_rpo)
        self._chore(self.prune_locks)
        self.flush(force=True)
        return unfinished

    def stop(self) -> None:
        """Start no new job; running ones stop at their next wait (and record where they were)."""
        if not self.stop_event.is_set():
            log.warning("stopping: no new jobs; running jobs stop at their next step",
                        extra={"event": "stopping"})
        self.stop_event.set()
        self.wake.set()

    # -- one pass ----------------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock.now()
        self._tick_mono = time.monotonic()
        self.metrics.last_tick = now
        self._reap(now)
        self._heartbeat(now)
        if not self.stop_event.is_set():
            self._start_due(now)
        self.metrics.store_up = getattr(self.store, "up", True)
        pending = getattr(self.store, "pending", None)
        self.metrics.spooled = len(pending()) if pending else 0

    def load_state(self) -> None:
        """The last claimed slot of each job and its last success, from the lock documents."""
        for st in self.states.values():
            try:
                keys = self.store.list_keys(J.lock_prefix(st.job.name))
            except Exception as exc:  # noqa: BLE001 - unreachable: learn it at the first claim
                log.warning("cannot read the locks of %s yet: %s", st.job.name, exc)
                continue
            latest = J.latest_slot(keys)
            if latest:
                st.last_claimed = latest[0]
            fig = self.metrics.job(st.job.name)
            for key in sorted(keys, reverse=True)[:10]:
                doc = self._get(key)
                if doc and doc.get("status") == "completed":
                    fig.last_success = J.parse_time(doc.get("finished_at"))
                    fig.last_duration = doc.get("duration_seconds")
                    break

    def _start_due(self, now: datetime) -> None:
        opts = self.options
        for st in sorted(self.states.values(), key=lambda s: s.job.name):
            if st.running:
                continue
            if self._running_count() >= opts.max_parallel:
                return
            due = J.due(st.job, now, st.last_claimed, tz=opts.tz, max_jitter=opts.jitter)
            if due is None or now < due.run_at or (st.retry_at and now < st.retry_at):
                continue
            self._claim(st, due, now)

    def _claim(self, st: _JobState, due: J.Due, now: datetime) -> None:
        job, key = st.job, J.lock_key(st.job.name, due.slot)
        doc = {"format": LOCK_FORMAT, "job": job.name, "kind": job.kind, "slot": iso(due.slot),
               "owner": self.options.owner, "acquired_at": iso(now), "heartbeat": iso(now),
               "status": "running", "missed_slots": 0}
        try:
            latest = J.latest_slot(self.store.list_keys(J.lock_prefix(job.name)))
            if latest and latest[0] >= due.slot:
                self._lost(st, due, latest[0])
                return
            if latest and J.lock_blocks(self._get(latest[1]), now, self.options.stale_after):
                st.retry_at, st.busy = now + self.options.busy_retry, True
                self._event(due, "busy", logging.INFO,
                            f"{job.name}: the previous run ({J.format_slot(latest[0])}) is still "
                            "running; this slot waits for it (no overlapping runs)")
                return
            doc["missed_slots"] = J.missed_slots(job.schedule, latest[0] if latest else st.last_claimed,
                                                 due.slot, self.options.tz)
            won = self.store.create_json(key, doc)
        except StoreUnavailable as exc:
            st.claim_failures += 1
            if now - due.run_at < self._degrade_after(job):
                delay = min(5 * 2 ** (st.claim_failures - 1), 300)
                st.retry_at = now + timedelta(seconds=delay)
                self._event(due, "store-unavailable", logging.WARNING,
                            f"{job.name}: cannot claim slot {J.format_slot(due.slot)}: state store "
                            f"unreachable ({exc}); retrying in {delay}s")
                return
            doc["degraded"] = "claimed locally: the state store was unreachable"
            won = self.store.create_local(key, doc) if hasattr(self.store, "create_local") else True
            self._event(due, "claimed-locally", logging.WARNING,
                        f"{job.name}: state store unreachable since before slot "
                        f"{J.format_slot(due.slot)}: running it anyway (the lock is kept locally "
                        "and flushed later; a backup is idempotent per slot)")
        st.claim_failures, st.retry_at, st.busy = 0, None, False
        if not won:
            self._lost(st, due, due.slot)
            return
        st.last_claimed = due.slot
        fig = self.metrics.job(job.name)
        with self.metrics.lock:
            fig.missed_slots += doc["missed_slots"]
            fig.running, fig.last_slot = True, due.slot
        run = _Running(due=due, key=key, doc=doc, started=now, last_beat=now)
        st.running = run
        missed = f" (catch-up: {doc['missed_slots']} missed slot(s) covered by this run)" \
            if doc["missed_slots"] else ""
        self._event(due, "started", logging.INFO, f"{job.name}: running slot {J.format_slot(due.slot)}{missed}",
                    missed_slots=doc["missed_slots"])
        run.thread = threading.Thread(target=self._execute, args=(st.job, run), daemon=True,
                                      name=f"dr-job-{job.name}")
        run.thread.start()

    def _lost(self, st: _JobState, due: J.Due, claimed: datetime) -> None:
        st.last_claimed = max(claimed, st.last_claimed or claimed)
        self.metrics.job(st.job.name).claimed_elsewhere += 1
        self._refresh_soon = True
        self._event(due, "claimed-elsewhere", logging.INFO,
                    f"{st.job.name}: slot {J.format_slot(due.slot)} was claimed by another scheduler")

    def _execute(self, job: J.Job, run: _Running) -> None:
        ctx = replace(self.job_ctx, command=f"dr schedule (job {job.name}, slot {iso(run.due.slot)})")
        try:
            outcome = self.runner(ctx, job, run.due.slot)
        except Interrupted as exc:
            outcome = JobOutcome("interrupted", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a job that raises must not stop the scheduler
            log.exception("%s: the job raised", job.name, extra={"job": job.name, "event": "job-raised"})
            outcome = JobOutcome("failed", error=f"{type(exc).__name__}: {exc}")
            outcome.run_id = self._record_crash(job, run, outcome.error)
        run.finished = self.clock.now()
        run.outcome = outcome
        self.wake.set()

    def _record_crash(self, job: J.Job, run: _Running, error: str) -> str | None:
        """A run record for a job that raised before writing its own, so reports count it."""
        now = self.clock.now()
        kind = "backup" if job.makes_copies else "verify"
        record = RunRecord(
            run_id=new_run_id(kind, now), kind=kind, status="failed", started_at=iso(run.started),
            finished_at=iso(now), command=f"dr schedule (job {job.name}, slot {iso(run.due.slot)})",
            results=[ResourceResult(name=job.target, kind=job.record_kind or job.kind, status="failed",
                                    started_at=iso(run.started), finished_at=iso(now), error=error)],
            error=error, dr_version=dr.__version__)
        try:
            self.job_ctx.runs.save(record)
        except Exception as exc:  # noqa: BLE001
            log.error("%s: could not record the failure: %s", job.name, exc)
            return None
        return record.run_id

    def _reap(self, now: datetime) -> None:
        for st in self.states.values():
            run = st.running
            if run is None or run.outcome is None:
                continue
            st.running = None
            self._finish(st, run)

    def _finish(self, st: _JobState, run: _Running) -> None:
        out, job = run.outcome, st.job
        finished = run.finished or self.clock.now()
        duration = (finished - run.started).total_seconds()
        run.doc.update(status=out.status, finished_at=iso(finished), heartbeat=iso(finished),
                       run_id=out.run_id, error=(out.error or "").splitlines()[0] if out.error else None,
                       duration_seconds=round(duration, 3))
        self._put(run.key, run.doc)
        fig = self.metrics.job(job.name)
        with self.metrics.lock:
            fig.running, fig.last_status, fig.last_run = False, out.status, finished
            fig.last_duration, fig.last_error = duration, out.error
            fig.runs[out.status] += 1
            if out.status == "completed":
                fig.last_success = finished
        for e in out.copies:
            self.metrics.set_point(e.resource, job.kind, e.point_time)
        level = logging.INFO if out.status in ("completed", "skipped") else logging.ERROR
        self._event(run.due, "finished", level,
                    f"{job.name}: slot {J.format_slot(run.due.slot)} {out.status} in "
                    f"{format_duration(timedelta(seconds=round(duration)))}"
                    + (f" (run {out.run_id})" if out.run_id else "") + (f": {out.error}" if out.error else ""),
                    status=out.status, run_id=out.run_id, duration_seconds=round(duration, 3))
        if out.status in ("failed", "completed"):
            self._alert_job(job, run, out)
        self.evaluate_rpo(finished, names=[job.name])

    def _heartbeat(self, now: datetime) -> None:
        for st in self.states.values():
            run = st.running
            if run and run.outcome is None and now - run.last_beat >= self.options.heartbeat:
                run.last_beat = now
                self._put(run.key, {**run.doc, "heartbeat": iso(now)})

    def _drain(self) -> int:
        """Wait (up to `grace` real seconds) for running jobs, then record how they ended."""
        deadline = time.monotonic() + self.options.grace
        for st in self.states.values():
            run = st.running
            if run and run.thread:
                run.thread.join(max(0.0, deadline - time.monotonic()))
        self._reap(self.clock.now())
        unfinished = [st for st in self.states.values() if st.running]
        for st in unfinished:
            run = st.running
            self._put(run.key, {**run.doc, "status": "interrupted", "heartbeat": iso(self.clock.now()),
                                "error": "the scheduler stopped before this run finished"})
            log.error("%s: still running when the scheduler stopped; a rerun continues it", st.job.name,
                      extra={"job": st.job.name, "event": "abandoned"})
        return len(unfinished)

    def _sleep_seconds(self) -> float:
        now = self.clock.now()
        opts = self.options
        candidates = [opts.max_sleep]
        at_capacity = self._running_count() >= opts.max_parallel
        for st in self.states.values():
            if st.running:
                candidates.append((st.running.last_beat + opts.heartbeat - now).total_seconds())
                continue
            wake = J.next_wakeup(st.job, now, st.last_claimed, tz=opts.tz, max_jitter=opts.jitter)
            if st.retry_at:
                wake = max(wake, st.retry_at)
            if not (at_capacity and wake <= now):
                candidates.append((wake - now).total_seconds())
        idle = self.chores.idle_seconds
        if idle is not None:
            candidates.append(idle * getattr(self.clock, "speed", 1.0))
        return max(min(candidates), 0.05)

    def _degrade_after(self, job: J.Job) -> timedelta:
        if self.options.degrade_after is not None:
            return self.options.degrade_after
        return min(job.schedule.nominal_interval() / 2, timedelta(minutes=15))

    def _running_count(self) -> int:
        return sum(1 for st in self.states.values() if st.running)

    # -- RPO and alerts ----------------------------------------------------------------------------

    def refresh_rpo(self) -> None:
        """Newest DR copy per resource from the run records (other schedulers' runs included)."""
        now = self.clock.now()
        self._refresh_soon, self._refreshed = False, time.monotonic()
        newest, warnings = newest_copies(self.store, self.ctx.config, now)
        for warning in warnings:
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning("%s", warning, extra={"event": "malformed-record"})
        for st in self.states.values():
            if not st.job.makes_copies:
                continue
            event = newest.get(st.job.name)
            self.metrics.set_point(st.job.name, st.job.kind, event.point_time if event else None)
        self.evaluate_rpo(now)

    def evaluate_rpo(self, now: datetime, names: list[str] | None = None) -> None:
        objective, grace = self.ctx.config.objectives.rpo, self.options.rpo_alert_grace
        for st in self.states.values():
            name = st.job.name
            if (names is not None and name not in names) or not st.job.makes_copies:
                continue
            rpo = self.metrics.rpo(name, now)
            if rpo is None:
                failing = now - self.started_at > objective + grace and not st.running
            else:
                failing = rpo > objective + grace and not (st.running and rpo <= 2 * objective)
            self.metrics.set_breach(name, st.job.kind, rpo is None or rpo > objective)
            point = now - rpo if rpo is not None else None
            dr_region = self.ctx.config.regions.dr
            if failing:
                subject = (f"[dr] RPO breach: {name} has no copy in {dr_region}" if rpo is None else
                           f"[dr] RPO breach: {name}'s newest copy in {dr_region} is "
                           f"{format_duration(_minutes(rpo))} old")
                message = (f"{subject[5:]} (objective {format_duration(objective)}).\n"
                           f"Schedule: {st.job.schedule}. Check `dr runs list` and the job's alerts; "
                           "`dr report` shows the history.\nYou will get one more message when it is "
                           f"back within the objective.\n(from dr schedule on {self.options.owner})")
            else:
                subject = f"[dr] RPO back within objective: {name}"
                message = (f"{name}: newest copy in {dr_region} is "
                           f"{format_duration(_minutes(rpo)) if rpo is not None else 'unknown'} old "
                           f"(objective {format_duration(objective)}).")
            incident = J.format_slot(point) if point is not None else "no-copy"
            self._observe(Condition(f"rpo-{name}", failing, incident, subject, message))

    def _alert_job(self, job: J.Job, run: _Running, out: JobOutcome) -> None:
        slot = J.format_slot(run.due.slot)
        if not job.makes_copies:
            subject = (f"[dr] verification of {job.target}'s backup failed" if out.status == "failed"
                       else f"[dr] verification of {job.target}'s backups succeeds again")
            message = (f"dr schedule ({self.options.owner}): job {job.name}, slot {slot}: "
                       + (f"failed:\n{out.error or 'no error message'}\n" if out.status == "failed"
                          else f"completed (run {out.run_id}).\n")
                       + (f"Details: dr runs show {out.run_id}; `dr backup list --name {job.target}` "
                          "shows which backups are verified.\n" if out.run_id else "")
                       + ("You will get one more message when a verification succeeds again."
                          if out.status == "failed" else ""))
            self._observe(Condition(f"job-{job.name}", out.status == "failed", slot, subject, message))
            return
        if out.status == "failed":
            subject = f"[dr] backup of {job.name} failed"
            message = (f"dr schedule ({self.options.owner}): job {job.name}, slot {slot}, failed:\n"
                       f"{out.error or 'no error message'}\n"
                       + (f"Details: dr runs show {out.run_id}\n" if out.run_id else "")
                       + "You will get one more message when it succeeds again.")
        else:
            subject = f"[dr] backup of {job.name} succeeds again"
            message = f"job {job.name}, slot {slot}: completed (run {out.run_id})."
        self._observe(Condition(f"job-{job.name}", out.status == "failed", slot, subject, message))

    def _observe(self, cond: Condition) -> None:
        try:
            sent = self.alerts.observe(cond)
        except Exception as exc:  # noqa: BLE001 - alerting must never stop the scheduler
            log.error("alerting failed for %s: %s", cond.key, exc)
            return
        if sent:
            with self.metrics.lock:
                self.metrics.alerts["open" if sent == "opened" else "clear"] += 1

    # -- chores ------------------------------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        """Replay the spool into the store (with backoff while it stays unreachable)."""
        self._alert_store()
        flush = getattr(self.store, "flush", None)
        if flush is None or (not force and time.monotonic() < self._next_flush):
            return
        pending = self.store.pending()
        if not pending and self.store.up is not False:
            return
        left = flush() if pending else (0 if self.store.probe() else 1)
        if left:
            self._next_flush = time.monotonic() + self._flush_backoff
            self._flush_backoff = min(self._flush_backoff * 2, 300.0)
        else:
            self._flush_backoff = 5.0

    def _alert_store(self) -> None:
        """One alert when the state store has been unreachable for STORE_ALERT_AFTER, one when back."""
        down_since = getattr(self.store, "down_since", None)
        failing = getattr(self.store, "up", True) is False and down_since is not None and \
            self.clock.now() - down_since >= STORE_ALERT_AFTER
        if not failing and not self._store_alert_open:
            return
        self._store_alert_open = failing
        where = self.store.description
        if failing:
            subject = "[dr] state store unreachable"
            message = (f"dr schedule ({self.options.owner}) cannot reach {where} since {iso(down_since)}: "
                       f"{getattr(self.store, 'last_error', '')}\nBackups go on; their records wait in "
                       "the local spool and are written when the store answers again.")
        else:
            subject, message = "[dr] state store reachable again", f"{where} answers again; spooled records flushed."
        incident = J.format_slot(down_since) if down_since else "down"
        self._observe(Condition("state-store", failing, incident, subject, message))

    def prune_locks(self) -> None:
        now = self.clock.now()
        for st in self.states.values():
            keys = self.store.list_keys(J.lock_prefix(st.job.name))
            for key in J.locks_to_prune(keys, now, self.options.lock_retention):
                self.store.delete(key)

    def _chore(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a chore failing is logged, retried next time
            log.warning("%s: %s", fn.__name__, exc)

    # -- health ------------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict]:
        reasons = []
        if self.stop_event.is_set():
            reasons.append("stopping")
        stalled_after = max(3 * self.options.max_sleep / getattr(self.clock, "speed", 1.0), 90.0)
        if self._tick_mono is None or time.monotonic() - self._tick_mono > stalled_after:
            reasons.append("the scheduler loop has not run recently")
        up = getattr(self.store, "up", True)
        if up is False:
            reasons.append(f"state store unreachable: {getattr(self.store, 'last_error', '')}")
        pending = getattr(self.store, "pending", None)
        spooled = len(pending()) if pending else 0
        now = self.clock.now()
        jobs = {}
        for name, st in sorted(self.states.items()):
            fig = self.metrics.job(name)
            jobs[name] = {"schedule": str(st.job.schedule), "running": bool(st.running),
                          "last_slot": iso(st.last_claimed) if st.last_claimed else None,
                          "last_status": fig.last_status,
                          "last_success": iso(fig.last_success) if fig.last_success else None}
        doc = {"status": "unhealthy" if reasons else "ok", "reasons": reasons, "now": iso(now),
               "owner": self.options.owner,
               "state_store": {"description": self.store.description, "up": up, "spooled": spooled},
               "jobs": jobs}
        return not reasons, doc

    def render_metrics(self) -> str:
        return self.metrics.render(self.clock.now())

    # -- helpers -----------------------------------------------------------------------------------

    def _get(self, key: str) -> dict | None:
        try:
            return self.store.get_json(key)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot read %s: %s", key, exc)
            return None

    def _put(self, key: str, doc: dict) -> None:
        try:
            self.store.put_json(key, doc)
        except Exception as exc:  # noqa: BLE001 - the spooling store keeps it; a plain one logs
            log.warning("cannot write %s: %s", key, exc)

    def _event(self, due: J.Due, event: str, level: int, message: str, **extra) -> None:
        entry = {"event": event, "job": due.job, "slot": iso(due.slot), **extra}
        self.events.append(entry)
        log.log(level, message, extra=entry)


def _minutes(td: timedelta) -> timedelta:
    """Round to whole minutes for messages (an RPO of 2h5m13s reads as 2h5m)."""
    return timedelta(minutes=int(td.total_seconds() // 60)) if td >= timedelta(minutes=1) else td
