"""What runs outside the DAG: hook steps (start/end/failure) and the drill teardown.

Teardown undoes a drill: every step that was started in this run (completed, failed or
interrupted) and whose type has a teardown is torn down, one at a time, in reverse order of
finishing (dependents before what they depend on). Each teardown is journaled; an error is
recorded and the next teardown still runs. A step torn down goes back to `pending` on
`--resume` (its effect is gone), with `check()` consulted first.

Hooks run sequentially; their failures are recorded and never change the run's status. Both go
on when the journal cannot be written (the failure is logged).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from dr.runbook.journal import RunJournal
from dr.runbook.model import Runbook, Step, TeardownResult
from dr.runbook.runner import StepRunner, jsonable
from dr.clock import iso

DEFAULT_HOOK_TIMEOUT = timedelta(minutes=1)
DEFAULT_TEARDOWN_TIMEOUT = timedelta(minutes=30)


def teardown_order(runbook: Runbook, journal: RunJournal) -> list[Step]:
    """Steps to tear down, last finished first."""
    snapshot = journal.snapshot()
    last: dict[str, int] = {}
    for i, step_id in enumerate(snapshot["finish_order"]):
        last[step_id] = i
    chosen = []
    for step_id in sorted(last, key=last.__getitem__, reverse=True):
        state = snapshot["steps"].get(step_id)
        try:
            step = runbook.step(step_id)
        except KeyError:
            continue
        if state and state["status"] in ("completed", "failed", "interrupted") and step.has_teardown \
                and (state.get("teardown") or {}).get("status") != "completed":
            chosen.append(step)
    return chosen


def run_teardown(runbook: Runbook, journal: RunJournal, runner: StepRunner,
                 stop: threading.Event) -> list[TeardownResult]:
    results = []
    for step in teardown_order(runbook, journal):
        if stop.is_set():
            record = {"status": "skipped", "error": "teardown stopped by Ctrl-C", "started_at": None,
                      "finished_at": None, "seconds": None}
        else:
            record = _teardown_one(step, journal, runner, stop)
        _journaled(runner, lambda: journal.set_teardown(step.id, record))
        results.append(TeardownResult(step.id, record["status"], record["seconds"], record["error"]))
    return results


def _teardown_one(step: Step, journal: RunJournal, runner: StepRunner, stop: threading.Event) -> dict:
    started = iso(runner.info.clock.now())
    _journaled(runner, lambda: journal.set_teardown(step.id, {
        "status": "running", "error": None, "started_at": started, "finished_at": None, "seconds": None}))
    runner.info.log(f"[{step.id}] tearing down")
    outputs = journal.outputs().get(step.id, {})

    def body(cancel: threading.Event) -> None:
        params = runner.resolve_params(step)
        step.type_cls().teardown(params, outputs, runner.context(step, cancel))

    _, error, seconds = runner.call(body, step.timeout or DEFAULT_TEARDOWN_TIMEOUT, stop)
    if error:
        runner.info.log(f"[{step.id}] teardown FAILED: {error}")
    return {"status": "failed" if error else "completed", "error": error, "started_at": started,
            "finished_at": iso(runner.info.clock.now()), "seconds": seconds}


def run_hooks(runbook: Runbook, phase: str, journal: RunJournal, runner: StepRunner,
              status: str) -> list[dict]:
    records = []
    for hook in (h for h in runbook.hooks if h.phase == phase):
        started = iso(runner.info.clock.now())

        def body(cancel: threading.Event, hook: Step = hook) -> dict:
            params = runner.resolve_params(hook, status)
            return jsonable(hook, hook.type_cls().execute(params, runner.context(hook, cancel)))

        outputs, error, seconds = runner.call(body, hook.timeout or DEFAULT_HOOK_TIMEOUT)
        record = {"id": hook.id, "type": hook.type, "phase": phase,
                  "status": "failed" if error else "completed", "started_at": started,
                  "finished_at": iso(runner.info.clock.now()), "seconds": seconds, "error": error,
                  "outputs": outputs if isinstance(outputs, dict) else {}}
        if error:
            runner.info.log(f"[{hook.id}] hook at {phase} failed: {error}")
        _journaled(runner, lambda: journal.add_hook(record))
        records.append(record)
    return records


def _journaled(runner: StepRunner, write) -> None:
    """Teardown and hooks go on when the journal cannot be written (a drill must not be left
    billing because the state store is down); the failure is logged."""
    try:
        write()
    except Exception as exc:  # noqa: BLE001
        runner.info.log(f"could not write the journal: {exc}")
