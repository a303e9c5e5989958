"""Pure evaluation of a MongoDB replica set: status + config documents (+ what dr saw) → a report.

`evaluate()` never does I/O. Its inputs are one `replSetGetStatus` document, one
`replSetGetConfig` document and, per member, what dr observed on a direct connection (reachable?,
oplog first/last entry, round-trip time). Every lag comes from the one status document (the
primary's optimeDate minus the member's), so members scraped at different moments cannot skew it.
Voting arithmetic lives in votes.py, the findings in findings.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dr.mongo import findings as F
from dr.mongo.model import MemberView, MongoReport, Settings
from dr.mongo.votes import region_summaries, regions_of, survivors_outcome

STATE_NAMES = {0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 3: "RECOVERING", 5: "STARTUP2",
               6: "UNKNOWN", 7: "ARBITER", 8: "DOWN", 9: "ROLLBACK", 10: "REMOVED"}


@dataclass(frozen=True)
class MemberProbe:
    """What dr saw on its own direct connection to one member."""

    host: str
    reachable: bool
    error: str | None = None
    rtt_ms: float | None = None
    oplog_first: datetime | None = None
    oplog_last: datetime | None = None

    @property
    def oplog_window(self) -> float | None:
        if self.oplog_first is None or self.oplog_last is None:
            return None
        return (_utc(self.oplog_last) - _utc(self.oplog_first)).total_seconds()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --- members ---------------------------------------------------------------------------------------


def build_members(status: Mapping[str, Any], config: Mapping[str, Any],
                  probes: Mapping[str, MemberProbe], settings: Settings) -> list[MemberView]:
    """Join config members (votes, priority, tags) with their status (state, optime) and probe."""
    cfg = config.get("config", config)
    by_id = {m["_id"]: m for m in status.get("members", [])}
    by_name = {m.get("name"): m for m in status.get("members", [])}
    members = [_member(c, by_id.get(c["_id"]) or by_name.get(c["host"]) or {},
                       probes.get(c["host"]), settings) for c in cfg.get("members", [])]
    return _with_lag(members)


def _member(c: Mapping[str, Any], s: Mapping[str, Any], probe: MemberProbe | None,
            settings: Settings) -> MemberView:
    host = c["host"]
    tags = c.get("tags") or {}
    if tags.get(settings.region_tag):
        region, source = tags[settings.region_tag], "tag"
    elif host in settings.member_regions:
        region, source = settings.member_regions[host], "member_regions"
    else:
        region, source = None, "unknown"
    healthy = bool(s.get("health", 0))
    state = STATE_NAMES.get(s.get("state"), "UNKNOWN") if s else "UNKNOWN"
    if s and not healthy and state not in ("REMOVED", "UNKNOWN"):
        state = "DOWN"
    arbiter = bool(c.get("arbiterOnly"))
    optime = s.get("optimeDate")
    if optime is not None and (_utc(optime).year <= 1970 or arbiter):
        optime = None
    return MemberView(
        id=c["_id"], host=host, region=region, region_source=source, state=state, healthy=healthy,
        votes=int(c.get("votes", 1)), priority=float(c.get("priority", 1)), arbiter=arbiter,
        hidden=bool(c.get("hidden")), delay=int(c.get("secondaryDelaySecs", c.get("slaveDelay", 0))),
        optime=_utc(optime) if optime is not None else None,
        reachable=None if probe is None else probe.reachable,
        probe_error=None if probe is None else probe.error,
        rtt_ms=None if probe is None else probe.rtt_ms,
        oplog_window=None if probe is None else probe.oplog_window,
        heartbeat_message=s.get("lastHeartbeatMessage") or None,
    )


def _with_lag(members: list[MemberView]) -> list[MemberView]:
    """Lag = reference optime − member optime; the reference is the primary's, else the freshest."""
    primary = next((m for m in members if m.state == "PRIMARY" and m.optime), None)
    fresh = [m.optime for m in members if m.optime and m.healthy]
    reference = primary.optime if primary else (max(fresh) if fresh else None)
    out = []
    for m in members:
        lag = None
        if reference is not None and m.optime is not None and m.healthy and not m.arbiter:
            lag = max(0.0, (reference - m.optime).total_seconds())
        out.append(m.with_lag(lag))
    return out


# --- the whole evaluation ----------------------------------------------------------------------------


def evaluate(status: Mapping[str, Any], config: Mapping[str, Any],
             probes: Mapping[str, MemberProbe], settings: Settings, *, checked_at: datetime,
             source: str = "", simulated: bool = False) -> MongoReport:
    """Every finding about one replica set, from one status and one config document."""
    members = build_members(status, config, probes, settings)
    now = survivors_outcome(members, None)
    losses = [survivors_outcome(members, region) for region in regions_of(members)]
    findings = (F.primary_findings(members, now) + F.majority_findings(now)
                + F.state_findings(members, now) + F.lag_findings(members, settings)
                + F.oplog_findings(members, settings) + F.region_findings(members, settings)
                + F.region_loss_findings(losses) + F.priority_findings(members, settings)
                + F.member_role_findings(members))
    cfg = config.get("config", config)
    return MongoReport(
        name=settings.name, set_name=status.get("set") or cfg.get("_id", ""),
        primary_region=settings.primary_region, checked_at=checked_at, source=source,
        members=tuple(members), regions=tuple(region_summaries(members)), current=now,
        region_losses=tuple(losses), findings=tuple(findings), simulated=simulated,
        max_lag=settings.max_lag.total_seconds(),
        min_oplog_window=settings.min_oplog_window.total_seconds())
