"""The one wrapper that runs every step: resolve, (check), execute, retry, record.

`StepRunner.run` is the body of a step's worker thread. It journals `running` before the work,
resolves the step's `${...}` references against the outputs journaled so far, asks the type's
`check()` first when the step was in flight in an earlier session, calls `execute()` with
retries and exponential backoff, and journals the outcome with its duration, attempts, outputs
or error. Timeouts and Ctrl-C reach the step through `ctx.cancel` (set by the executor);
a step that ignores it is abandoned after a grace period (the executor claims it first).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dr.errors import ConfigError, DrError, UsageError
from dr.runbook import params as step_params
from dr.runbook.journal import RunJournal
from dr.runbook.model import Step
from dr.runbook.refs import resolve
from dr.runbook.scope import Scope
from dr.runbook.steps.base import AbortRun, StepContext
from dr.config.durations import format_duration
from dr.clock import iso

MAX_BACKOFF = 300.0
_PERMANENT = (ConfigError, UsageError, AbortRun)  # retrying cannot help


@dataclass
class LiveStep:
    """A step being run by a worker thread; shared with the executor."""

    step: Step
    in_doubt: bool = False           # was in flight in an earlier session: check() first
    cancel: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None    # clock.monotonic() when the current attempt times out
    timed_out: bool = False
    stop_by: float | None = None     # after cancel: when the executor gives up waiting
    status: str = ""                 # the outcome, once claimed
    error: str | None = None
    hint: str | None = None
    aborted: bool = False
    fatal: BaseException | None = None
    _claim: threading.Lock = field(default_factory=threading.Lock)
    _claimed: bool = False

    def claim(self) -> bool:
        """True for exactly one caller: the worker recording its outcome, or the executor
        abandoning a step that did not stop."""
        with self._claim:
            if self._claimed:
                return False
            self._claimed = True
            return True

    @property
    def claimed(self) -> bool:
        return self._claimed


@dataclass
class RunInfo:
    """What a runner needs from the run (the engine fills it in)."""

    run_id: str
    name: str
    kind: str
    region: str
    drill: bool
    started: str
    config: Any
    session: Any
    clock: Any
    store: Any
    params: Mapping[str, Any]
    log: Callable[[str], None]
    plan: tuple = ()                 # (id, type, `with` as written) of every DAG step


class StepRunner:
    def __init__(self, info: RunInfo, journal: RunJournal, done: queue.Queue, run_cancel: threading.Event):
        self.info, self.journal, self.done, self.run_cancel = info, journal, done, run_cancel

    # -- resolution ---------------------------------------------------------------------------

    def scope(self, status: str = "running") -> Scope:
        i = self.info
        run = {"id": i.run_id, "name": i.name, "kind": i.kind, "region": i.region, "drill": i.drill,
               "started": i.started, "status": status}
        return Scope(config=i.config, run=run, params=i.params, outputs=self.journal.outputs())

    def resolve_params(self, step: Step, status: str = "running") -> dict[str, Any]:
        """The step's parameters, references resolved, checked and converted; raises ConfigError."""
        try:
            resolved = resolve(step.params, self.scope(status).lookup)
        except ValueError as e:
            raise ConfigError(f"step {step.id}: {e}") from None
        params, problems = step_params.apply(step.type_cls, resolved)
        if problems:
            raise ConfigError(f"step {step.id}: " + "; ".join(f"{k}: {v}" for k, v in problems.items()))
        return params

    def context(self, step: Step, cancel: threading.Event, attempt: int = 1) -> StepContext:
        i = self.info
        return StepContext(run_id=i.run_id, step_id=step.id, config=i.config, session=i.session,
                           clock=i.clock, cancel=cancel, store=i.store, drill=i.drill, region=i.region,
                           outputs=self.journal.outputs(), log=_prefixed(i.log, step.id),
                           attempt=attempt, types=self.journal.types(), run_session=self.journal.session,
                           run_started=i.started, record_created=self.journal.record_created,
                           ledger=self.journal.created, plan=i.plan)

    # -- a DAG step (the worker thread) ------------------------------------------------------

    def run(self, live: LiveStep) -> None:
        try:
            self._run(live)
        except BaseException as exc:  # noqa: BLE001 - e.g. the journal cannot be written
            live.fatal = exc
            if live.claim():
                live.status, live.error = "failed", _describe(exc)
        finally:
            self.done.put(live)

    def _run(self, live: LiveStep) -> None:
        step, started, t0 = live.step, self.info.clock.now(), self.info.clock.monotonic()
        record = {"started_at": iso(started), "finished_at": None, "seconds": None, "error": None,
                  "hint": None, "outputs": {}, "via": "", "in_doubt": live.in_doubt}
        if not self.journal.transition(step.id, "running", "started", attempts=1, **record):
            return
        try:
            params = self.resolve_params(step)
        except Exception as e:  # noqa: BLE001 - a reference that cannot be resolved fails the step
            return self._finish(live, t0, "failed", 1, error=_describe(e), hint=hint_of(e))
        attempt = 1
        while True:
            outcome = self._attempt(live, params, attempt)
            if outcome[0] == "completed":
                return self._finish(live, t0, "completed", attempt, outputs=outcome[1], via=outcome[2])
            error, hint = outcome[1], outcome[2] if len(outcome) > 2 else None
            if outcome[0] != "retry" or attempt > step.retries or live.claimed:
                return self._finish(live, t0, outcome[0] if outcome[0] != "retry" else "failed",
                                    attempt, error=error, hint=hint)
            delay = min(MAX_BACKOFF, step.retry_delay.total_seconds() * 2 ** (attempt - 1))
            self.info.log(f"[{step.id}] attempt {attempt} failed: {error}; retrying in {delay:g}s")
            self.journal.transition(step.id, "running", f"retry after: {error}",
                                    attempts=attempt + 1, error=error)
            live.deadline, live.stop_by, live.timed_out = None, None, False
            live.cancel = threading.Event()  # the timed-out attempt's event stays set
            if self.info.clock.sleep(delay, live.cancel) or self.run_cancel.is_set():
                return self._finish(live, t0, "interrupted", attempt, error="interrupted while waiting to retry")
            attempt += 1

    def _attempt(self, live: LiveStep, params: dict[str, Any], attempt: int) -> tuple:
        """('completed', outputs, via) | ('retry'|'failed'|'interrupted', error)."""
        step = live.step
        live.cancel, live.timed_out, live.stop_by = threading.Event(), False, None
        if self.run_cancel.is_set():
            return ("interrupted", "interrupted before the attempt started")
        live.deadline = self.info.clock.monotonic() + step.timeout.total_seconds() if step.timeout else None
        ctx = self.context(step, live.cancel, attempt)
        step_type = step.type_cls()
        try:
            outputs, via = None, "execute"
            if live.in_doubt:  # until check() has answered: an error in it leaves the doubt
                outputs, via = step_type.check(params, ctx), "check"
                live.in_doubt = False
                if outputs is not None:
                    self.info.log(f"[{step.id}] already done (check found its effect); not redoing it")
            if outputs is None:
                outputs, via = step_type.execute(params, ctx), "execute"
        except AbortRun as e:
            live.aborted = True
            return ("failed", f"aborted: {e.message if isinstance(e, DrError) else e}", hint_of(e))
        except Exception as e:  # noqa: BLE001 - every failure is recorded, then maybe retried
            if live.timed_out:
                return ("retry", f"timed out after {_secs(step.timeout)}", hint_of(e))
            if self.run_cancel.is_set():
                return ("interrupted", f"interrupted: {_describe(e)}", hint_of(e))
            return ("failed" if isinstance(e, _PERMANENT) else "retry", _describe(e), hint_of(e))
        try:
            return ("completed", jsonable(step, outputs), via)
        except TypeError as e:
            return ("failed", str(e))

    def _finish(self, live: LiveStep, t0: float, status: str, attempts: int, *,
                outputs: dict | None = None, via: str = "", error: str | None = None,
                hint: str | None = None) -> None:
        if not live.claim():
            return  # the executor abandoned this step and recorded it already
        live.status, live.error, live.hint = status, error, hint
        seconds = round(self.info.clock.monotonic() - t0, 6)
        self.journal.transition(live.step.id, status, error or "", attempts=attempts,
                                finished_at=iso(self.info.clock.now()), seconds=seconds,
                                outputs=outputs or {}, via=via, error=error, hint=hint)
        word = {"completed": "done", "failed": "FAILED", "interrupted": "interrupted"}[status]
        self.info.log(f"[{live.step.id}] {word} in {seconds:.1f}s" + (f": {error}" if error else "")
                      + (f"\n  fix: {hint}" if hint else ""))

    # -- hooks and teardown (run on the calling thread, bounded by a deadline) ---------------

    def call(self, fn: Callable[[threading.Event], Any], timeout: timedelta | None,
             stop: threading.Event | None = None, grace: float = 10.0) -> tuple[Any, str | None, float]:
        """Run fn(cancel) in a thread; (result, error, seconds). Times out (and is cancelled)
        after `timeout`; `stop` cancels it early."""
        clock = self.info.clock
        cancel, ended, box, t0 = threading.Event(), threading.Event(), {}, clock.monotonic()

        def body() -> None:
            try:
                box["result"] = fn(cancel)
            except BaseException as e:  # noqa: BLE001
                hint = hint_of(e)
                box["error"] = _describe(e) + (f" (fix: {hint})" if hint else "")
            finally:
                ended.set()

        def wait_until(until: float, stop: threading.Event | None = None) -> None:
            """Wait on the run's clock until `fn` ends, `until` passes or `stop` is set."""
            while not ended.is_set() and clock.monotonic() < until and not (stop and stop.is_set()):
                clock.sleep(min(0.05, until - clock.monotonic()), ended)

        threading.Thread(target=body, daemon=True, name="dr-step").start()
        limit = t0 + (timeout.total_seconds() if timeout else float("inf"))
        wait_until(limit, stop)
        if not ended.is_set():
            cancel.set()
            wait_until(clock.monotonic() + grace)
            if not ended.is_set():
                return None, f"did not stop (timed out after {_secs(timeout)})", clock.monotonic() - t0
            if "error" in box and timeout and clock.monotonic() >= limit:
                box["error"] = f"timed out after {_secs(timeout)}"
        return box.get("result"), box.get("error"), round(clock.monotonic() - t0, 6)


def _prefixed(log: Callable[[str], None], step_id: str) -> Callable[[str], None]:
    return lambda message: log(f"[{step_id}] {message}")


def hint_of(exc: BaseException) -> str | None:
    """A DrError's hint (how to fix it), kept apart from the message."""
    return exc.hint if isinstance(exc, DrError) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DrError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _secs(td: timedelta | None) -> str:
    if td is None:
        return "?"
    s = td.total_seconds()
    return format_duration(td) if s >= 1 and s == int(s) else f"{s:g}s"


def jsonable(step: Step, outputs: Any) -> dict[str, Any]:
    """Outputs as the journal stores them (datetimes as ISO text, durations as seconds)."""
    if outputs is None:
        return {}
    if not isinstance(outputs, Mapping):
        raise TypeError(f"step type {step.type} returned {type(outputs).__name__}, not a mapping of outputs")
    try:
        return json.loads(json.dumps(dict(outputs), default=_encode))
    except (TypeError, ValueError) as e:
        raise TypeError(f"step type {step.type} returned outputs that cannot be journaled: {e}") from None


def _encode(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON")
