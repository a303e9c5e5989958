"""run_runbook: lease, journal, start hooks, the DAG, teardown, end hooks, verdict, release.

    result = run_runbook(load_runbook(path, config), EngineContext(config, session, store, ...))
    result = run_runbook(runbook, ectx, resume="drill-20240501T120000Z-3f9a")

The final status is one of completed, failed, aborted, interrupted (`RunResult.exit_code` maps
it to 0/1/1/130). Resume rules (taskflow's, plus "never trust the journal alone"):
completed steps are skipped and their outputs come from the journal; steps that were in flight
(running, interrupted, failed) or torn down by a drill teardown call the type's `check()` first
and are executed again only if it returns None; skipped and pending steps run normally. Two
more rules keep time-sensitive answers honest: a gate whose answer goes stale (a health check,
`fresh_per_session`) runs again in every session, and every completed step downstream of a step
that is in doubt or runs again is put back in doubt too (its `check()` asks the world). The run
id (and so every `ctx.name()`) is the same across sessions, and the params are the journal's.

Only the holder of the stack's lease runs (lease.py): it is renewed while the run lives, taken
over race-free by a resume from any machine once it expired (or with `take_over`), and a real
failover preempts a drill. A session that loses its lease stops; a preempted drill tears down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dr.clock import Clock
from dr.errors import UsageError
from dr.runbook.dag import critical_path, dependents, needs_graph
from dr.interrupts import Interrupts
from dr.runbook.journal import JournalFenced, RunJournal
from dr.runbook.lease import Claim, Lease, lease_key, was_preempted
from dr.runbook.model import Runbook, RunResult
from dr.runbook.phases import run_hooks, run_teardown
from dr.runbook.results import build_result, rto_seconds, run_record, traffic_seconds
from dr.runbook.runner import RunInfo, StepRunner
from dr.runbook.executor import Executor, Reports
from dr.state.records import RunStore, new_run_id

log = logging.getLogger("dr.runbook")


def _progress(message: str) -> None:
    """Progress goes to the log: shown on a terminal, quiet when piped (the CLI's setup)."""
    log.info(message)


def _loud(message: str) -> None:
    """What must be seen even when piped: a lease taken over, lost or preempting a drill."""
    log.warning(message)


@dataclass
class EngineContext:
    """Everything a run needs from the outside world."""

    config: Any                       # dr.config.Config
    session: Any                      # dr.aws.AwsSession (None in tests that touch no AWS)
    store: Any                        # dr.state.StateStore: journals, leases, run records
    clock: Clock = field(default_factory=Clock)
    drill: bool = False
    region: str = ""                  # where the run acts; default: config.regions.dr
    params: Mapping[str, Any] = field(default_factory=dict)  # overrides of the runbook's params
    kind: str = ""                    # run-id prefix and run-record kind; default drill/runbook name
    keep: bool = False                # drills: skip the teardown (`dr drill --keep`)
    lock_name: str = ""               # the lease's name; default: config.stack.name, else the runbook's
    take_over: bool = False           # resume: take the lease even before it expired (--take-over)
    lease_ttl: float | None = None    # seconds; default $DR_LEASE_SECONDS or 120
    max_parallel: int = 8
    stop_grace: float = 10.0          # seconds a step gets to stop after Ctrl-C or its timeout
    command: str = ""                 # for the run record ("dr drill --keep")
    record_run: bool = True           # also write runs/<run_id>.json (dr runs list/show)
    log: Callable[[str], None] = _progress
    warn: Callable[[str], None] = _loud  # lease take-overs, losses and preemptions
    on_event: Callable[[dict], None] | None = None  # every journal transition (progress, tests)

    def resolved_region(self) -> str:
        return self.region or (self.config.regions.dr if self.config is not None else "")

    def resolved_kind(self, runbook: Runbook) -> str:
        return self.kind or ("drill" if self.drill else runbook.name)

    def resolved_lock(self, runbook: Runbook) -> str:
        stack = getattr(self.config, "stack", None) if self.config is not None else None
        return self.lock_name or (stack.name if stack is not None else runbook.name)


@dataclass
class _Opened:
    """A journal ready to run, and what this session must do about its earlier sessions."""

    journal: RunJournal
    in_doubt: frozenset[str] = frozenset()
    teardown_only: str | None = None  # a preempted drill: only tear down (the reason)


def run_runbook(runbook: Runbook, ectx: EngineContext, *, run_id: str | None = None,
                resume: str | None = None, dry_run: bool = False) -> RunResult:
    """Run (or resume) a validated runbook; see the module docstring."""
    if resume and run_id and resume != run_id:
        raise UsageError(f"run_id {run_id} and resume {resume} differ; resume continues its own run id")
    params = effective_params(runbook, ectx.params)
    if dry_run:
        return _dry_run(runbook, ectx, run_id)
    t0 = ectx.clock.monotonic()
    run_id = resume or run_id or new_run_id(ectx.resolved_kind(runbook), ectx.clock.now())
    claim = Claim(run_id=run_id, runbook=runbook.name, kind=ectx.resolved_kind(runbook), drill=ectx.drill,
                  resume=bool(resume), take_over=ectx.take_over)
    lease = Lease.acquire(ectx.store, ectx.resolved_lock(runbook), claim, ectx.clock,
                          journal_status=_journal_status_reader(ectx), ttl=ectx.lease_ttl, log=ectx.warn)
    try:
        if resume:
            opened = _open_resumed(runbook, ectx, resume)
        else:
            opened = _Opened(RunJournal.create(
                ectx.store, runbook, run_id, kind=ectx.resolved_kind(runbook), drill=ectx.drill,
                region=ectx.resolved_region(), params=params, clock=ectx.clock, on_event=ectx.on_event))
        if lease.preempted:
            opened.journal.annotate(preempted=lease.preempted)
    except BaseException:
        lease.release()
        raise
    try:
        return _run(runbook, ectx, opened, t0, lease)
    finally:
        lease.release()


def _run(runbook: Runbook, ectx: EngineContext, opened: _Opened, t0: float, lease: Lease) -> RunResult:
    journal = opened.journal
    doc = journal.doc
    info = RunInfo(run_id=journal.run_id, name=runbook.name, kind=doc["kind"], region=doc["region"],
                   drill=doc["drill"], started=doc["started_at"], config=ectx.config, session=ectx.session,
                   clock=ectx.clock, store=ectx.store, params=doc["params"], log=ectx.log,
                   plan=tuple((s.id, s.type, s.params) for s in runbook.steps))
    records = RunStore(ectx.store) if ectx.record_run else None
    done = Reports()
    lost: dict[str, str] = {}
    with Interrupts(ectx.log) as interrupts:

        def on_lost(reason: str, why: str) -> None:
            lost.update(reason=reason, why=why)
            ectx.warn(f"LEASE LOST: {why}; no new step starts and running steps are told to stop")
            interrupts.stop(why)

        lease.start_heartbeat(on_lost)
        runner = StepRunner(info, journal, done, interrupts.cancel)
        if records:
            records.save(run_record(runbook, journal, ectx.command))
        ectx.log(f"run {journal.run_id}: runbook {runbook.name} ({len(runbook.steps)} steps"
                 f"{', drill' if info.drill else ''}, region {info.region})")
        if opened.teardown_only:
            ectx.log(f"run {journal.run_id}: {opened.teardown_only}; only its teardown runs")
            interrupts.stop(opened.teardown_only)
            executor = None
            status = "interrupted"
        else:
            run_hooks(runbook, "start", journal, runner, "running")
            executor = Executor(runbook, journal, runner, done, interrupts.cancel,
                                  max_parallel=ectx.max_parallel, stop_grace=ectx.stop_grace,
                                  in_doubt=opened.in_doubt)
            status = executor.run()
        if executor is not None and isinstance(executor.fatal, JournalFenced) and not lost:
            lost.update(reason="taken-over", why=executor.fatal.message)
        if lost.get("reason") in ("taken-over", "expired"):
            # Another session owns the run now (or may, any moment): it tears down and finishes
            # the journal; writing anything more here would fight it.
            result = build_result(runbook, journal, wall_seconds=ectx.clock.monotonic() - t0, teardown=[])
            result.status, result.lease_lost = "interrupted", lost["why"]
            result.error = f"this session stopped: {lost['why']}"
            ectx.log(f"run {result.run_id}: this session stopped ({lost['why']})")
            return result
        if lost.get("reason") == "preempted":
            _journaled(ectx, lambda: journal.annotate(preempted_by=lost["why"]))
        error = lost.get("why") or opened.teardown_only or _first_error(journal, executor)
        teardown = []
        if info.drill and not ectx.keep:
            interrupts.in_teardown = True
            try:
                teardown = run_teardown(runbook, journal, runner, interrupts.stop_teardown)
            finally:
                interrupts.in_teardown = False
        if status != "completed":
            run_hooks(runbook, "failure", journal, runner, status)
        run_hooks(runbook, "end", journal, runner, status)
        _close(runbook, ectx, journal, records, status, error)
    result = build_result(runbook, journal, wall_seconds=ectx.clock.monotonic() - t0, teardown=teardown)
    ectx.log(f"run {result.run_id}: {result.status}" + (f" ({error})" if error else ""))
    return result


def _journaled(ectx: EngineContext, write: Callable[[], None]) -> None:
    try:
        write()
    except Exception as exc:  # noqa: BLE001 - the run goes on; say what could not be recorded
        ectx.log(f"could not write the journal: {exc}")


def _close(runbook: Runbook, ectx: EngineContext, journal: RunJournal, records: RunStore | None,
           status: str, error: str | None) -> None:
    """The verdict, RTO and critical path into the journal (and the run record)."""
    seconds = {k: v["seconds"] for k, v in journal.snapshot()["steps"].items()
               if v["status"] == "completed" and v["seconds"] is not None}
    path_seconds, path = critical_path(needs_graph(runbook.steps), seconds)
    try:
        journal.finish(status, error=error, rto_seconds=rto_seconds(runbook, journal),
                       rto_traffic_seconds=traffic_seconds(journal),
                       critical_path_seconds=round(path_seconds, 6), critical_path=path)
        if records:
            records.save(run_record(runbook, journal, ectx.command))
    except Exception as exc:  # noqa: BLE001 - the result is still known in memory
        ectx.log(f"could not write the end of run {journal.run_id} to the journal: {exc}")
        journal.doc["error"] = f"{error + '; ' if error else ''}the journal could not be written: {exc}"


def effective_params(runbook: Runbook, overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in overrides if k not in runbook.params]
    if unknown:
        known = ", ".join(runbook.params) or "none"
        raise UsageError(f"runbook {runbook.name} has no param {', '.join(map(repr, unknown))} "
                         f"(its params: {known})")
    return {**runbook.params, **overrides}


def _journal_status_reader(ectx: EngineContext) -> Callable[[str], str | None]:
    def status(run_id: str) -> str | None:
        try:
            doc = ectx.store.get_json(f"journals/{run_id}.json") if run_id else None
        except Exception:  # noqa: BLE001 - a malformed name or document: unknown
            return None
        return doc.get("status") if doc else None
    return status


def _open_resumed(runbook: Runbook, ectx: EngineContext, run_id: str) -> _Opened:
    """Load the journal, refuse an unfaithful resume, and put back in doubt what must be asked
    again. A fenced write here means the previous session wrote in between (it had not noticed
    the take-over yet): read again and redo, a few times, until it has stopped."""
    for attempt in range(5):
        journal = RunJournal.load(ectx.store, run_id, ectx.clock, ectx.on_event)
        in_doubt, rerun = _check_resumable(runbook, journal, ectx)
        preempted = was_preempted(ectx.store, run_id) if journal.doc["drill"] else None
        try:
            if preempted:
                _prepare_teardown_only(journal)
            else:
                _prepare_resume(journal, in_doubt, rerun)
        except JournalFenced:
            if attempt == 4:
                raise
            ectx.clock.sleep(1.0 + attempt)
            continue
        if preempted:
            why = (f"drill {run_id} was preempted by {preempted.get('by_kind', 'a run')} {preempted.get('by')} "
                   f"at {preempted.get('at')}")
            return _Opened(journal, frozenset(), why)
        ectx.log(f"resuming run {run_id}: {_resume_summary(journal, rerun)}")
        return _Opened(journal, in_doubt)
    raise AssertionError("unreachable")


def _check_resumable(runbook: Runbook, journal: RunJournal,
                     ectx: EngineContext) -> tuple[frozenset[str], frozenset[str]]:
    """Refuse a resume that cannot be faithful; (steps in doubt, completed gates to run again)."""
    doc = journal.doc
    if doc["status"] == "completed":
        raise UsageError(f"run {journal.run_id} already completed; there is nothing to resume")
    if doc["runbook"]["name"] != runbook.name:
        raise UsageError(f"run {journal.run_id} ran runbook {doc['runbook']['name']!r}, not {runbook.name!r}")
    if bool(doc["drill"]) != bool(ectx.drill):
        raise UsageError(f"run {journal.run_id} was {'a drill' if doc['drill'] else 'not a drill'}; "
                         "resume it the same way")
    if ectx.region and ectx.region != doc["region"]:
        raise UsageError(f"run {journal.run_id} acted in {doc['region']}, not {ectx.region}")
    for key, value in ectx.params.items():
        if doc["params"].get(key) != value:
            raise UsageError(f"run {journal.run_id} ran with {key}={doc['params'].get(key)!r}; "
                             "a resumed run keeps its params")
    in_doubt = set()
    for step_id, state in doc["steps"].items():
        try:
            step = runbook.step(step_id)
        except KeyError:
            step = None
        if state["status"] != "pending" and (step is None or step.type != state["type"]):
            raise UsageError(f"run {journal.run_id}: step {step_id} ({state['type']}) is not in "
                             f"{runbook.source} any more (or changed type); resume needs the same runbook")
        torn = (state.get("teardown") or {}).get("status") in ("completed", "failed", "running")
        if state["status"] in ("running", "interrupted", "failed") or (state["status"] == "completed" and torn):
            in_doubt.add(step_id)
    missing = [s.id for s in runbook.steps if s.id not in doc["steps"]]
    if missing:
        raise UsageError(f"run {journal.run_id}: steps {', '.join(missing)} were added to the runbook "
                         "since; resume needs the same runbook")
    completed = {k for k, v in doc["steps"].items() if v["status"] == "completed"}
    rerun = {s.id for s in runbook.steps if s.id in completed and s.type_cls.fresh_per_session}
    graph = needs_graph(runbook.steps)
    for origin in sorted(in_doubt | rerun):
        in_doubt |= {d for d in dependents(graph, origin) if d in completed and d not in rerun}
    rerun -= in_doubt
    return frozenset(in_doubt), frozenset(rerun)


def _prepare_resume(journal: RunJournal, in_doubt: frozenset[str], rerun: frozenset[str]) -> None:
    journal.resume()
    for step_id, state in journal.snapshot()["steps"].items():
        if step_id in in_doubt:
            journal.transition(step_id, "pending", "resume: check the real world first", in_doubt=True,
                               teardown=None)
        elif step_id in rerun:
            journal.transition(step_id, "pending", "resume: a gate runs again in every session",
                               in_doubt=False, teardown=None)
        elif state["status"] == "skipped":
            journal.transition(step_id, "pending", "resume", in_doubt=False, teardown=None)


def _prepare_teardown_only(journal: RunJournal) -> None:
    """A preempted drill whose process was gone: what was in flight is recorded interrupted, so
    the teardown undoes it too; nothing new runs."""
    journal.resume()
    for step_id, state in journal.snapshot()["steps"].items():
        if state["status"] == "running":
            journal.transition(step_id, "interrupted", "the drill was preempted while this step ran",
                               error="preempted before it finished")


def _resume_summary(journal: RunJournal, rerun: frozenset[str]) -> str:
    steps = journal.snapshot()["steps"].values()
    done = sum(1 for s in steps if s["status"] == "completed")
    doubt = sum(1 for s in steps if s.get("in_doubt") and s["status"] == "pending")
    again = f", {len(rerun)} gate(s) to pass again in this session ({', '.join(sorted(rerun))})" if rerun else ""
    return f"{done} step(s) already completed, {doubt} to check against the real world first{again}"


def _first_error(journal: RunJournal, executor: Executor | None) -> str | None:
    if executor is not None and executor.fatal is not None:
        return f"the journal could not be written: {executor.fatal}"
    steps = journal.snapshot()["steps"]
    for step_id in journal.snapshot()["finish_order"]:
        state = steps[step_id]
        if state["status"] in ("failed", "interrupted") and state.get("error"):
            return f"step {step_id}: {state['error']}"
    return None


def _dry_run(runbook: Runbook, ectx: EngineContext, run_id: str | None) -> RunResult:
    """Nothing is written or executed: every step `pending`; a held lease is reported in `error`."""
    from dr.runbook.model import StepResult

    now = ectx.clock.now()
    holder = ectx.store.get_json(lease_key(ectx.resolved_lock(runbook))) if ectx.store is not None else None
    error = (f"run {holder.get('run_id')} holds the lease (until {holder.get('expires_at')})"
             if holder and not holder.get("released_at") else None)
    steps = {s.id: StepResult(s.id, s.type, "pending") for s in runbook.steps}
    return RunResult(run_id=run_id or "", runbook=runbook.name, status="completed", started=now,
                     finished=now, steps=steps, dry_run=True, error=error)


__all__ = ["EngineContext", "effective_params", "run_runbook"]
