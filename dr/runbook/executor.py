"""The DAG executor: start each step as soon as everything it needs has completed.

Steps run on worker threads (at most `max_parallel` at once) through `StepRunner.run`, which
reports back on a queue. The executor owns the decisions: what starts next, which dependents
are skipped after a failure, when a step has run past its timeout, and what happens on Ctrl-C
(nothing new starts; running steps are told to stop and given `stop_grace` seconds, then
recorded as interrupted and left behind). A step that raises AbortRun stops new starts too.
"""

from __future__ import annotations

import queue
import threading

from dr.runbook.dag import dependents, needs_graph
from dr.runbook.journal import RunJournal
from dr.runbook.model import Runbook
from dr.runbook.runner import LiveStep, StepRunner
from dr.clock import iso

TICK = 0.1  # seconds between checks of deadlines and Ctrl-C while steps run


class Reports(queue.Queue):
    """Where worker threads report their finished steps; `arrived` ends the executor's wait."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self.arrived.set()


class Executor:
    """Runs the DAG. It waits on the run's clock (`sleep` until a report arrives or the next
    deadline), so a simulated clock steers its deadlines; the clock's sleep must block (Clock,
    or a test clock that blocks until its time comes: FixedClock never does)."""

    def __init__(self, runbook: Runbook, journal: RunJournal, runner: StepRunner, done: Reports,
                 cancel: threading.Event, *, max_parallel: int = 8, stop_grace: float = 10.0,
                 in_doubt: frozenset[str] = frozenset()):
        self.runbook, self.journal, self.runner, self.done = runbook, journal, runner, done
        self.clock = runner.info.clock  # deadlines in its monotonic time
        self.cancel, self.max_parallel, self.stop_grace = cancel, max(1, max_parallel), stop_grace
        self.in_doubt = in_doubt
        self.graph = needs_graph(runbook.steps)
        self.running: dict[str, LiveStep] = {}
        self.aborted_by: str | None = None
        self.fatal: BaseException | None = None

    def run(self) -> str:
        """Run until nothing more can start; the run's status."""
        while True:
            if not self._stopping():
                self._start_ready()
            if not self.running:
                break
            self._wait()
        if self.aborted_by:
            for step_id in self._pending():
                self._skip(step_id, f"run aborted by step {self.aborted_by}")
        return self._status()

    # -- starting -----------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        return [s.id for s in self.runbook.steps
                if s.id not in self.running and self.journal.status_of(s.id) == "pending"]

    def _start_ready(self) -> None:
        for step_id in self._pending():
            if len(self.running) >= self.max_parallel:
                return
            if all(self.journal.status_of(d) == "completed" for d in self.graph[step_id]):
                live = LiveStep(self.runbook.step(step_id), in_doubt=step_id in self.in_doubt)
                self.running[step_id] = live
                threading.Thread(target=self.runner.run, args=(live,), daemon=True,
                                 name=f"dr-step-{step_id}").start()

    def _stopping(self) -> bool:
        return self.cancel.is_set() or self.aborted_by is not None or self.fatal is not None

    # -- waiting ------------------------------------------------------------------------------

    def _wait(self) -> None:
        self.done.arrived.clear()  # before looking: a report that lands after sets it again
        if self.done.empty():
            self.clock.sleep(self._next_wakeup(), self.done.arrived)
        while True:
            try:
                live = self.done.get_nowait()
            except queue.Empty:
                break
            self._finished(live)
        self._enforce_deadlines()

    def _next_wakeup(self) -> float:
        now = self.clock.monotonic()
        times = [t for live in self.running.values() for t in (live.deadline, live.stop_by) if t and t > now]
        return min([TICK, *(t - now for t in times)])  # a deadline already passed was dealt with

    def _finished(self, live: LiveStep) -> None:
        if self.running.get(live.step.id) is not live:
            return  # abandoned earlier; its late report changes nothing
        del self.running[live.step.id]
        if live.fatal is not None and self.fatal is None:
            self.fatal = live.fatal
        if live.aborted and self.aborted_by is None:
            self.aborted_by = live.step.id
        if live.status == "failed":
            for dep in dependents(self.graph, live.step.id):
                self._skip(dep, f"needs {live.step.id}, which failed")

    def _skip(self, step_id: str, reason: str) -> None:
        if self.journal.status_of(step_id) == "pending":
            self._journal(step_id, "skipped", reason, error=reason, finished_at=iso(self.journal.clock.now()))

    def _journal(self, step_id: str, to: str, note: str, **fields) -> None:
        """A transition made by the executor; a store failure stops the run (like a worker's)."""
        try:
            self.journal.transition(step_id, to, note, **fields)
        except Exception as exc:  # noqa: BLE001 - e.g. the state bucket is unreachable
            if self.fatal is None:
                self.fatal = exc

    def _enforce_deadlines(self) -> None:
        now = self.clock.monotonic()
        stop_running = self.cancel.is_set() or self.fatal is not None  # an abort lets them finish
        for live in list(self.running.values()):
            if stop_running and not live.cancel.is_set():
                live.cancel.set()
            if live.deadline is not None and now >= live.deadline and not live.timed_out:
                live.timed_out = True
                live.cancel.set()
            if (live.timed_out or stop_running) and live.stop_by is None:
                live.stop_by = now + self.stop_grace
            if live.stop_by is not None and now >= live.stop_by:
                self._abandon(live)

    def _abandon(self, live: LiveStep) -> None:
        """The step did not stop when told: record it and stop waiting for it."""
        if not live.claim():
            return  # it just finished; its report is on the queue
        del self.running[live.step.id]
        status = "failed" if live.timed_out and not self.cancel.is_set() else "interrupted"
        reason = (f"timed out after {live.step.timeout} and did not stop within {self.stop_grace:g}s"
                  if status == "failed" else f"did not stop within {self.stop_grace:g}s of Ctrl-C")
        live.status, live.error = status, reason
        state = self.journal.step(live.step.id)
        self._journal(live.step.id, status, reason, error=reason, finished_at=iso(self.journal.clock.now()),
                      attempts=state["attempts"])
        if status == "failed":
            for dep in dependents(self.graph, live.step.id):
                self._skip(dep, f"needs {live.step.id}, which failed")

    # -- the verdict --------------------------------------------------------------------------

    def _status(self) -> str:
        statuses = [self.journal.status_of(s.id) for s in self.runbook.steps]
        if all(s == "completed" for s in statuses):
            return "completed"
        if self.fatal is not None:
            return "failed"
        if self.aborted_by is not None:
            return "aborted"
        if self.cancel.is_set():
            return "interrupted"
        return "failed"
