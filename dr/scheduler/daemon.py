"""`dr schedule`: run each configured job at its cadence, once per slot across every scheduler.

One loop on the Clock (dr.clock): each pass reaps finished jobs (lock document, metrics, alerts),
refreshes the heartbeat of running ones, and starts the jobs that are due (dr.scheduler.jobs).
Starting a job means winning its slot's lock in the state store (`create_json`, an S3 conditional
write): exactly one scheduler runs a slot. Jobs run in threads, at most `max_parallel` at once,
never two runs of the same job (here, or anywhere while its lock's heartbeat is fresh). Between
passes the loop sleeps until the next thing to do (at most `max_sleep`), so it costs nothing idle.
Periodic chores (flushing the spool, refreshing RPOs from run records, pruning old locks) run on
the `schedule` library's scheduler. The lock protocol is in slots.py, what to alert on in rpo.py.
Durations come from the clock's monotonic time; "real seconds" below are scaled by a ScaledClock's
speed, so a rehearsal at 60x waits as long, in real time, as the daemon does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo

import schedule as schedule_lib

from dr.clock import iso
from dr.config import format_duration
from dr.context import Context
from dr.errors import Interrupted
from dr.report.load import newest_copies
from dr.scheduler import jobs as J
from dr.scheduler.alerts import AlertBook, Condition, LogPublisher, Publisher, SnsPublisher
from dr.scheduler.clocks import StopAwareClock
from dr.scheduler.metrics import Metrics
from dr.scheduler.runners import JobOutcome, JobRunner, run_job
from dr.scheduler.rpo import job_condition, rpo_condition, store_condition
from dr.scheduler.slots import SlotLocks, record_crash

log = logging.getLogger("dr.scheduler")


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
        self.locks = SlotLocks(self.store, options.owner, stale_after=options.stale_after, tz=options.tz)
        self.events: deque[dict] = deque(maxlen=1000)  # what happened, for --once and tests
        self._tick_mono: float | None = None
        self._warned: set[str] = set()
        self._refresh_soon = False
        self._refreshed = float("-inf")
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
            if self._refresh_soon and self.clock.monotonic() - self._refreshed >= self._real(60):
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
        self._tick_mono = self.clock.monotonic()
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
                history = self.locks.history(st.job)
            except Exception as exc:  # noqa: BLE001 - unreachable: learn it at the first claim
                log.warning("cannot read the locks of %s yet: %s", st.job.name, exc)
                continue
            if history.last_claimed:
                st.last_claimed = history.last_claimed
            if history.last_success:
                fig = self.metrics.job(st.job.name)
                fig.last_success, fig.last_duration = history.last_success, history.last_duration

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
        job = st.job
        claim = self.locks.claim(job, due, now, st.last_claimed,
                                 claim_locally=now - due.run_at >= self._degrade_after(job))
        if claim.outcome == "unreachable":
            st.claim_failures += 1
            delay = min(5 * 2 ** (st.claim_failures - 1), 300)
            st.retry_at = now + timedelta(seconds=delay)
            self._event(due, "store-unavailable", logging.WARNING,
                        f"{job.name}: cannot claim slot {J.format_slot(due.slot)}: state store "
                        f"unreachable ({claim.error}); retrying in {delay}s")
            return
        if claim.outcome == "busy":
            st.retry_at, st.busy = now + self.options.busy_retry, True
            self._event(due, "busy", logging.INFO,
                        f"{job.name}: the previous run ({J.format_slot(claim.slot)}) is still "
                        "running; this slot waits for it (no overlapping runs)")
            return
        if claim.local:
            self._event(due, "claimed-locally", logging.WARNING,
                        f"{job.name}: state store unreachable since before slot "
                        f"{J.format_slot(due.slot)}: running it anyway (the lock is kept locally "
                        "and flushed later; a backup is idempotent per slot)")
        if claim.checked:
            st.claim_failures, st.retry_at, st.busy = 0, None, False
        if claim.outcome == "taken":
            self._lost(st, due, claim.slot)
            return
        key, doc = claim.key, claim.doc
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
            outcome.run_id = record_crash(self.job_ctx.store, self.clock, job, started=run.started,
                                          slot=run.due.slot, error=outcome.error)
        run.finished = self.clock.now()
        run.outcome = outcome
        self.wake.set()

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
        self.locks.finish(run.key, run.doc, status=out.status, finished=finished, run_id=out.run_id,
                          error=out.error, seconds=duration)
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
                self.locks.beat(run.key, run.doc, now)

    def _drain(self) -> int:
        """Wait (up to `grace` real seconds) for running jobs, then record how they ended."""
        deadline = self.clock.monotonic() + self._real(self.options.grace)
        for st in self.states.values():
            run = st.running
            if run and run.thread:
                run.thread.join(max(0.0, deadline - self.clock.monotonic()) / self._real(1.0))
        self._reap(self.clock.now())
        unfinished = [st for st in self.states.values() if st.running]
        for st in unfinished:
            run = st.running
            self.locks.abandon(run.key, run.doc, self.clock.now())
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
            candidates.append(self._real(idle))
        return max(min(candidates), 0.05)

    def _degrade_after(self, job: J.Job) -> timedelta:
        if self.options.degrade_after is not None:
            return self.options.degrade_after
        return min(job.schedule.nominal_interval() / 2, timedelta(minutes=15))

    def _running_count(self) -> int:
        return sum(1 for st in self.states.values() if st.running)

    def _real(self, seconds: float) -> float:
        """`seconds` of real time in clock seconds (a ScaledClock runs `speed` times faster)."""
        return seconds * getattr(self.clock, "speed", 1.0)

    # -- RPO and alerts ----------------------------------------------------------------------------

    def refresh_rpo(self) -> None:
        """Newest DR copy per resource from the run records (other schedulers' runs included)."""
        now = self.clock.now()
        self._refresh_soon, self._refreshed = False, self.clock.monotonic()
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
        config = self.ctx.config
        for st in self.states.values():
            name = st.job.name
            if (names is not None and name not in names) or not st.job.makes_copies:
                continue
            cond, breach = rpo_condition(st.job, self.metrics.rpo(name, now), now, started_at=self.started_at,
                                         running=bool(st.running), objective=config.objectives.rpo,
                                         grace=self.options.rpo_alert_grace, dr_region=config.regions.dr,
                                         owner=self.options.owner)
            self.metrics.set_breach(name, st.job.kind, breach)
            self._observe(cond)

    def _alert_job(self, job: J.Job, run: _Running, out: JobOutcome) -> None:
        self._observe(job_condition(job, run.due.slot, status=out.status, run_id=out.run_id, error=out.error,
                                    owner=self.options.owner))

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
        if flush is None or (not force and self.clock.monotonic() < self._next_flush):
            return
        pending = self.store.pending()
        if not pending and self.store.up is not False:
            return
        left = flush() if pending else (0 if self.store.probe() else 1)
        if left:
            self._next_flush = self.clock.monotonic() + self._real(self._flush_backoff)
            self._flush_backoff = min(self._flush_backoff * 2, 300.0)
        else:
            self._flush_backoff = 5.0

    def _alert_store(self) -> None:
        """One alert when the state store has been unreachable for a while, one when it is back."""
        cond = store_condition(self.store, self.clock.now(), was_open=self._store_alert_open,
                               owner=self.options.owner)
        if cond is not None:
            self._store_alert_open = cond.failing
            self._observe(cond)

    def prune_locks(self) -> None:
        self.locks.prune([st.job for st in self.states.values()], self.clock.now(), self.options.lock_retention)

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
        stalled_after = max(3 * self.options.max_sleep, self._real(90.0))
        if self._tick_mono is None or self.clock.monotonic() - self._tick_mono > stalled_after:
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

    def _event(self, due: J.Due, event: str, level: int, message: str, **extra) -> None:
        entry = {"event": event, "job": due.job, "slot": iso(due.slot), **extra}
        self.events.append(entry)
        log.log(level, message, extra=entry)

