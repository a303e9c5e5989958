"""`dr mongo status` for people: one replica set's report, several sets, a --watch poll's changes."""

from __future__ import annotations

from dr.mongo.model import SEVERITIES, MemberView, MongoReport, RegionLoss
from dr.render import human_time
from dr.render.text import duration_text, indent, short_time, table

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def report_text(report: MongoReport) -> str:
    """Members, regions (what losing each leaves), findings worst first, and the verdict."""
    label = "  [SIMULATED members, not a real deployment]" if report.simulated else ""
    lines = [f"{report.name}: replica set {report.set_name or '<unnamed>'}, primary region "
             f"{report.primary_region}{label}",
             f"checked {short_time(report.checked_at)} (status read from {report.source or '<none>'})",
             "", "Members:", indent(_member_table(report)), "",
             "Regions (what losing each one leaves):", indent(_region_table(report)), "",
             "Findings:"]
    ordered = sorted(report.findings, key=lambda f: -_RANK[f.severity])
    for f in ordered:
        tag = f.severity.upper() if f.severity != "ok" else "ok"
        lines.append(f"  {tag:<8}  {f.code}: {f.reason}")
        if f.fix and f.severity != "ok":
            lines.append(f"  {'':<8}  fix: {f.fix}")
    if not ordered:
        lines.append("  <none>")
    c = report.counts()
    lines += ["", f"Result: {report.worst} ({c['critical']} critical, "
                  f"{c['warning']} warning{'' if c['warning'] == 1 else 's'}); "
                  f"survives the loss of {report.survivable_region_losses} of "
                  f"{len(report.region_losses)} regions."]
    return "\n".join(lines)


def results_text(results) -> str:
    """Each set's report, or the one line saying why its check failed."""
    return "\n\n".join(report_text(r.report) if r.report else f"{r.name}: check failed: {r.error}"
                       for r in results)


def poll_text(poll) -> str:
    """A --watch poll after the first: what changed since the previous one."""
    stamp = human_time(poll.checked_at)
    worst = ", ".join(f"{r.name} {r.worst or 'check failed'}" for r in poll.results)
    if not poll.changes:
        return f"{stamp}  poll {poll.index}: no change ({worst})"
    lines = [f"{stamp}  poll {poll.index}: {len(poll.changes)} change(s) ({worst})"]
    lines += [f"  {c['set']}: {c['text']}" for c in poll.changes]
    return "\n".join(lines)


def member_roles(m: MemberView) -> list[str]:
    roles = ["arbiter"] if m.arbiter else []
    roles += ["hidden"] if m.hidden else []
    roles += [f"delayed {duration_text(m.delay)}"] if m.delay else []
    roles += ["non-voting"] if m.votes == 0 else []
    return roles


def loss_summary(loss: RegionLoss) -> str:
    elect = "primary electable" if loss.can_elect else "NO primary"
    return f"{loss.votes_left}/{loss.total_votes} votes, {elect}, w:majority {loss.majority_writes}"


def _member_table(report: MongoReport) -> str:
    rows = [[m.host, m.region or "<unknown>", m.state, str(m.votes), f"{m.priority:g}",
             duration_text(m.lag) if m.lag is not None else "-",
             duration_text(m.oplog_window) if m.oplog_window is not None else "-",
             f"{m.rtt_ms:.0f}ms" if m.rtt_ms is not None else "-",
             ", ".join(member_roles(m) + (["unreachable from here"] if m.reachable is False else []))]
            for m in report.members]
    return table(["MEMBER", "REGION", "STATE", "VOTES", "PRIORITY", "LAG", "OPLOG", "RTT",
                  "NOTES"], rows) or "<none>"


def _region_table(report: MongoReport) -> str:
    losses = {loss.region: loss for loss in report.region_losses}
    rows = [[r.region, str(r.members), str(r.votes), str(r.electable),
             loss_summary(losses[r.region]) if r.region in losses else "-"] for r in report.regions]
    return table(["REGION", "MEMBERS", "VOTES", "ELECTABLE", "IF LOST"], rows) or "<none>"
