"""`dr restore --to-region REGION` (failover) and `dr restore mysql` (a logical backup)."""

from __future__ import annotations

import argparse

from dr.cli import drill


def register(sub) -> None:
    p = sub.add_parser(
        "restore", help="fail over to the DR region, or restore a MySQL backup",
        description="Fail over for real: runbooks/failover.yaml restores the newest copy in the DR "
                    "region, relaunches the stack there, waits for health and moves DNS. Prints "
                    "the plan and asks first (or --yes). Refuses when the newest copy is older "
                    "than the RPO objective unless --accept-data-loss.\n\nExample:\n"
                    "  dr restore --to-region us-west-2 --dry-run\n"
                    "  dr restore --to-region us-west-2 --yes\n"
                    "  dr restore --resume failover-20261126T130000Z-3f9a --to-region us-west-2 --yes\n"
                    "  dr restore --failback --to-region us-east-1 --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    drill.register_restore(p)
    p.set_defaults(handler=_dispatch)
    verbs = p.add_subparsers(dest="verb", metavar="KIND")
    verbs.required = False
    register_mysql(verbs)


def register_mysql(verbs) -> None:
    p = verbs.add_parser(
        "mysql", help="restore a MySQL logical backup",
        description="Fetch, authenticate, decompress and load a backup into a database that does "
                    "not exist or is empty (--force replaces it); it is loaded into a staging "
                    "database and swapped in only once the row counts, the content and the "
                    "sequences match the backup (CHECKSUM TABLE between servers of one version, "
                    "else a content hash computed the same way on both sides); exit 3 if not, "
                    "and the target is then unchanged. --allow-mismatch TABLE lets named tables "
                    "through anyway (the swap happens only if every mismatch is allowed, and "
                    "each is reported). Objects get the restoring account as their DEFINER "
                    "(a warning names those that run with their definer's privileges), or their "
                    "original one with --keep-definers. The swap is journaled on the server: if "
                    "dr or the server dies during it, running the same command again (or "
                    "--resume) first finishes it (when every new table was in place) or rolls it "
                    "back exactly. The password comes from $DR_RESTORE_PASSWORD (or the URI)."
                    "\n\nExample:\n"
                    "  export DR_RESTORE_PASSWORD=...\n"
                    "  dr restore mysql --name office-lamp --to mysql://root@127.0.0.1:3306/app_restored\n"
                    "  dr restore mysql --name office-lamp --to mysql://root@127.0.0.1:3306/"
                    "app_restored --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the mysql entry in dr.yaml")
    p.add_argument("--backup", metavar="ID", help="a backup id (default: the newest)")
    p.add_argument("--to", required=True, metavar="URI", help="mysql://user@host:port/DB")
    p.add_argument("--database", help="which database of a multi-database backup")
    p.add_argument("--force", action="store_true", help="replace a non-empty target database")
    p.add_argument("--allow-mismatch", action="append", default=[], metavar="TABLE",
                   help="restore even though TABLE (or DATABASE.TABLE) does not match the "
                        "backup's row count, checksum or content hash, or sequence state; "
                        "repeatable. Every other table must still match, and what was allowed "
                        "is reported")
    p.add_argument("--keep-definers", action="store_true",
                   help="create views, routines, triggers and events with their original "
                        "DEFINER (the restoring account needs SUPER or SET USER); by default "
                        "the restoring account becomes their definer, and each one that runs "
                        "with its definer's privileges is named in a warning")
    p.add_argument("--resume", dest="resume_swap", action="store_true",
                   help="only settle a restore into --to that a crash interrupted during its swap: "
                        "finish it if every new table is in place (exit 0), else roll it back "
                        "(exit 1, the target as it was before); reads no backup")
    p.set_defaults(handler=mysql_restore)


def mysql_restore(args: argparse.Namespace, app):
    import os

    from dr.backup import mysql
    from dr.cli.app import Outcome, short_time
    from dr.errors import UsageError

    ctx = app.context()
    resource = next((m for m in ctx.config.mysql if m.name == args.name), None)
    if resource is None:
        known = ", ".join(m.name for m in ctx.config.mysql) or "none"
        raise UsageError(f"no mysql entry named {args.name!r} (known: {known})")
    password = os.environ.get("DR_RESTORE_PASSWORD")
    if args.resume_swap:
        return _resume(mysql.resume(ctx, resource, to_uri=args.to, database=args.database,
                                    password=password), args)
    chosen, result = mysql.restore(ctx, resource, to_uri=args.to, backup=args.backup,
                                   database=args.database, force=args.force, password=password,
                                   allow_mismatch=tuple(args.allow_mismatch),
                                   keep_definers=args.keep_definers)
    targets = ", ".join(f"{s} -> {t}" for s, t in result.databases.items())
    checked = result.check_summary()
    if result.resumed:  # a rerun found this very restore interrupted after its tables were swapped
        lines = [f"Finished the interrupted restore of backup {chosen.id} "
                 f"({short_time(chosen.created)}) as {targets}: {result.rows} rows in "
                 f"{len(result.tables)} tables; {checked} (checked before the swap)."]
    else:
        lines = [f"Restored backup {chosen.id} ({short_time(chosen.created)}) as {targets}: "
                 f"{result.rows} rows in {len(result.tables)} tables; {checked}; "
                 f"{result.seconds:.1f}s (load {result.load_seconds:.1f}s, verify "
                 f"{result.verify_seconds:.1f}s)."]
    allowed = list(result.allowed_mismatches)
    if allowed:
        lines.append(f"WARNING: restored although {len(allowed)} check(s) failed, allowed with "
                     "--allow-mismatch; these tables do NOT match the backup:")
        lines += [f"  MISMATCH {m}" for m in allowed]
    lines += [f"WARNING: {w}" for w in result.warnings]
    data = {"backup_id": chosen.id, "databases": result.databases, "rows": result.rows,
            "tables": len(result.tables), "seconds": result.seconds, "checked": checked,
            "unverified": result.unverified, "mismatches": result.mismatches,
            "allowed_mismatches": allowed, "warnings": list(result.warnings),
            "keep_definers": args.keep_definers, "resumed": result.resumed}
    # a mismatch that is not allowed never gets here: it raises VerificationFailed (exit 3)
    # before the target is touched, so exit 3 always means the target is unchanged; the
    # allowed ones (the swap went ahead) are listed above
    return Outcome(data=data, text="\n".join(lines), exit_code=0)


def _resume(settled: list, args: argparse.Namespace):
    from dr.cli.app import Outcome
    from dr.errors import EXIT_FAILED, EXIT_OK

    if not settled:
        return Outcome(data={"resumed": []}, text=f"No unfinished restore into {args.to}: "
                                                  "nothing to do.")
    lines = [r.describe()[0].upper() + r.describe()[1:] + "." for r in settled]
    back = [r for r in settled if r.outcome != "finished"]
    if back:
        lines.append("Run the restore again without --resume to restore the backup.")
    data = {"resumed": [{"target": r.target, "outcome": r.outcome, "phase": r.phase,
                         "started_at": r.started_at, "backup": r.note.get("label")}
                        for r in settled]}
    return Outcome(data=data, text="\n".join(lines), exit_code=EXIT_FAILED if back else EXIT_OK)


def _dispatch(args: argparse.Namespace, app):
    from dr.errors import UsageError

    if getattr(args, "verb", None) == "mysql":
        return mysql_restore(args, app)
    if args.to_region is None:
        raise UsageError("dr restore needs --to-region REGION (or a kind, e.g. dr restore mysql)")
    return drill.restore_region(args, app)
