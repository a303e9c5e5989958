"""The one way a run is recorded: `Recorder` writes a RunRecord as the run goes.

    with Recorder(store, clock, "backup", ctx.command, plan=[...]) as rec:
        with rec.resource("app-db", "rds-instance") as r:
            with r.step("copy", "snap-1 to us-west-2"):
                ...

* Every status change is checked against the tables of dr.state.status (the runbook journal
  uses the same ones) and the record is saved right after it, so a crash leaves the last state
  on disk for `dr runs show`, reports and reruns.
* Ctrl-C is handled here and nowhere else: an `Interrupted` or `KeyboardInterrupt` leaving a
  step, a resource or the run marks what was running `interrupted`, saves, and re-raises.
* Any other exception marks the step / resource / run `failed` with its message (a `DrError`'s
  message as is, anything else as "unexpected error: ..."), saves, and re-raises; a resource
  opened with `keep_going=True` records it and lets the run go on with the next resource.
* The run's final status follows `status.run_outcome`: interrupted if a resource was, failed if
  one failed or the run has an error of its own, else completed.
* `command`, `dr_version` and the times come from here: wall times from the clock, durations
  (`seconds()`) from its monotonic time, so a FixedClock steers them in tests.

Fields that are not statuses (summary, recovery points, plan, error) may be changed through
`note`, `add_point` or directly on `.record` / `.result` followed by `save()`. Resources may be
recorded from several threads at once (the record is locked while it changes and is saved).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from dr.clock import Clock, iso
from dr.errors import DrError, Interrupted
from dr.state.base import StateStore
from dr.state.records import ResourceResult, RunRecord, RunStore, StepRecord, new_run_id
from dr.state.status import RUN_TRANSITIONS, STEP_TRANSITIONS, check_transition, run_outcome

log = logging.getLogger("dr.state")
CTRL_C = "interrupted by the user (Ctrl-C)"
_STOPS = (Interrupted, KeyboardInterrupt)


def error_message(exc: BaseException) -> str:
    """What a record says about an exception: a DrError's own words; anything else is a bug or
    an unexpected answer, named as such."""
    if isinstance(exc, KeyboardInterrupt):
        return CTRL_C
    if isinstance(exc, DrError):
        return str(exc) or type(exc).__name__
    return f"unexpected error: {exc!r}"


class Recorder:
    """One run's record: created `running`, saved at every change, finished exactly once."""

    def __init__(self, store: StateStore, clock: Clock, kind: str, command: str = "", *,
                 plan: list[dict] | None = None, summary: dict | None = None, error: str | None = None,
                 run_id: str | None = None, started: datetime | None = None,
                 interrupt_hint: str | None = None):
        from dr import __version__

        self.clock = clock
        self.runs = RunStore(store)
        self.interrupt_hint = interrupt_hint  # set: Ctrl-C leaves the run as Interrupted(hint=...)
        now = clock.now()
        self.record = RunRecord(run_id=run_id or new_run_id(kind, now), kind=kind, status="running",
                                started_at=iso(started or now), command=command, plan=list(plan or []),
                                error=error, dr_version=__version__, summary=dict(summary or {}))
        self.resources: list[ResourceRecorder] = []
        self._lock = threading.RLock()
        self._t0 = clock.monotonic()

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def status(self) -> str:
        return self.record.status

    def seconds(self) -> float:
        """Monotonic seconds since the recorder was made."""
        return round(self.clock.monotonic() - self._t0, 6)

    def save(self) -> None:
        with self._lock:
            self.runs.save(self.record)

    # -- the run -----------------------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        self.save()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.record.status != "running":
            return
        if exc is None:
            self.finish()
        elif isinstance(exc, _STOPS) or not isinstance(exc, Exception):
            self.interrupt(exc)
            if isinstance(exc, KeyboardInterrupt) and self.interrupt_hint:
                raise Interrupted(f"interrupted; run {self.run_id} recorded where it stopped",
                                  hint=self.interrupt_hint) from None
        else:
            self.finish("failed", error_message(exc))

    def finish(self, status: str | None = None, error: str | None = None) -> RunRecord:
        """End the run: `status` if given, else the outcome of its results (status.run_outcome)."""
        with self._lock:
            if error is not None:
                self.record.error = error
            to = status or run_outcome((r.result.status for r in self.resources), self.record.error)
            self._run_to(to)
            return self.record

    def interrupt(self, exc: BaseException | str | None = None) -> None:
        """The run stops here: whatever is still running becomes `interrupted`, and so does the run."""
        why = exc if isinstance(exc, str) else (CTRL_C if exc is None else error_message(exc))
        with self._lock:
            for r in self.resources:
                if r.result.status == "running":
                    r.interrupt(save=False)
            self.record.error = why
            self._run_to("interrupted")

    def _run_to(self, to: str) -> None:
        check_transition(RUN_TRANSITIONS, f"run {self.run_id}", self.record.status, to)
        self.record.status = to
        self.record.finished_at = iso(self.clock.now())
        self.save()

    # -- resources ---------------------------------------------------------------------------------

    def add(self, name: str, kind: str, *, started: datetime | None = None) -> ResourceRecorder:
        """A resource that starts now (pending -> running, saved); end it with complete / fail /
        skip / interrupt. `resource()` is the same as a context manager."""
        r = ResourceRecorder(self, name, kind, started)
        with self._lock:
            self.resources.append(r)
            self.record.results.append(r.result)
            r._to("running", save=True)
        return r

    def skip(self, name: str, kind: str, reason: str) -> ResourceRecorder:
        """A resource the run did not touch (pending -> skipped), with the reason."""
        r = ResourceRecorder(self, name, kind, None)
        with self._lock:
            self.resources.append(r)
            self.record.results.append(r.result)
            r.result.error = reason
            r._to("skipped", save=True)
        return r

    @contextmanager
    def resource(self, name: str, kind: str, *, started: datetime | None = None,
                 keep_going: bool = False) -> Iterator[ResourceRecorder]:
        """Record one resource: completed when the block ends (unless it was ended inside),
        interrupted on Ctrl-C, failed on an error (re-raised unless `keep_going`)."""
        r = self.add(name, kind, started=started)
        try:
            yield r
        except _STOPS as exc:
            if r.status == "running":
                r.interrupt(error_message(exc) if isinstance(exc, Interrupted) else None)
            raise
        except Exception as exc:
            if r.status == "running":
                r.fail(error_message(exc))
            if not keep_going:
                raise
            if isinstance(exc, DrError):
                log.error("%s: %s", name, exc)
            else:
                log.exception("%s: unexpected error", name)
        except BaseException:
            if r.status == "running":
                r.interrupt()
            raise
        else:
            if r.result.status == "running":
                r.complete()


class ResourceRecorder:
    """One resource of a run (a ResourceResult) and its steps."""

    def __init__(self, run: Recorder, name: str, kind: str, started: datetime | None):
        self.run = run
        self.result = ResourceResult(name=name, kind=kind, status="pending",
                                     started_at=iso(started or run.clock.now()))
        self._t0 = run.clock.monotonic()

    @property
    def status(self) -> str:
        return self.result.status

    def seconds(self) -> float:
        return round(self.run.clock.monotonic() - self._t0, 6)

    def save(self) -> None:
        self.run.save()

    def note(self, **summary) -> None:
        """Add figures to the resource's summary and save."""
        with self.run._lock:
            self.result.summary.update(summary)
            self.run.save()

    def add_point(self, point: dict) -> None:
        """A recovery point this resource made ({"id", "region", "arn", "created", "kms_key_id", "role"})."""
        with self.run._lock:
            self.result.recovery_points.append(point)
            self.run.save()

    def complete(self) -> None:
        self._end("completed", None)

    def fail(self, error: str) -> None:
        self._end("failed", error)

    def interrupt(self, error: str | None = None, *, save: bool = True) -> None:
        with self.run._lock:
            for step in self.result.steps:
                if step.status == "running":
                    _step_to(self.run, step, "interrupted")
            self._end("interrupted", error, save=save)

    def _end(self, to: str, error: str | None, *, save: bool = True) -> None:
        with self.run._lock:
            check_transition(STEP_TRANSITIONS, f"resource {self.result.name}", self.result.status, to)
            if error is not None:  # only once the transition is known to be allowed
                self.result.error = error
            self._to(to, save=False)
            self.result.finished_at = iso(self.run.clock.now())
            if save:
                self.run.save()

    def _to(self, to: str, *, save: bool) -> None:
        check_transition(STEP_TRANSITIONS, f"resource {self.result.name}", self.result.status, to)
        self.result.status = to
        if save:
            self.run.save()

    # -- steps -------------------------------------------------------------------------------------

    def start_step(self, name: str, detail: str | None = None) -> StepRecorder:
        """A step that starts now (saved); end it with complete / fail / interrupt."""
        s = StepRecorder(self, StepRecord(name=name, status="pending", started_at=iso(self.run.clock.now()),
                                          detail=detail))
        with self.run._lock:
            self.result.steps.append(s.step)
            _step_to(self.run, s.step, "running")
            self.run.save()
        return s

    @contextmanager
    def step(self, name: str, detail: str | None = None) -> Iterator[StepRecorder]:
        """Record one step: completed when the block ends (unless ended inside), interrupted on
        Ctrl-C, failed on any other error; the exception always goes on."""
        s = self.start_step(name, detail)
        try:
            yield s
        except BaseException as exc:
            why = error_message(exc)
            if s.step.status == "running":
                s.interrupt(why) if isinstance(exc, _STOPS) or not isinstance(exc, Exception) else s.fail(why)
            raise
        else:
            if s.step.status == "running":
                s.complete()


class StepRecorder:
    """One step of a resource (a StepRecord)."""

    def __init__(self, resource: ResourceRecorder, step: StepRecord):
        self.resource, self.step = resource, step
        self._t0 = resource.run.clock.monotonic()

    @property
    def status(self) -> str:
        return self.step.status

    def seconds(self) -> float:
        return round(self.resource.run.clock.monotonic() - self._t0, 6)

    def complete(self) -> None:
        self._end("completed", None)

    def fail(self, error: str) -> None:
        self._end("failed", error)

    def interrupt(self, error: str | None = None) -> None:
        self._end("interrupted", error)

    def _end(self, to: str, error: str | None) -> None:
        run = self.resource.run
        with run._lock:
            check_transition(STEP_TRANSITIONS, f"step {self.step.name}", self.step.status, to)
            if error is not None:  # only once the transition is known to be allowed
                self.step.error = error
            _step_to(run, self.step, to)
            run.save()


def _step_to(run: Recorder, step: StepRecord, to: str) -> None:
    check_transition(STEP_TRANSITIONS, f"step {step.name}", step.status, to)
    step.status = to
    if to != "running":
        step.finished_at = iso(run.clock.now())
