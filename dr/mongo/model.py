"""What `dr mongo status` reports: members, regions, region-loss outcomes and findings.

Plain data with `to_dict()` (the JSON contract) and `render_text()`; `report_changes()` says what
differs between two polls (for --watch). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dr.cli.app import short_time, table
from dr.schedule import format_duration

SEVERITIES = ("ok", "warning", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def worst_of(severities) -> str:
    return max(severities, key=_RANK.__getitem__, default="ok")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # ok | warning | critical
    reason: str    # one line: what is wrong (or right) and why it matters
    fix: str
    member: str | None = None
    region: str | None = None

    @property
    def key(self) -> tuple:
        """Identity across polls: one region's loss outcome is one finding whatever its code."""
        topic = "region-loss" if self.code.startswith("region-loss") else self.code
        return (topic, self.member, self.region)

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "member": self.member,
                "region": self.region, "reason": self.reason, "fix": self.fix}


@dataclass(frozen=True)
class MemberView:
    """One member as config, status and dr's own probe describe it."""

    id: int
    host: str
    region: str | None
    region_source: str  # tag | member_regions | unknown
    state: str
    healthy: bool
    votes: int
    priority: float
    arbiter: bool
    hidden: bool
    delay: int
    optime: datetime | None
    reachable: bool | None  # None: dr did not probe it
    probe_error: str | None
    rtt_ms: float | None
    oplog_window: float | None
    heartbeat_message: str | None = None
    lag: float | None = None

    @property
    def electable(self) -> bool:
        """Can be elected by its config (health aside)."""
        return (self.priority > 0 and not self.arbiter and not self.hidden and self.votes > 0
                and self.delay == 0)

    def with_lag(self, lag: float | None) -> MemberView:
        return replace(self, lag=lag)

    def roles(self) -> list[str]:
        roles = ["arbiter"] if self.arbiter else []
        roles += ["hidden"] if self.hidden else []
        roles += [f"delayed {duration_text(self.delay)}"] if self.delay else []
        roles += ["non-voting"] if self.votes == 0 else []
        return roles

    def to_dict(self) -> dict:
        return {"id": self.id, "host": self.host, "region": self.region,
                "region_source": self.region_source, "state": self.state, "healthy": self.healthy,
                "votes": self.votes, "priority": self.priority, "arbiter": self.arbiter,
                "hidden": self.hidden, "delay_seconds": self.delay, "electable": self.electable,
                "optime": self.optime.isoformat() if self.optime else None,
                "lag_seconds": _round(self.lag), "oplog_window_seconds": _round(self.oplog_window),
                "rtt_ms": _round(self.rtt_ms), "reachable": self.reachable,
                "probe_error": self.probe_error}


@dataclass(frozen=True)
class RegionSummary:
    region: str
    members: int
    votes: int
    electable: int
    data_bearing: int

    def to_dict(self) -> dict:
        return {"region": self.region, "members": self.members, "votes": self.votes,
                "electable": self.electable, "data_bearing": self.data_bearing}


@dataclass(frozen=True)
class RegionLoss:
    """What remains when every member of `region` is lost (region None: the set as it is now)."""

    region: str | None
    members_lost: int
    votes_left: int
    total_votes: int
    majority: int
    electable_left: tuple[str, ...]
    acks_left: int        # healthy data-bearing voting members without a delay
    write_majority: int   # writeMajorityCount
    majority_writes: str  # ok | delayed (only with delayed members) | blocked
    impaired_left: tuple[str, ...] = ()  # surviving voters that are down, recovering, ...
    survivable_by_design: bool | None = None  # with every member healthy

    @property
    def has_majority(self) -> bool:
        return self.votes_left >= self.majority

    @property
    def can_elect(self) -> bool:
        return self.has_majority and bool(self.electable_left)

    @property
    def survivable(self) -> bool:
        return self.can_elect and self.majority_writes != "blocked"

    def summary(self) -> str:
        elect = "primary electable" if self.can_elect else "NO primary"
        return (f"{self.votes_left}/{self.total_votes} votes, {elect}, "
                f"w:majority {self.majority_writes}")

    def to_dict(self) -> dict:
        return {"region": self.region, "members_lost": self.members_lost,
                "votes_left": self.votes_left, "total_votes": self.total_votes,
                "majority": self.majority, "can_elect": self.can_elect,
                "electable_left": list(self.electable_left), "acks_left": self.acks_left,
                "write_majority": self.write_majority, "majority_writes": self.majority_writes,
                "survivable": self.survivable, "impaired_left": list(self.impaired_left),
                "survivable_by_design": self.survivable_by_design}


@dataclass(frozen=True)
class MongoReport:
    name: str          # the dr.yaml name
    set_name: str      # the replica set's own name
    primary_region: str
    checked_at: datetime
    source: str        # the member whose status/config documents were read
    members: tuple[MemberView, ...]
    regions: tuple[RegionSummary, ...]
    current: RegionLoss
    region_losses: tuple[RegionLoss, ...]
    findings: tuple[Finding, ...]
    simulated: bool = False
    max_lag: float = 30.0
    min_oplog_window: float = 86400.0

    @property
    def worst(self) -> str:
        return worst_of(f.severity for f in self.findings)

    @property
    def survivable_region_losses(self) -> int:
        return sum(1 for loss in self.region_losses if loss.survivable)

    @property
    def primary(self) -> MemberView | None:
        return next((m for m in self.members if m.state == "PRIMARY"), None)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}

    def to_dict(self) -> dict:
        return {
            "name": self.name, "set": self.set_name, "simulated": self.simulated,
            "primary_region": self.primary_region, "checked_at": self.checked_at.isoformat(),
            "source": self.source, "primary": self.primary.host if self.primary else None,
            "worst": self.worst, "counts": self.counts(),
            "survivable_region_losses": self.survivable_region_losses,
            "regions_total": len(self.regions),
            "thresholds": {"max_lag_seconds": self.max_lag,
                           "min_oplog_window_seconds": self.min_oplog_window},
            "members": [m.to_dict() for m in self.members],
            "regions": [r.to_dict() for r in self.regions],
            "now": self.current.to_dict(),
            "region_loss": [r.to_dict() for r in self.region_losses],
            "findings": [f.to_dict() for f in self.findings],
        }

    def render_text(self) -> str:
        label = "  [SIMULATED members, not a real deployment]" if self.simulated else ""
        lines = [f"{self.name}: replica set {self.set_name or '<unnamed>'}, primary region "
                 f"{self.primary_region}{label}",
                 f"checked {short_time(self.checked_at)} (status read from {self.source or '<none>'})",
                 "", "Members:", _indent(self._member_table()), "",
                 "Regions (what losing each one leaves):", _indent(self._region_table()), "",
                 "Findings:"]
        ordered = sorted(self.findings, key=lambda f: -_RANK[f.severity])
        for f in ordered:
            tag = f.severity.upper() if f.severity != "ok" else "ok"
            lines.append(f"  {tag:<8}  {f.code}: {f.reason}")
            if f.fix and f.severity != "ok":
                lines.append(f"  {'':<8}  fix: {f.fix}")
        if not ordered:
            lines.append("  <none>")
        c = self.counts()
        lines += ["", f"Result: {self.worst} ({c['critical']} critical, "
                      f"{c['warning']} warning{'' if c['warning'] == 1 else 's'}); "
                      f"survives the loss of {self.survivable_region_losses} of "
                      f"{len(self.region_losses)} regions."]
        return "\n".join(lines)

    def _member_table(self) -> str:
        rows = [[m.host, m.region or "<unknown>", m.state, str(m.votes), f"{m.priority:g}",
                 duration_text(m.lag) if m.lag is not None else "-",
                 duration_text(m.oplog_window) if m.oplog_window is not None else "-",
                 f"{m.rtt_ms:.0f}ms" if m.rtt_ms is not None else "-",
                 ", ".join(m.roles() + (["unreachable from here"] if m.reachable is False else []))]
                for m in self.members]
        return table(["MEMBER", "REGION", "STATE", "VOTES", "PRIORITY", "LAG", "OPLOG", "RTT",
                      "NOTES"], rows) or "<none>"

    def _region_table(self) -> str:
        losses = {loss.region: loss for loss in self.region_losses}
        rows = [[r.region, str(r.members), str(r.votes), str(r.electable),
                 losses[r.region].summary() if r.region in losses else "-"] for r in self.regions]
        return table(["REGION", "MEMBERS", "VOTES", "ELECTABLE", "IF LOST"], rows) or "<none>"


def report_changes(prev: MongoReport | None, cur: MongoReport) -> list[dict]:
    """What differs from the previous poll: primary, member states, findings (by code/member/region)."""
    if prev is None:
        return []
    changes: list[dict] = []
    old_primary = prev.primary.host if prev.primary else None
    new_primary = cur.primary.host if cur.primary else None
    if old_primary != new_primary:
        changes.append({"kind": "primary", "from": old_primary, "to": new_primary,
                        "text": f"primary {old_primary or '<none>'} -> {new_primary or '<none>'}"})
    before = {m.host: m for m in prev.members}
    for m in cur.members:
        old = before.get(m.host)
        if old is None:
            changes.append({"kind": "member", "member": m.host, "from": None, "to": m.state,
                            "text": f"{m.host} joined as {m.state}"})
        elif old.state != m.state:
            changes.append({"kind": "member", "member": m.host, "from": old.state, "to": m.state,
                            "text": f"{m.host} {old.state} -> {m.state}"})
    for host in before.keys() - {m.host for m in cur.members}:
        changes.append({"kind": "member", "member": host, "from": before[host].state, "to": None,
                        "text": f"{host} left the set"})
    changes += _finding_changes(prev.findings, cur.findings)
    return changes


def _finding_changes(prev: tuple[Finding, ...], cur: tuple[Finding, ...]) -> list[dict]:
    old = {f.key: f for f in prev}
    new = {f.key: f for f in cur}
    out = []
    for key, f in new.items():
        was = old.get(key)
        if was is None or was.severity != f.severity:
            out.append({"kind": "finding", "code": f.code, "member": f.member, "region": f.region,
                        "from": was.severity if was else None, "to": f.severity,
                        "text": f"{f.severity}: {f.reason}" if was is None else
                        f"{was.severity} -> {f.severity}: {f.reason}"})
    for key, f in old.items():
        if key not in new and f.severity != "ok":
            out.append({"kind": "finding", "code": f.code, "member": f.member, "region": f.region,
                        "from": f.severity, "to": None, "text": f"resolved: {f.reason}"})
    return out


def duration_text(seconds: float) -> str:
    """'0.4s', '45s', '1h30m': lags and windows for humans."""
    if 0 < seconds < 1:
        return f"{seconds:.1f}s"
    return format_duration(timedelta(seconds=round(seconds)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
