"""Votes, majorities and region loss, computed as the server does (pure).

A primary needs the votes of a majority of the voting members (`majorityVoteCount = voting // 2 +
1`); `w: majority` needs `writeMajorityCount = min(majorityVoteCount, data-bearing voting
members)` members that apply writes (`ReplSetConfig::_calculateMajorities`), so arbiters vote but
never acknowledge writes. Members in PRIMARY, SECONDARY, STARTUP2, RECOVERING, ARBITER and
ROLLBACK can vote; only a healthy SECONDARY (or the PRIMARY) with priority > 0, not hidden, not
delayed and not an arbiter can be elected.
"""

from __future__ import annotations

from dataclasses import replace

from dr.mongo.model import MemberView, RegionLoss, RegionSummary

VOTING_STATES = frozenset({"PRIMARY", "SECONDARY", "STARTUP2", "RECOVERING", "ARBITER", "ROLLBACK"})
ACK_STATES = frozenset({"PRIMARY", "SECONDARY"})


def can_vote(m: MemberView) -> bool:
    return m.votes > 0 and m.healthy and m.state in VOTING_STATES


def can_acknowledge(m: MemberView) -> bool:
    """Applies writes and counts toward w: majority."""
    return m.votes > 0 and not m.arbiter and m.healthy and m.state in ACK_STATES


def can_become_primary(m: MemberView) -> bool:
    return m.electable and m.healthy and m.state in ACK_STATES


def majority_vote_count(members: list[MemberView]) -> int:
    return sum(m.votes for m in members if m.votes > 0) // 2 + 1


def write_majority_count(members: list[MemberView]) -> int:
    writable = sum(1 for m in members if m.votes > 0 and not m.arbiter)
    return min(majority_vote_count(members), writable)


def survivors_outcome(members: list[MemberView], lost: str | None, *,
                      designed: bool = False) -> RegionLoss:
    """What is left if every member in region `lost` disappears (None: as things are now).

    Members keep their current health; `survivable_by_design` says whether the layout itself
    (every member healthy) would survive, so a finding can tell a bad layout from a sick member."""
    left = [m for m in members if lost is None or m.region != lost]
    acks = [m for m in left if can_acknowledge(m)]
    need = write_majority_count(members)
    prompt = sum(1 for m in acks if m.delay == 0)
    writes = "ok" if prompt >= need else ("delayed" if len(acks) >= need else "blocked")
    impaired = tuple(f"{m.host} {m.state}" for m in left if m.votes > 0 and (
        not can_vote(m) or (not m.arbiter and not can_acknowledge(m))))
    by_design = None
    if not designed:
        by_design = survivors_outcome([_healthy(m) for m in members], lost, designed=True).survivable
    return RegionLoss(
        region=lost, members_lost=len(members) - len(left),
        votes_left=sum(m.votes for m in left if can_vote(m)),
        total_votes=sum(m.votes for m in members if m.votes > 0),
        majority=majority_vote_count(members),
        electable_left=tuple(m.host for m in left if can_become_primary(m)),
        acks_left=prompt, write_majority=need, majority_writes=writes,
        impaired_left=impaired, survivable_by_design=by_design)


def _healthy(m: MemberView) -> MemberView:
    return replace(m, healthy=True, state="ARBITER" if m.arbiter else "SECONDARY")


def regions_of(members: list[MemberView]) -> list[str]:
    return sorted({m.region for m in members if m.region})


def region_summaries(members: list[MemberView]) -> list[RegionSummary]:
    out = []
    for region in regions_of(members):
        here = [m for m in members if m.region == region]
        out.append(RegionSummary(region=region, members=len(here),
                                 votes=sum(m.votes for m in here if m.votes > 0),
                                 electable=sum(1 for m in here if m.electable),
                                 data_bearing=sum(1 for m in here if not m.arbiter)))
    return out
