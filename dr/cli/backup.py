"""`dr backup run|list|verify|prune`: parse, call dr.backup.service, render with dr.render.backup."""

from __future__ import annotations

import argparse
from textwrap import indent

from dr.cli.app import App, Outcome, human_age, short_key, short_time, table
from dr.errors import EXIT_FAILED


def register(sub) -> None:
    from dr.backup.kinds import KINDS
    from dr.cli import describe

    p = sub.add_parser("backup", help="back up, list recovery points, verify, prune", description=describe(
        "Scheduled, encrypted, off-site copies: take them now (run), list every recovery point in both "
        "regions (list), check them against their sources (verify), apply retention (prune).",
        "dr backup run --dry-run", "dr backup list", "dr backup verify --name office-lamp",
        "dr backup prune --dry-run"))
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    run_p = verbs.add_parser(
        "run", help="one backup pass now",
        description="One backup pass over dr.yaml: snapshot each RDS instance or Aurora cluster and copy "
                    "it to the DR region under kms.dr_key; copy each S3 bucket's new and changed objects "
                    "to its DR bucket; dump, compress and encrypt each MySQL server to its destination. "
                    "Every run is recorded (dr runs list).\n\nExample:\n"
                    "  dr backup run --dry-run\n  dr backup run --only mysql\n  dr backup run --name app-db",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run_p.add_argument("--only", choices=tuple(KINDS), help="one kind of resource")
    run_p.add_argument("--name", help="one resource by its dr.yaml name")
    run_p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    run_p.set_defaults(handler=run)

    list_p = verbs.add_parser("list", help="recovery points in both regions, newest first", description=describe(
        "Every recovery point dr made, in both regions, newest first, with its age: RDS snapshots and "
        "their DR copies, S3 copy runs, MySQL backups.", "dr backup list", "dr backup list --name app-db --all"))
    list_p.add_argument("--name", help="one resource by its dr.yaml name")
    list_p.add_argument("--all", action="store_true",
                        help="also show manual snapshots dr did not make")
    list_p.set_defaults(handler=list_)

    verify_p = verbs.add_parser(
        "verify", help="check the DR copies against their sources (exit 3 if any differ)",
        description=describe(
            "S3: compare both listings now and report objects missing or different in the DR "
            "region. With --deep, also read the headers and tags of both sides of a random "
            "sample of the objects in sync (or of all of them) and compare size, content "
            "headers, user metadata, tags, and that the copy is under the DR key.\n\n"
            "MySQL: restore a backup (default: the newest) into a scratch database on "
            "mysql[].verify, compare row counts and checksums with its manifest, drop it, and "
            "record the backup as verified or failed (`dr backup list` shows it; `dr schedule` "
            "does it every mysql[].verify.every).",
            "dr backup verify --name assets", "dr backup verify --name assets --deep all",
            "dr backup verify --name office-lamp --backup office-lamp-20300101-1000"))
    verify_p.add_argument("--name", help="one resource by its dr.yaml name")
    verify_p.add_argument("--backup", metavar="ID",
                          help="MySQL: this backup instead of the newest (needs --name)")
    verify_p.add_argument("--deep", metavar="N|all", nargs="?", const="100", type=_deep_sample,
                          help="S3: also compare headers, metadata, tags and KMS key of N objects "
                               "in sync chosen at random (default 100), or of all of them")
    verify_p.set_defaults(handler=verify)

    prune_p = verbs.add_parser("prune", help="apply retention; prints what is kept and why", description=describe(
        "Apply each resource's retention: keep what the policy keeps (never the newest good copy, "
        "never what dr did not make), delete the rest, and say why for each.", "dr backup prune --dry-run",
        "dr backup prune --name app-db"))
    prune_p.add_argument("--name", help="one resource by its dr.yaml name")
    prune_p.add_argument("--dry-run", action="store_true", help="print decisions; delete nothing")
    prune_p.set_defaults(handler=prune)


def run(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.kinds import KINDS
    from dr.backup.service import run_backup
    from dr.render.backup import plan_lines, result_lines

    ctx = app.context()
    outcome = run_backup(ctx, only=args.only, name=args.name, dry_run=args.dry_run)
    lines = plan_lines(outcome.plan, outcome.dry_run)
    if not outcome.plan:
        names = list(KINDS)
        lines.append(f"Nothing to back up: dr.yaml has no {', '.join(names[:-1])} or {names[-1]} "
                     "entries.")
    code = 0
    blocked = [i.name for i in outcome.plan if i.blocked]
    if outcome.dry_run and blocked:
        lines.append(f"{len(blocked)} of {len(outcome.plan)} resource(s) cannot be backed up "
                     f"({', '.join(blocked)}): a run now would fail for them.")
        code = EXIT_FAILED
    lines += cleanup_lines(outcome.cleanup)
    if outcome.record is not None:
        kinds = {item.name: KINDS[item.kind] for item in outcome.plan}
        lines += result_lines(outcome.record, lambda res: kinds[res.name].result_line(res))
        if outcome.record.status != "completed":
            code = EXIT_FAILED
        else:
            lines.append("Next: `dr backup list` shows every recovery point and its age.")
    return Outcome(data=outcome.to_dict(), text="\n".join(lines), exit_code=code)


def list_(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.service import listing

    ctx = app.context()
    now = ctx.clock.now()
    found = listing(ctx, args.name)
    parts, data = [], {"now": now.isoformat()}
    for t in found.tables(now, args.all):
        if t.rows:
            parts.append(table(list(t.headers), [[_cell(c) for c in row] for row in t.rows]))
        parts += t.notes
        data[t.key] = t.data
    if not parts and not found.failed:
        parts.append("No recovery points yet: run `dr backup run`.")
    if found.failed:
        parts.append("COULD NOT LIST (everything else is shown):\n" + "\n".join(
            indent(f"{name}: {error}", "  ") for name, error in found.failed.items()))
    data["failed"] = found.failed
    return Outcome(data=data, text="\n\n".join(parts),
                   exit_code=EXIT_FAILED if found.failed else 0)


def _cell(value, verb: str = "delete") -> str:
    """A table cell as text: ages, times, keys and prune actions each in their one format."""
    from dr.backup.plan import Age, KeyCell, Verb, When

    if isinstance(value, Age):
        return human_age(value.delta)
    if isinstance(value, When):
        return short_time(value.at)
    if isinstance(value, KeyCell):
        return short_key(value.key_id) if value.encrypted else "NOT ENCRYPTED"
    if isinstance(value, Verb):
        return "keep" if value.keep else verb
    if isinstance(value, tuple):
        return " ".join(_cell(v, verb) for v in value)
    return str(value)


def _deep_sample(text: str) -> int | str:
    """`--deep N` (N >= 1) or `--deep all`."""
    if text == "all":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: give a number of objects (e.g. 100) or 'all'")


def verify(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.service import verify as verify_service
    from dr.errors import EXIT_BREACH, UsageError
    from dr.render.backup import verify_lines

    if args.backup and not args.name:
        raise UsageError("--backup needs --name: the backup of which resource?")
    results = verify_service(app.context(), args.name, backup=args.backup, deep=args.deep)
    lines = [line for name, result in results.items() for line in verify_lines(name, result)]
    ok = all(r.ok for r in results.values())
    return Outcome(data={n: r.to_dict() for n, r in results.items()}, text="\n".join(lines),
                   exit_code=0 if ok else EXIT_BREACH)


def prune(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.service import prune as prune_service

    ctx = app.context()
    outcome = prune_service(ctx, name=args.name, dry_run=args.dry_run)
    now = ctx.clock.now()
    verb = "would delete" if outcome.dry_run else "delete"
    lines = ["Prune plan (dry run: nothing was deleted)" if outcome.dry_run else "Prune"]
    shown = [table(list(t.headers), [[_cell(c, verb) for c in row] for row in t.rows])
             for t in outcome.tables if t.rows]
    lines += shown or ["No recovery points made by dr."]
    lines += [note for t in outcome.tables for note in t.footer]
    lines += cleanup_lines(outcome.cleanup)
    if not outcome.dry_run:
        lines.append(f"Deleted {len(outcome.deleted)}; failed {len(outcome.failed)}.")
        lines += [f"  {k}: {v}" for k, v in outcome.failed.items()]
    return Outcome(data=outcome.to_dict(now), text="\n".join(lines),
                   exit_code=EXIT_FAILED if outcome.failed else 0)


def cleanup_lines(cleanup) -> list[str]:
    """What was left by runs that never finished, and what was done about it."""
    if not cleanup:
        return []
    return ["Leftovers of interrupted runs:"] + [f"  {c.line()}" for c in cleanup]
