"""What `dr mongo status` reports: members, regions, region-loss outcomes and findings, and the
`Settings` an evaluation compares against.

Plain data with `to_dict()` (the JSON contract). Nothing here does I/O or renders text
(dr/render/mongo.py does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

SEVERITIES = ("ok", "warning", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def worst_of(severities) -> str:
    return max(severities, key=_RANK.__getitem__, default="ok")


@dataclass(frozen=True)
class Settings:
    """What the evaluation compares against (from dr.yaml)."""

    name: str
    primary_region: str
    max_lag: timedelta = timedelta(seconds=30)
    min_oplog_window: timedelta = timedelta(hours=24)
    region_tag: str = "region"
    member_regions: Mapping[str, str] = field(default_factory=dict)
    dr_region: str | None = None

    @classmethod
    def from_resource(cls, resource, primary_region: str, dr_region: str | None = None) -> Settings:
        return cls(name=resource.name, primary_region=primary_region, max_lag=resource.max_lag,
                   min_oplog_window=resource.min_oplog_window, region_tag=resource.region_tag,
                   member_regions=resource.region_map(), dr_region=dr_region)


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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
