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
                    "database and swapped in only once row counts and checksums match the "
                    "manifest (exit 3 if not; the target is then unchanged). The password comes "
                    "from $DR_RESTORE_PASSWORD (or the URI).\n\nExample:\n"
                    "  export DR_RESTORE_PASSWORD=...\n"
                    "  dr restore mysql --name office-lamp --to mysql://root@127.0.0.1:3306/app_restored",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="the mysql entry in dr.yaml")
    p.add_argument("--backup", metavar="ID", help="a backup id (default: the newest)")
    p.add_argument("--to", required=True, metavar="URI", help="mysql://user@host:port/DB")
    p.add_argument("--database", help="which database of a multi-database backup")
    p.add_argument("--force", action="store_true", help="replace a non-empty target database")
    p.add_argument("--allow-mismatch", action="append", default=[], metavar="TABLE",
                   help="restore even though TABLE (or DATABASE.TABLE) does not match the "
                        "backup's row count, checksum or sequence state; repeatable. Every "
                        "other table must still match, and what was allowed is reported")
    p.add_argument("--keep-definers", action="store_true",
                   help="create views, routines, triggers and events with their original "
                        "DEFINER (the restoring account needs SUPER or SET USER); by default "
                        "the restoring account becomes their definer, and each one that runs "
                        "with its definer's privileges is named in a warning")
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
    chosen, result = mysql.restore(ctx, resource, to_uri=args.to, backup=args.backup,
                                   database=args.database, force=args.force,
                                   password=os.environ.get("DR_RESTORE_PASSWORD"),
                                   allow_mismatch=tuple(args.allow_mismatch),
                                   keep_definers=args.keep_definers)
    targets = ", ".join(f"{s} -> {t}" for s, t in result.databases.items())
    allowed = list(result.allowed_mismatches)
    other = [m for m in result.mismatches if m not in allowed]
    checks = ("checksums match" if not result.mismatches else
              f"{len(result.mismatches)} check(s) differ" if other else
              f"checksums match except the {len(allowed)} allowed mismatch(es) below")
    lines = [f"Restored backup {chosen.id} ({short_time(chosen.created)}) as {targets}: "
             f"{result.rows} rows in {len(result.tables)} tables, {checks}; "
             f"{result.seconds:.1f}s (load {result.load_seconds:.1f}s, verify "
             f"{result.verify_seconds:.1f}s)."]
    if allowed:
        lines.append(f"WARNING: restored although {len(allowed)} check(s) failed, allowed with "
                     "--allow-mismatch; these tables do NOT match the backup:")
        lines += [f"  MISMATCH {m}" for m in allowed]
    lines += [f"  {m}" for m in other]
    lines += [f"WARNING: {w}" for w in result.warnings]
    data = {"backup_id": chosen.id, "databases": result.databases, "rows": result.rows,
            "tables": len(result.tables), "seconds": result.seconds,
            "mismatches": result.mismatches, "allowed_mismatches": allowed,
            "warnings": list(result.warnings), "keep_definers": args.keep_definers}
    return Outcome(data=data, text="\n".join(lines), exit_code=3 if other else 0)


def _dispatch(args: argparse.Namespace, app):
    from dr.errors import UsageError

    if getattr(args, "verb", None) == "mysql":
        return mysql_restore(args, app)
    if args.to_region is None:
        raise UsageError("dr restore needs --to-region REGION (or a kind, e.g. dr restore mysql)")
    return drill.restore_region(args, app)
