"""The findings about one replica set: each a small pure function over its members (pure).

Each finding has a code, a severity (ok / warning / critical), a one-line reason and a fix.
"""

from __future__ import annotations

from dr.mongo.model import Finding, MemberView, RegionLoss, Settings
from dr.mongo.votes import can_become_primary, regions_of
from dr.render.text import duration_text as _dur

_STATE_PROBLEMS = {
    "DOWN": ("is DOWN: the set cannot reach it",
             "check that mongod runs on it and that the other members can reach its port"),
    "UNKNOWN": ("is in state UNKNOWN: the set has not heard from it yet",
                "check that mongod runs on it and that the other members can reach its port"),
    "ROLLBACK": ("is in ROLLBACK: it is undoing writes that never reached a majority",
                 "let it finish; the rolled-back documents are kept in its rollback/ directory"),
    "RECOVERING": ("is RECOVERING: in maintenance, or too stale to catch up from any oplog",
                   "if it stays RECOVERING it fell off the oplog: resync it (initial sync)"),
    "STARTUP": ("is in STARTUP: it has not loaded its replica-set config",
                "check its logs; it should move to SECONDARY within seconds"),
    "STARTUP2": ("is in STARTUP2: an initial sync is running",
                 "wait for the initial sync; it cannot be elected or acknowledge writes meanwhile"),
    "REMOVED": ("is REMOVED: it is no longer in the set's config",
                "remove it from the seed list or add it back with rs.add()"),
}


def primary_findings(members: list[MemberView], now: RegionLoss) -> list[Finding]:
    if any(m.state == "PRIMARY" for m in members):
        return []
    why = (f"only {now.votes_left} of {now.total_votes} votes are on healthy members"
           if not now.has_majority else "an election is in progress or no member is electable")
    return [Finding("no-primary", "critical", f"no primary: the set accepts no writes ({why})",
                    "bring back enough voting members for a majority; see the member findings")]


def majority_findings(now: RegionLoss) -> list[Finding]:
    found = []
    if not now.has_majority:
        found.append(Finding(
            "majority-lost", "critical",
            f"only {now.votes_left} of {now.total_votes} votes are on healthy members; "
            f"{now.majority} are needed to elect a primary",
            "bring the down members back; or, if they are gone for good, force a reconfig "
            "without them (rs.reconfig(cfg, {force: true})) on a surviving member"))
    if now.majority_writes == "blocked":
        found.append(Finding(
            "majority-writes-blocked", "critical",
            f"w:majority writes cannot be acknowledged now: {now.acks_left} of the "
            f"{now.write_majority} data-bearing voting members it needs are healthy",
            "bring a data-bearing voting member back (arbiters do not acknowledge writes)"))
    return found


def state_findings(members: list[MemberView], now: RegionLoss) -> list[Finding]:
    at_risk = not now.has_majority or now.majority_writes == "blocked"
    found = []
    for m in members:
        if m.state in _STATE_PROBLEMS:
            reason, fix = _STATE_PROBLEMS[m.state]
            text = f"{m.host} {reason}"
            if m.state == "DOWN" and m.heartbeat_message:
                text += f" ({m.heartbeat_message})"
            if m.reachable is False:
                text += f"; dr's own connection failed too ({m.probe_error})"
            severity = "critical" if at_risk and m.votes > 0 else "warning"
            found.append(Finding("member-state", severity, text, fix, m.host, m.region))
        elif m.reachable is False:
            found.append(Finding(
                "member-unreachable", "warning",
                f"{m.host} is {m.state} for the set, but dr's direct connection to it failed "
                f"({m.probe_error}); its oplog window is unknown",
                f"check the network, firewall and DNS from where dr runs to {m.host}",
                m.host, m.region))
    return found


def lag_findings(members: list[MemberView], settings: Settings) -> list[Finding]:
    limit = settings.max_lag.total_seconds()
    found = []
    for m in members:
        if m.lag is None or m.state == "PRIMARY":
            continue
        excess = m.lag - m.delay
        if excess > limit:
            what = (f"{_dur(m.lag)} behind, {_dur(excess)} more than its {_dur(m.delay)} delay"
                    if m.delay else f"{_dur(m.lag)} behind the primary")
            found.append(Finding(
                "replication-lag", "warning",
                f"{m.host} is {what} (max_lag {_dur(limit)})",
                "check its disk, CPU and the network to its sync source; rs.status() shows "
                "syncSourceHost", m.host, m.region))
    found += _takeover_lag(members, limit)
    return found


def _takeover_lag(members: list[MemberView], limit: float) -> list[Finding]:
    """Critical when every member that could take over outside the primary's region lags."""
    primary = next((m for m in members if m.state == "PRIMARY"), None)
    if primary is None or primary.region is None:
        return []
    standby = [m for m in members if m.region and m.region != primary.region
               and can_become_primary(m) and m.lag is not None]
    if not standby or any(m.lag <= limit for m in standby):
        return []
    best = min(m.lag for m in standby)
    return [Finding(
        "takeover-lag", "critical",
        f"every electable member outside {primary.region} is more than {_dur(limit)} behind "
        f"(best {_dur(best)}): losing {primary.region} now loses at least {_dur(best)} of writes",
        "fix the lag of the members outside the primary's region (network, disk, sync source)",
        region=primary.region)]


def oplog_findings(members: list[MemberView], settings: Settings) -> list[Finding]:
    need = settings.min_oplog_window.total_seconds()
    return [Finding(
        "oplog-window", "warning",
        f"{m.host}'s oplog covers {_dur(m.oplog_window)}, less than min_oplog_window {_dur(need)}: "
        "a member cut off for longer must be resynced from scratch",
        f"grow it on {m.host}: db.adminCommand({{replSetResizeOplog: 1, size: <MB>}}) or "
        "{minRetentionHours: <hours>}", m.host, m.region)
        for m in members if m.oplog_window is not None and not m.arbiter and m.oplog_window < need]


def region_findings(members: list[MemberView], settings: Settings) -> list[Finding]:
    found = []
    for m in members:
        if m.region is None:
            found.append(Finding(
                "region-unknown", "warning",
                f"{m.host} has no {settings.region_tag!r} tag and is not in member_regions: the "
                "region-loss analysis assumes it survives every region loss",
                f'tag it (cfg.members[{m.id}].tags = {{{settings.region_tag}: "<region>"}}; '
                f'rs.reconfig(cfg)) or add "{m.host}: <region>" to member_regions in dr.yaml',
                m.host))
    regions = regions_of(members)
    if regions and settings.primary_region not in regions:
        found.append(Finding(
            "primary-region-empty", "warning",
            f"no member is in the primary region {settings.primary_region} (members are in "
            f"{', '.join(regions)})",
            "check regions.primary in dr.yaml and the members' region tags",
            region=settings.primary_region))
    if settings.dr_region and not any(m.region == settings.dr_region and m.electable for m in members):
        found.append(Finding(
            "dr-region-not-electable", "warning",
            f"no electable member in the DR region {settings.dr_region}: after a failover there "
            "the application's database stays in another region",
            f"add a member with priority > 0 in {settings.dr_region}", region=settings.dr_region))
    return found


def region_loss_findings(losses: list[RegionLoss]) -> list[Finding]:
    found = []
    for loss in losses:
        r = loss.region
        left = f"losing {r} leaves {loss.votes_left} of {loss.total_votes} votes"
        sick = f"; already unwell: {', '.join(loss.impaired_left)}" if loss.impaired_left else ""
        heal = (f"bring back {', '.join(h.split(' ')[0] for h in loss.impaired_left)}: with "
                f"every member healthy the set survives losing {r}")
        if not loss.has_majority:
            fix = heal if loss.survivable_by_design else (
                f"spread the votes so that no region holds more than "
                f"{loss.total_votes - loss.majority} of the {loss.total_votes} (e.g. 2+2+1 over "
                f"three regions): add a voting member in another region, or set votes: 0 on one "
                f"in {r}")
            found.append(Finding("region-loss", "critical",
                                 f"{left}: no primary can be elected{sick}", fix, region=r))
        elif not loss.electable_left:
            found.append(Finding(
                "region-loss", "critical",
                f"{left} but no electable member (healthy, priority > 0, not hidden, delayed or "
                f"an arbiter): no primary can be elected{sick}",
                heal if loss.survivable_by_design else
                f"give a data-bearing member outside {r} priority > 0", region=r))
        elif loss.majority_writes == "blocked":
            found.append(Finding(
                "region-loss-majority-writes", "critical",
                f"{left}, enough to elect a primary, but only {loss.acks_left} of the "
                f"{loss.write_majority} data-bearing voting members w:majority needs: majority "
                f"writes cannot be acknowledged{sick}",
                heal if loss.survivable_by_design else
                "replace arbiters with data-bearing members, or add a data-bearing voting member "
                f"outside {r}", region=r))
        elif loss.majority_writes == "delayed":
            found.append(Finding(
                "region-loss-majority-writes", "warning",
                f"{left}; w:majority writes then wait for a delayed member's delay",
                "set votes: 0 on delayed members", region=r))
        else:
            found.append(Finding(
                "region-loss", "ok",
                f"{left}: a primary can be elected ({len(loss.electable_left)} electable) and "
                "w:majority writes are acknowledged", "", region=r))
    return found


def priority_findings(members: list[MemberView], settings: Settings) -> list[Finding]:
    home = settings.primary_region
    electable = [m for m in members if m.electable]
    inside = [m for m in electable if m.region == home]
    outside = [m for m in electable if m.region != home]
    found = []
    if not outside:
        found.append(Finding(
            "priority-placement", "critical",
            f"no electable member outside {home}: if {home} is lost, no member can become primary",
            "give a data-bearing member in another region priority > 0 (cfg.members[i].priority "
            "= 1; rs.reconfig(cfg))", region=home))
    if not inside:
        found.append(Finding(
            "priority-placement", "warning",
            f"no electable member in the primary region {home}: the primary runs away from the "
            "application", f"give the members in {home} the highest priority", region=home))
    elif outside:
        top_in = max(m.priority for m in inside)
        top_out = max(outside, key=lambda m: m.priority)
        if top_out.priority >= top_in:
            found.append(Finding(
                "priority-placement", "warning",
                f"{top_out.host} in {top_out.region or 'an unknown region'} has priority "
                f"{top_out.priority:g}, as high as any in {home} ({top_in:g}): after an election "
                f"the primary can settle outside {home}",
                f"raise the priority of the {home} members above the others (e.g. 2 vs 1)",
                top_out.host, top_out.region))
        else:
            found.append(Finding(
                "priority-placement", "ok",
                f"the highest-priority electable members are in {home} (priority {top_in:g}); "
                f"{len(outside)} electable elsewhere", "", region=home))
    primary = next((m for m in members if m.state == "PRIMARY"), None)
    if primary is not None and primary.region and primary.region != home:
        found.append(Finding(
            "primary-outside-primary-region", "warning",
            f"the primary is {primary.host} in {primary.region}, not in the primary region {home}",
            f"after the cause is fixed, step it down (rs.stepDown()) so a {home} member takes over",
            primary.host, primary.region))
    return found


def member_role_findings(members: list[MemberView]) -> list[Finding]:
    found = []
    arbiters = [m for m in members if m.arbiter]
    if len(arbiters) > 1:
        found.append(Finding(
            "arbiters", "warning",
            f"{len(arbiters)} arbiters ({', '.join(m.host for m in arbiters)}): MongoDB supports "
            "at most one, and arbiters vote without holding data",
            "replace the extra arbiters with data-bearing members"))
    for m in members:
        if m.delay and m.votes > 0:
            found.append(Finding(
                "delayed-member-votes", "warning",
                f"{m.host} is delayed {_dur(m.delay)} and votes: w:majority writes can wait for "
                "its delay when other members are down",
                f"set votes: 0 on {m.host} (and keep it hidden, priority 0)", m.host, m.region))
    return found
