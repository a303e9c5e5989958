"""Text for `dr backup run|verify`: the plan (one loop over PlanItems, whatever the kind), the
run's results, and each kind's verification outcome."""

from __future__ import annotations

from textwrap import indent


def plan_lines(plan, dry_run: bool) -> list[str]:
    lines = ["Plan (dry run: nothing was changed)"] if dry_run else []
    for item in plan:
        lines.append(f"  {item.name}: {item.summary}")
        if item.blocked and dry_run:  # a run records it as the result's error
            lines.append(indent(f"cannot back up: {item.blocked}", "    "))
        lines += [f"    - {a}" for a in item.actions]
        lines += [f"    note: {n}" for n in item.notes]
    return lines


def result_lines(record, line_for) -> list[str]:
    """`line_for(result)`: what the result's kind says it did (BackupKind.result_line)."""
    lines = [f"Run {record.run_id}: {record.status}"]
    for res in record.results:
        lines.append(f"  {res.name}: {res.status}{line_for(res)}")
        if res.error:
            lines.append(indent(res.error, "    "))
    return lines


def verify_lines(name: str, result) -> list[str]:
    from dr.backup.kinds.mysql import MysqlVerify

    if isinstance(result, MysqlVerify):
        return [f"{name}: {'OK' if result.ok else 'FAILED'}"] + mysql_verify_lines(result.found)
    state = "OK" if result.ok else "DIFFERENT"
    lines = [f"{name}: {state}: {result.same} in sync, {result.missing} missing, "
             f"{result.different} different, {result.extra} only in the DR bucket"]
    lines += [f"  {e}" for e in result.examples]
    if result.deep is not None:
        d = result.deep
        lines.append(f"  deep: {d.checked} object(s) checked (headers, metadata, tags, DR key): "
                     f"{d.different} different"
                     + (f", {d.skipped} changed at the source while checking" if d.skipped else ""))
        lines += [f"    {e}" for e in d.examples]
    return lines


def mysql_verify_lines(found: dict) -> list[str]:
    """One MySQL verification: the backup, how long its restore took, each database's counts."""
    if "error" in found:
        head = f"  backup {found['backup_id']}: " if found.get("backup_id") else "  "
        tail = (f"\n  recorded as {found['verdict']}" if found.get("verdict") else
                "\n  the backup stays unverified: this attempt could not judge it"
                if found.get("backup_id") else "")
        return [f"{head}{found['error']}{tail}"]
    out = [f"  backup {found['backup_id']} ({found['created']}) restored in "
           f"{found['restore_seconds']}s (the whole verification: "
           f"{found.get('verify_seconds')}s); recorded as "
           f"{found.get('verdict') or 'not judged'}"]
    for db, r in found["databases"].items():
        out.append(f"  {db}: {r['tables']} tables, {r['rows']} rows, "
                   + (r.get("checked", "row counts match") if r["ok"]
                      else "; ".join(r["mismatches"])))
    return out
