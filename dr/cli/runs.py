"""`dr runs list|show`: the records every run leaves in the state store."""

from __future__ import annotations

import argparse

from dr.cli.app import App, Outcome, table
from dr.render import human_time


def register(sub) -> None:
    from dr.cli import describe

    p = sub.add_parser("runs", help="journals of past runs", description=describe(
        "What every run did (backups, prunes, verifies, drills, failovers): its status, steps, errors, "
        "and for a drill or failover the two RTOs and the RPO. Records live in the state store.",
        "dr runs list --kind drill", "dr runs show drill-20261126T130000Z-3f9a"))
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    lp = verbs.add_parser("list", help="past runs, newest first", description=describe(
        "Past runs, newest first: id, kind, status, start and end, how many resources or steps.",
        "dr runs list", "dr runs list --kind failover --limit 5"))
    lp.add_argument("--kind", help="only runs of this kind (backup, prune, verify, drill, failover, ...)")
    lp.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    lp.set_defaults(handler=list_)
    sp = verbs.add_parser("show", help="one run in full", description=describe(
        "One run in full: each resource or step with its status, error and fix, and for a drill or "
        "failover the RTO (healthy, traffic moved) and the RPO.", "dr runs show failover-20261126T140000Z-3f9a"))
    sp.add_argument("run_id")
    sp.set_defaults(handler=show)


def list_(args: argparse.Namespace, app: App) -> Outcome:
    records = app.context().runs.list(kind=args.kind, limit=args.limit)
    rows = [[r.run_id, r.kind, r.status, human_time(r.started_at), human_time(r.finished_at, "<running>"),
             str(len(r.results))] for r in records]
    text = table(["RUN", "KIND", "STATUS", "STARTED", "FINISHED", "RESOURCES"], rows) \
        or "No runs recorded yet."
    return Outcome(data=[r.to_dict() for r in records], text=text)


def show(args: argparse.Namespace, app: App) -> Outcome:
    rec = app.context().runs.load(args.run_id)
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
    return Outcome(data=rec.to_dict(), text="\n".join(lines))


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
