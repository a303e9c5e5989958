"""`dr runs list|show`: the records every run leaves in the state store."""

from __future__ import annotations

import argparse

from dr.cli.app import App, Outcome
from dr.render.runbook import run_record_text, runs_table


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
    return Outcome(data=[r.to_dict() for r in records], text=runs_table(records))


def show(args: argparse.Namespace, app: App) -> Outcome:
    rec = app.context().runs.load(args.run_id)
    return Outcome(data=rec.to_dict(), text=run_record_text(rec))
