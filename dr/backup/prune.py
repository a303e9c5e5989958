"""Pruning: retention applied per resource and per region; only dr's own snapshots are touched."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from dr.backup.catalog import RecoveryPoint
from dr.backup.retention import Candidate, apply_policy
from dr.config import RdsResource


@dataclass(frozen=True)
class PruneDecision:
    point: RecoveryPoint
    keep: bool
    reasons: tuple[str, ...]

    def to_dict(self, now: datetime) -> dict:
        return {**self.point.to_dict(now), "action": "keep" if self.keep else "delete",
                "reasons": list(self.reasons)}


def plan_prune(points: list[RecoveryPoint], resources: dict[str, RdsResource],
               now: datetime) -> list[PruneDecision]:
    """Pure: keep/delete for every managed recovery point, each with its reasons.

    Unmanaged snapshots never enter the policy. A source snapshot whose DR copy is still in
    progress is pinned: deleting it would fail the copy."""
    copying_from = {p.copy_of for p in points
                    if p.role == "copy" and p.status != "available" and p.copy_of}
    groups: dict[tuple[str, str], list[RecoveryPoint]] = defaultdict(list)
    for p in points:
        if p.managed:
            groups[(p.resource, p.region)].append(p)
    decisions: list[PruneDecision] = []
    for (name, _region), group in sorted(groups.items()):
        by_id = {p.id: p for p in group}
        pinned = {p.id: "source of a copy in progress" for p in group if p.arn in copying_from}
        candidates = [Candidate(id=p.id, created=p.created or now, status=p.status)
                      for p in group]
        for d in apply_policy(candidates, resources[name].retention, now, pinned):
            decisions.append(PruneDecision(by_id[d.id], d.keep, d.reasons))
    return decisions
