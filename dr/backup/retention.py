"""Retention as a pure function: (recovery points, policy, now) -> keep or delete, with reasons.

Grandfather-father-son, as restic's `forget --keep-*`: `last N` keeps the N newest points, and
`hourly/daily/weekly/monthly N` keep the newest point of each of the N most recent hours / days /
ISO weeks / months that have a point. All buckets are in UTC. Nothing here reads the clock or
talks to AWS, so a plan can be printed, diffed and tested before anything is deleted.

Guarantees on top of the rules:
  * the newest available point is always kept, even with an all-zero policy;
  * in-progress points are kept (they do not fill buckets); other non-available points
    (failed, error, ...) are deleted;
  * usable points dated after `now` (clock skew) are kept, and still fill buckets;
  * pinned points are kept, whatever their status.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

if TYPE_CHECKING:
    from dr.config import RetentionPolicy

AVAILABLE = "available"
IN_PROGRESS = frozenset({"creating", "copying", "pending", "modifying", "backing-up", "upgrading"})

NEWEST = "newest available copy"
FUTURE = "created in the future (clock skew?)"

RULES = ("last", "hourly", "daily", "weekly", "monthly")

# Calendar rules: the bucket of a UTC time (a tuple, ordered like time) and its label in reasons.
_BUCKETS: dict[str, tuple[Callable[[datetime], tuple], Callable[[tuple], str]]] = {
    "hourly": (lambda t: (t.year, t.month, t.day, t.hour), lambda k: "%04d-%02d-%02dT%02d" % k),
    "daily": (lambda t: (t.year, t.month, t.day), lambda k: "%04d-%02d-%02d" % k),
    "weekly": (lambda t: t.isocalendar()[:2], lambda k: "%04d-W%02d" % k),
    "monthly": (lambda t: (t.year, t.month), lambda k: "%04d-%02d" % k),
}


@dataclass(frozen=True)
class Candidate:
    """A recovery point that retention may keep or delete."""

    id: str
    created: datetime  # aware; compared and bucketed in UTC
    status: str = AVAILABLE  # "available", one of IN_PROGRESS, or anything else (= not usable)


@dataclass(frozen=True)
class Decision:
    """What to do with one point: every reason it is kept, or the one reason it is deleted."""

    id: str
    created: datetime  # in UTC
    keep: bool
    reasons: tuple[str, ...]


def apply_policy(
    candidates: Iterable[Candidate],
    policy: RetentionPolicy,
    now: datetime,
    pinned: Mapping[str, str] | None = None,
) -> list[Decision]:
    """Decide keep/delete for every candidate; one Decision per candidate, newest first.

    Order is by `created` descending, ties broken by id descending, so plans are deterministic.
    Reasons of a kept point come in this order: last, hourly, daily, weekly, monthly, newest
    available copy, in progress, created in the future, then the pin reason. `pinned` maps an
    id to why it must stay (e.g. "source of a copy in progress"); unknown ids are ignored.
    Raises ValueError on a negative policy count, a naive datetime, or a duplicate id.
    O(n log n): one sort, then linear passes that stop once each rule is filled.
    """
    counts = _counts(policy)
    now = _utc(now, "now")
    pinned = pinned or {}

    points: list[tuple[datetime, str, str]] = []  # (created in UTC, id, status)
    seen: set[str] = set()
    for c in candidates:
        if c.id in seen:
            raise ValueError(f"duplicate recovery point id {c.id!r}")
        seen.add(c.id)
        points.append((_utc(c.created, c.id), c.id, c.status))
    points.sort(reverse=True)

    # Indexes (into `points`) of the available points, newest first: only these fill the rules.
    available = [i for i, p in enumerate(points) if p[2].lower() == AVAILABLE]
    why: defaultdict[int, list[str]] = defaultdict(list)

    n = counts["last"]
    for rank, i in enumerate(available[:n], start=1):
        why[i].append(f"last {n} (#{rank})")

    for rule, (bucket_of, label) in _BUCKETS.items():
        remaining, previous = counts[rule], None
        for i in available:
            if remaining == 0:
                break
            # Newest first, so buckets arrive in order and the first point of each is its newest.
            bucket = bucket_of(points[i][0])
            if bucket != previous:
                why[i].append(f"{rule} {label(bucket)}")
                previous, remaining = bucket, remaining - 1

    if available:
        why[available[0]].append(NEWEST)

    not_kept = f"not kept by any rule ({_describe(counts)})"
    decisions = []
    for i, (created, id_, status) in enumerate(points):
        reasons = why.get(i, [])
        state = status.lower()
        if state in IN_PROGRESS:
            reasons.append(f"in progress (status: {status})")
        if created > now and (state == AVAILABLE or state in IN_PROGRESS):
            reasons.append(FUTURE)
        if id_ in pinned:
            reasons.append(pinned[id_] or "pinned")
        if reasons:
            decisions.append(Decision(id_, created, True, tuple(reasons)))
        elif state == AVAILABLE:
            decisions.append(Decision(id_, created, False, (not_kept,)))
        else:
            decisions.append(Decision(id_, created, False, (f"not usable (status: {status})",)))
    return decisions


def summarize(decisions: Iterable[Decision]) -> tuple[int, int]:
    """(kept, deleted) counts of a plan."""
    kept = deleted = 0
    for d in decisions:
        if d.keep:
            kept += 1
        else:
            deleted += 1
    return kept, deleted


def _counts(policy: RetentionPolicy) -> dict[str, int]:
    counts = {rule: int(getattr(policy, rule)) for rule in RULES}
    negative = [rule for rule, n in counts.items() if n < 0]
    if negative:
        raise ValueError(f"retention counts must be 0 or more: {', '.join(negative)}")
    return counts


def _describe(counts: Mapping[str, int]) -> str:
    """'last 3, hourly 24, ...' for the non-zero rules, or 'no rules'."""
    return ", ".join(f"{rule} {counts[rule]}" for rule in RULES if counts[rule]) or "no rules"


def _utc(t: datetime, what: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what}: datetime must be timezone-aware, got {t.isoformat()}")
    return t.astimezone(timezone.utc)
