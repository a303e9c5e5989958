"""`dr runs list|show`: the records every run leaves in the state store."""

from __future__ import annotations

import argparse

from dr.cli.app import App, Outcome, table


def register(sub) -> None:
    p = sub.add_parser("runs", help="journals of past runs")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    lp = verbs.add_parser("list", help="past runs, newest first")
    lp.add_argument("--kind", help="only runs of this kind (backup, prune, ...)")
    lp.add_argument("--limit", type=int, default=20)
    lp.set_defaults(handler=list_)
    sp = verbs.add_parser("show", help="one run in full")
    sp.add_argument("run_id")
    sp.set_defaults(handler=show)


def list_(args: argparse.Namespace, app: App) -> Outcome:
    records = app.context().runs.list(kind=args.kind, limit=args.limit)
    rows = [[r.run_id, r.kind, r.status, r.started_at, r.finished_at or "<running>",
             str(len(r.results))] for r in records]
    text = table(["RUN", "KIND", "STATUS", "STARTED", "FINISHED", "RESOURCES"], rows) \
        or "No runs recorded yet."
    return Outcome(data=[r.to_dict() for r in records], text=text)


def show(args: argparse.Namespace, app: App) -> Outcome:
    rec = app.context().runs.load(args.run_id)
    lines = [f"Run:      {rec.run_id}", f"Kind:     {rec.kind}", f"Status:   {rec.status}",
             f"Command:  {rec.command or '<none>'}", f"Started:  {rec.started_at}",
             f"Finished: {rec.finished_at or '<running>'}", f"Error:    {rec.error or '<none>'}",
             "Resources:"]
    for res in rec.results:
        lines.append(f"  {res.name} ({res.kind}): {res.status}")
        if res.error:
            lines.append(f"    error: {res.error}")
        for st in res.steps:
            lines.append(f"    {st.name:<14} {st.status:<11} {st.started_at} -> "
                         f"{st.finished_at or '…'}  {st.detail or ''}".rstrip())
        for p in res.recovery_points:
            lines.append(f"    recovery point: {p['id']} in {p['region']} ({p['role']})")
    if not rec.results:
        lines.append("  <none>")
    return Outcome(data=rec.to_dict(), text="\n".join(lines))
