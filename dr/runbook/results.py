"""From a journal to what callers see: RunResult, the RTO, and the run record for `dr runs`."""

from __future__ import annotations

from typing import Any

from dr.clock import parse_iso
from dr.runbook.journal import RunJournal
from dr.runbook.model import Runbook, RunResult, StepResult, TeardownResult
from dr.state.records import ResourceResult, RunRecord
from dr.state.status import RESULT_OF_STEP


def _when(value: str | None):
    return parse_iso(value) if value else None


def rto_seconds(runbook: Runbook, journal: RunJournal) -> float | None:
    """Run start (first session) to the completion of the last RTO gate; None if a gate did
    not complete. Gates: `rto_end: true` steps, else the health checks, else every step."""
    doc = journal.snapshot()
    ends = []
    for gate in runbook.rto_gates():
        state = doc["steps"].get(gate)
        if not state or state["status"] != "completed" or not state["finished_at"]:
            return None
        ends.append(parse_iso(state["finished_at"]))
    if not ends:
        return None
    return round((max(ends) - parse_iso(doc["started_at"])).total_seconds(), 6)


def traffic_seconds(journal: RunJournal) -> float | None:
    """Run start to the moment traffic has moved: the latest `traffic_moved_at` a DNS step
    reported (its change served everywhere, plus the TTL of the values it replaced, during which
    resolvers may still answer with the old ones). None when no DNS step completed."""
    doc = journal.snapshot()
    moved = [parse_iso(s["outputs"]["traffic_moved_at"]) for s in doc["steps"].values()
             if s["status"] == "completed" and (s.get("outputs") or {}).get("traffic_moved_at")]
    if not moved:
        return None
    return round((max(moved) - parse_iso(doc["started_at"])).total_seconds(), 6)


def step_result(step_id: str, state: dict[str, Any]) -> StepResult:
    td = state.get("teardown")
    teardown = TeardownResult(step_id, td["status"], td.get("seconds"), td.get("error")) if td else None
    return StepResult(id=step_id, type=state["type"], status=state["status"],
                      started=_when(state.get("started_at")), finished=_when(state.get("finished_at")),
                      seconds=state.get("seconds"), outputs=dict(state.get("outputs") or {}),
                      error=state.get("error"), hint=state.get("hint"), attempts=state.get("attempts", 0),
                      via=state.get("via", ""), teardown=teardown)


def build_result(runbook: Runbook, journal: RunJournal, *, wall_seconds: float,
                 teardown: list[TeardownResult]) -> RunResult:
    doc = journal.snapshot()
    steps = {s.id: step_result(s.id, doc["steps"][s.id]) for s in runbook.steps}
    session = doc["sessions"][-1]["n"]
    hooks = [StepResult(id=h["id"], type=h["type"], status=h["status"], started=_when(h["started_at"]),
                        finished=_when(h["finished_at"]), seconds=h.get("seconds"),
                        outputs=h.get("outputs") or {}, error=h.get("error"), attempts=1, via="execute")
             for h in doc["hooks"] if h.get("session") == session]
    return RunResult(run_id=doc["run_id"], runbook=runbook.name, status=doc["status"],
                     started=parse_iso(doc["started_at"]),
                     finished=_when(doc["finished_at"]) or journal.clock.now(),  # a session that stopped
                     steps=steps, hooks=hooks, teardown=teardown, rto_seconds=doc.get("rto_seconds"),
                     rto_traffic_seconds=doc.get("rto_traffic_seconds"),
                     critical_path_seconds=doc.get("critical_path_seconds") or 0.0,
                     critical_path=list(doc.get("critical_path") or []), wall_seconds=round(wall_seconds, 6),
                     error=doc.get("error"), sessions=len(doc["sessions"]), journal_key=journal.key,
                     region=doc.get("region", ""), drill=bool(doc.get("drill")), preempted=doc.get("preempted"),
                     preempted_by=doc.get("preempted_by"))


def run_record(runbook: Runbook, journal: RunJournal, command: str = "") -> RunRecord:
    """The run's summary for `dr runs list|show` (runs/<run_id>.json); the journal has the detail.
    One result per step: name = step id, kind = step type, status as dr.state.status.RESULT_OF_STEP
    reads the journal's (the journal itself checked every transition against the shared tables)."""
    from dr import __version__
    from dr.runbook.dag import plan_batches

    doc = journal.snapshot()
    results = []
    for step in runbook.steps:
        state = doc["steps"][step.id]
        summary = {"seconds": state.get("seconds"), "attempts": state.get("attempts"),
                   "via": state.get("via"), "outputs": state.get("outputs") or {}}
        if state.get("hint"):
            summary["hint"] = state["hint"]
        if state.get("teardown"):
            summary["teardown"] = state["teardown"]["status"]
        results.append(ResourceResult(name=step.id, kind=step.type, status=RESULT_OF_STEP[state["status"]],
                                      started_at=state.get("started_at") or doc["started_at"],
                                      finished_at=state.get("finished_at"), error=state.get("error"),
                                      summary=summary))
    plan = [{"batch": i + 1, "steps": [s.id for s in batch]} for i, batch in enumerate(plan_batches(runbook))]
    plan.append({"journal": journal.key, "rto_seconds": doc.get("rto_seconds"),
                 "rto_traffic_seconds": doc.get("rto_traffic_seconds"),
                 "critical_path_seconds": doc.get("critical_path_seconds")})
    summary = {"region": doc.get("region"), "drill": bool(doc.get("drill")), "sessions": len(doc["sessions"]),
               "rto_seconds": doc.get("rto_seconds"), "rto_traffic_seconds": doc.get("rto_traffic_seconds")}
    for key in ("preempted", "preempted_by"):
        if doc.get(key):
            summary[key] = doc[key]
    return RunRecord(run_id=doc["run_id"], kind=doc["kind"], status=doc["status"], started_at=doc["started_at"],
                     finished_at=doc.get("finished_at"), command=command, plan=plan, results=results,
                     error=doc.get("error"), dr_version=__version__, summary=summary)
