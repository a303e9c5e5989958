"""Runbooks and runs for people: step types, a runbook's plan, a drill's or failover's outcome, and
the run records (`dr runs list|show`). Each function renders data the handler already fetched."""

from __future__ import annotations

import json
from typing import Any

from dr.render import human_time
from dr.render.text import table

# -- step types (`dr runbook describe`) -------------------------------------------------------------


def step_type_text(cls: Any) -> str:
    """A step type: what it does, its parameters (type, default), outputs, IAM actions, example."""
    lines = [f"Type:         {cls.name}", f"Description:  {cls.description}", "Parameters:"]
    if not cls.params:
        lines.append("  <none>")
    needs = ["required" if p.required else f"default {_show(p.default)}" for p in cls.params]
    width = max((len(p.name) for p in cls.params), default=0)
    need_width = max((len(n) for n in needs), default=0)
    for p, need in zip(cls.params, needs):
        lines.append(f"  {p.name:<{width}}  {p.type:<8}  {need:<{need_width}}  {p.help}".rstrip())
    lines.append(f"Outputs:      {', '.join(cls.outputs) or '<none>'}")
    lines.append(f"IAM actions:  {', '.join(cls.iam_actions) or '<none>'}")
    lines.append("Example:")
    lines += ["  " + line for line in cls.example.rstrip("\n").splitlines()]
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return repr(value) if isinstance(value, str) and not value else str(value)


# -- a runbook's plan (`dr runbook plan`, `dr restore --dry-run`) -------------------------------------


def plan_text(data: dict[str, Any]) -> str:
    """The plan document (batches of steps, hooks, RTO gates) as the user reads it."""
    count = sum(len(b) for b in data["batches"])
    lines = [f"Runbook:  {data['runbook']} ({data['source']})",
             f"Config:   {data['config'] or '<none> (config references checked against the model only)'}",
             f"Steps:    {count} in {len(data['batches'])} batch(es); a step starts as soon as its needs are done"]
    for i, batch in enumerate(data["batches"], 1):
        lines.append(f"Batch {i}:")
        for s in batch:
            needs = ", ".join(n + (" (via ${steps." + n + "})" if n in s["implied_needs"] else "")
                              for n in s["needs"]) or "<none>"
            extras = [f"timeout {s['timeout']}"] if s["timeout"] else []
            extras += [f"retries {s['retries']}"] if s["retries"] else []
            extras += ["teardown in drills"] if s["teardown"] else []
            extras += ["ends the RTO"] if s["rto_end"] else []
            lines.append(f"  {s['id']}  ({s['type']})  needs: {needs}" + (f"  [{', '.join(extras)}]" if extras else ""))
            for key, value in s["with"].items():
                lines.append(f"      {key}: {value}")
    lines.append("Hooks:")
    lines += [f"  at {h['at']}: {h['id']} ({h['type']})" for h in data["hooks"]] or ["  <none>"]
    lines.append(f"RTO ends when these complete: {', '.join(data['rto_gates']) or '<none>'}")
    return "\n".join(lines)


def validated_text(path: str, runbook: Any, batches: int, config_checked: bool) -> str:
    note = "" if config_checked else " (no dr.yaml: config references checked against the model only)"
    return (f"{path}: valid: runbook {runbook.name}, {len(runbook.steps)} steps in {batches} "
            f"batch(es), {len(runbook.hooks)} hook(s){note}")


# -- a drill's or failover's outcome (`dr drill`, `dr restore --to-region`) ----------------------------


def _took(value: float | None, missing: str) -> str:
    return f"{value:.1f}s" if value is not None else missing


def failover_text(result: Any, measured: Any, again: str | None = None) -> str:
    """Each step's status and time, preemption, the RTOs and RPO against the objectives, and the
    command that continues the run when it stopped."""
    lines = [f"Run {result.run_id}: {result.status}" + (f" ({result.error})" if result.error else "")]
    for step in result.steps.values():
        took = f"{step.seconds:.1f}s" if step.seconds is not None else "-"
        lines.append(f"  {step.id:<14} {step.type:<18} {step.status:<11} {took:>8}"
                     + (f"  {step.error}" if step.error else ""))
        if step.hint and step.status != "completed":
            lines.append(f"  {'':<14} fix: {step.hint}")
    if result.preempted:
        p = result.preempted
        lines.append(f"Preempted drill {p.get('run_id')} (its lease was {p.get('state')}): it stops and tears "
                     "itself down" + ("" if p.get("state") == "live" else
                                      f"; it was not running: tear it down later with `dr drill --resume "
                                      f"{p.get('run_id')}`"))
    if result.preempted_by:
        lines.append(f"This drill was {result.preempted_by}; it tore down what it made.")
    if measured is not None:
        m = measured
        rpo = (f"{m.rpo_seconds:.0f}s (objective {m.rpo_objective_seconds:.0f}s)" if m.rpo_status == "measured"
               else f"{m.rpo_status} ({m.rpo_note})")
        lines.append(f"RTO: healthy in {result.region or 'the target region'} "
                     f"{_took(m.rto_seconds, '<not reached>')}, traffic moved "
                     f"{_took(m.rto_traffic_seconds, '<not reached>')} (objective "
                     f"{m.rto_objective_seconds:.0f}s); RPO {rpo}: "
                     + ("met" if m.met else "MISSED: " + "; ".join(m.missed())))
    if again:
        lines.append(f"To go on from where it stopped (from any machine): {again}")
    return "\n".join(lines)


# -- run records (`dr runs list|show`) ---------------------------------------------------------------


def runs_table(records: list) -> str:
    rows = [[r.run_id, r.kind, r.status, human_time(r.started_at), human_time(r.finished_at, "<running>"),
             str(len(r.results))] for r in records]
    return table(["RUN", "KIND", "STATUS", "STARTED", "FINISHED", "RESOURCES"], rows) \
        or "No runs recorded yet."


def run_record_text(rec: Any) -> str:
    """One run in full: each resource or step with its status, error and fix, and the measurements."""
    lines = [f"Run:      {rec.run_id}", f"Kind:     {rec.kind}", f"Status:   {rec.status}",
             f"Command:  {rec.command or '<none>'}", f"Started:  {human_time(rec.started_at)}",
             f"Finished: {human_time(rec.finished_at, '<running>')}", f"Error:    {rec.error or '<none>'}"]
    lines += _recovery_lines(rec.summary)
    lines.append("Resources:")
    for res in rec.results:
        lines.append(f"  {res.name} ({res.kind}): {res.status}")
        if res.error:
            lines.append(f"    error: {res.error}")
        if res.summary.get("hint"):
            lines.append(f"    fix: {res.summary['hint']}")
        for st in res.steps:
            lines.append(f"    {st.name:<14} {st.status:<11} {human_time(st.started_at)} -> "
                         f"{human_time(st.finished_at, '…')}  {st.detail or ''}".rstrip())
        for p in res.recovery_points:
            lines.append(f"    recovery point: {p['id']} in {p['region']} ({p['role']})")
    if not rec.results:
        lines.append("  <none>")
    return "\n".join(lines)


def _seconds(value) -> str:
    return f"{value:.1f}s" if isinstance(value, (int, float)) else "<not reached>"


def _recovery_lines(summary: dict) -> list[str]:
    """A drill's or failover's measurements: the two RTOs (healthy in the target region; traffic
    moved: DNS served everywhere plus the old TTL), the RPO, and preemption."""
    if "rto_seconds" not in summary and "rto_traffic_seconds" not in summary:
        return []
    lines = [f"RTO:      healthy {_seconds(summary.get('rto_seconds'))}, traffic moved "
             f"{_seconds(summary.get('rto_traffic_seconds'))}"
             + (f" (objective {summary['rto_objective_seconds']:.0f}s)"
                if isinstance(summary.get("rto_objective_seconds"), (int, float)) else "")]
    if isinstance(summary.get("rpo_seconds"), (int, float)):
        lines.append(f"RPO:      {summary['rpo_seconds']:.0f}s (objective {summary.get('rpo_objective_seconds', 0):.0f}s, "
                     f"recovery point {human_time(summary.get('recovery_point_time'), '<unknown>')})")
    if "met" in summary:
        lines.append(f"Met:      {'yes' if summary['met'] else 'NO'}")
    if summary.get("preempted"):
        lines.append(f"Preempted: drill {summary['preempted'].get('run_id')}")
    if summary.get("preempted_by"):
        lines.append(f"Stopped:  {summary['preempted_by']}")
    return lines
