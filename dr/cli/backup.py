"""`dr backup run|list|prune`."""

from __future__ import annotations

import argparse
from textwrap import indent

from dr.cli.app import App, Outcome, human_age, short_key, short_time, table
from dr.errors import EXIT_FAILED


def register(sub) -> None:
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
    run_p.add_argument("--only", choices=("rds", "s3", "mysql"), help="one kind of resource")
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
    from dr.backup.service import run_backup

    ctx = app.context()
    outcome = run_backup(ctx, only=args.only, name=args.name, dry_run=args.dry_run)
    lines = []
    if outcome.dry_run:
        lines.append("Plan (dry run: nothing was changed)")
    for item in outcome.plan:
        lines.append(f"  {item.name}: {item.kind.label} {item.source_id}, slot "
                     f"{short_time(item.slot)}")
        if item.blocked and outcome.dry_run:  # a run records it as the result's error
            lines.append(indent(f"cannot back up: {item.blocked}", "    "))
        lines += [f"    - {a}" for a in item.actions]
        lines += [f"    note: {n}" for n in item.notes]
    for item in outcome.s3_plan:
        lines.append(f"  {item.name}: s3://{item.source}/{item.prefix} -> "
                     f"s3://{item.destination}/{item.prefix}")
        if item.blocked and outcome.dry_run:  # a run records it as the result's error
            lines.append(indent(f"cannot back up: {item.blocked}", "    "))
        lines += [f"    - {a}" for a in item.actions]
    for item in outcome.mysql_plan:
        lines.append(f"  {item['name']}: mysql {', '.join(item['databases'])} -> "
                     f"{item['destination']} as {item['backup_id']}")
        if item["blocked"] and outcome.dry_run:  # a run records it as the result's error
            lines.append(indent(f"cannot back up: {item['blocked']}", "    "))
        lines += [f"    - {a}" for a in item["actions"]]
    if not outcome.plan and not outcome.s3_plan and not outcome.mysql_plan:
        lines.append("Nothing to back up: dr.yaml has no rds, s3 or mysql entries.")
    code = 0
    blocked = [i.name for i in (*outcome.plan, *outcome.s3_plan) if i.blocked] + \
        [i["name"] for i in outcome.mysql_plan if i["blocked"]]
    if outcome.dry_run and blocked:
        total = len(outcome.plan) + len(outcome.s3_plan) + len(outcome.mysql_plan)
        lines.append(f"{len(blocked)} of {total} resource(s) cannot be backed up "
                     f"({', '.join(blocked)}): a run now would fail for them.")
        code = EXIT_FAILED
    lines += cleanup_lines(outcome.cleanup)
    if outcome.record is not None:
        rec = outcome.record
        lines.append(f"Run {rec.run_id}: {rec.status}")
        for res in rec.results:
            copy = next((p for p in res.recovery_points if p["role"] == "copy"), None)
            if res.kind == "mysql":
                sm = res.summary
                where = (f" -> {sm['backup_id']}: {sm.get('rows')} rows, {sm.get('stored_bytes')} "
                         f"bytes stored" if sm.get("backup_id") else "")
            elif res.kind == "s3":
                sm = res.summary
                where = (f": {sm.get('copied', 0)} copied ({sm.get('copied_bytes', 0)} bytes), "
                         f"{sm.get('skipped_in_sync', 0)} in sync, {sm.get('failed', 0)} failed"
                         if sm else "")
            else:
                where = f" -> {copy['id']} in {copy['region']}" if copy else ""
            lines.append(f"  {res.name}: {res.status}{where}")
            if res.error:
                lines.append(indent(res.error, "    "))
        if rec.status != "completed":
            code = EXIT_FAILED
        else:
            lines.append("Next: `dr backup list` shows every recovery point and its age.")
    return Outcome(data=outcome.to_dict(), text="\n".join(lines), exit_code=code)


def list_(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.service import listing
    from dr.clock import parse_iso

    ctx = app.context()
    now = ctx.clock.now()
    found = listing(ctx, args.name)
    shown = [p for p in found.points if args.all or p.managed]
    rows = [[p.resource, p.region, p.role, p.id, short_time(p.created),
             human_age(now - p.created if p.created else None), p.status,
             short_key(p.kms_key_id) if p.encrypted else "NOT ENCRYPTED"] for p in shown]
    parts = []
    if rows:
        parts.append(table(["RESOURCE", "REGION", "ROLE", "ID", "CREATED", "AGE", "STATUS", "KEY"],
                           rows))
    hidden = len(found.points) - len(shown)
    if hidden:
        parts.append(f"({hidden} manual snapshot(s) not made by dr are not shown: --all shows them)")
    s3_rows = []
    for m in found.s3_runs:
        newest = m.get("newest_source_modified")
        s3_rows.append([m["name"], m["run_id"], m.get("status", "?"),
                        human_age(now - parse_iso(m["finished_at"])) if m.get("finished_at")
                        else "<running>",
                        str(m.get("copied", 0)), str(m.get("skipped_in_sync", 0)),
                        str(m.get("failed", 0)), str(m.get("copied_bytes", 0)),
                        human_age(now - parse_iso(newest)) if newest else "<never>"])
    my_rows, my_data = [], []
    for b in found.mysql_backups:
        check = found.verifications.get(b.resource, {}).get(b.id)
        my_rows.append([b.resource, b.id, short_time(b.created), human_age(now - b.created),
                        str(b.manifest.get("stored_bytes")),
                        str(b.manifest.get("dump", {}).get("rows")),
                        b.manifest.get("encryption", {}).get("kind", "?"), _verified_cell(check)])
        my_data.append({"resource": b.resource, "id": b.id, "created": b.created.isoformat(),
                        "stored_bytes": b.manifest.get("stored_bytes"),
                        "rows": b.manifest.get("dump", {}).get("rows"), "verification": check})
    if my_rows:
        parts.append(table(["MYSQL", "BACKUP", "CREATED", "AGE", "STORED-BYTES", "ROWS", "KEY",
                            "VERIFIED"], my_rows))
    if s3_rows:
        parts.append(table(["S3", "RUN", "STATUS", "AGE", "COPIED", "IN-SYNC", "FAILED", "BYTES",
                            "NEWEST-CHANGE-COPIED"], s3_rows))
    if not parts and not found.failed:
        parts.append("No recovery points yet: run `dr backup run`.")
    if found.failed:
        parts.append("COULD NOT LIST (everything else is shown):\n" + "\n".join(
            indent(f"{name}: {error}", "  ") for name, error in found.failed.items()))
    return Outcome(data={"now": now.isoformat(), "recovery_points": [p.to_dict(now) for p in shown],
                         "s3_runs": found.s3_runs, "mysql_backups": my_data,
                         "failed": found.failed},
                   text="\n\n".join(parts), exit_code=EXIT_FAILED if found.failed else 0)


def _verified_cell(check: dict | None) -> str:
    """`yes 2030-01-02 03:04:05 UTC`, `FAILED 2030-...`, or `no` (not verified yet)."""
    from dr.clock import parse_iso_or_none

    if not check:
        return "no"
    at = parse_iso_or_none(check.get("at"))
    verdict = "yes" if check.get("status") == "verified" else "FAILED"
    return f"{verdict} {short_time(at)}" if at else verdict


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

    if args.backup and not args.name:
        raise UsageError("--backup needs --name: the backup of which resource?")
    results = verify_service(app.context(), args.name, backup=args.backup, deep=args.deep)
    lines = []
    for name, result in results.items():
        if hasattr(result, "lines"):  # mysql
            lines.append(f"{name}: {'OK' if result.ok else 'FAILED'}")
            lines += result.lines()
            continue
        state = "OK" if result.ok else "DIFFERENT"
        lines.append(f"{name}: {state}: {result.same} in sync, {result.missing} missing, "
                     f"{result.different} different, {result.extra} only in the DR bucket")
        lines += [f"  {e}" for e in result.examples]
        if result.deep is not None:
            d = result.deep
            lines.append(f"  deep: {d.checked} object(s) checked (headers, metadata, tags, DR key): "
                         f"{d.different} different"
                         + (f", {d.skipped} changed at the source while checking" if d.skipped else ""))
            lines += [f"    {e}" for e in d.examples]
    ok = all(r.ok for r in results.values())
    return Outcome(data={n: r.to_dict() for n, r in results.items()}, text="\n".join(lines),
                   exit_code=0 if ok else EXIT_BREACH)


def prune(args: argparse.Namespace, app: App) -> Outcome:
    from dr.backup.service import prune as prune_service

    ctx = app.context()
    outcome = prune_service(ctx, name=args.name, dry_run=args.dry_run)
    now = ctx.clock.now()
    verb = "would delete" if outcome.dry_run else "delete"
    rows = [[d.point.resource, d.point.region, d.point.id,
             human_age(now - d.point.created if d.point.created else None),
             "keep" if d.keep else verb, "; ".join(d.reasons)] for d in outcome.decisions]
    lines = ["Prune plan (dry run: nothing was deleted)" if outcome.dry_run else "Prune"]
    if rows or not outcome.mysql:
        lines.append(table(["RESOURCE", "REGION", "ID", "AGE", "ACTION", "WHY"], rows)
                     or "No recovery points made by dr.")
    if outcome.mysql:
        lines.append(table(["MYSQL", "BACKUP", "CREATED", "ACTION", "WHY"],
                           [[m["resource"], m["id"],
                             short_time(m["created"] or None),
                             m["action"] if m["action"] == "keep" else verb,
                             "; ".join(m["reasons"])] for m in outcome.mysql]))
    if outcome.unmanaged:
        lines.append(f"{len(outcome.unmanaged)} snapshot(s) not made by dr: never touched.")
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
