"""Retention planning: golden cases (tests/unit/golden/retention/*.yaml) and randomized properties.

Golden files are written by hand, with the reasoning in their comments; there is deliberately
no "regenerate from the code" switch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from dr.backup.retention import (
    FUTURE,
    IN_PROGRESS,
    NEWEST,
    RULES,
    Candidate,
    Decision,
    apply_policy,
    summarize,
)

try:
    from dr.config import RetentionPolicy
except ImportError:  # dr.config is being written in parallel; same shape, retention reads only these

    @dataclass(frozen=True)
    class RetentionPolicy:  # type: ignore[no-redef]
        last: int = 0
        hourly: int = 0
        daily: int = 0
        weekly: int = 0
        monthly: int = 0


UTC = timezone.utc
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden" / "retention"
GOLDEN_FILES = sorted(GOLDEN.glob("*.yaml"))


# ---------------------------------------------------------------------------------------------
# Golden cases


def load_case(path: Path) -> dict:
    case = yaml.safe_load(path.read_text())
    assert set(case) <= {"now", "policy", "points", "pinned", "expected"}, f"{path.name}: unknown keys"
    return case


def run_case(case: dict) -> list[Decision]:
    points = [
        Candidate(str(p["id"]), datetime.fromisoformat(p["created"]), p.get("status", "available"))
        for p in case["points"]
    ]
    policy = RetentionPolicy(**(case["policy"] or {}))
    return apply_policy(points, policy, datetime.fromisoformat(case["now"]), case.get("pinned"))


def test_there_are_enough_golden_cases():
    assert len(GOLDEN_FILES) >= 8


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden(path):
    case = load_case(path)
    actual = [{"id": d.id, "keep": d.keep, "reasons": list(d.reasons)} for d in run_case(case)]
    expected = [{"id": str(e["id"]), "keep": e["keep"], "reasons": e["reasons"]} for e in case["expected"]]
    assert actual == expected


# ---------------------------------------------------------------------------------------------
# Plain unit tests


def pt(id_: str, minutes_ago: float, status: str = "available") -> Candidate:
    return Candidate(id_, NOW - timedelta(minutes=minutes_ago), status)


def test_empty_input_gives_empty_plan():
    assert apply_policy([], RetentionPolicy(last=3), NOW) == []
    assert summarize([]) == (0, 0)


def test_summarize_counts_kept_and_deleted():
    plan = apply_policy([pt("a", 1), pt("b", 2), pt("c", 3, "failed")], RetentionPolicy(), NOW)
    assert summarize(plan) == (1, 2)
    assert summarize(iter(plan)) == (1, 2)


def test_accepts_any_iterable_of_candidates():
    plan = apply_policy((pt(str(i), i) for i in range(5)), RetentionPolicy(last=2), NOW)
    assert [d.id for d in plan if d.keep] == ["0", "1"]


def test_status_is_matched_case_insensitively_and_reported_as_given():
    plan = apply_policy([pt("a", 1, "AVAILABLE"), pt("b", 2, "Creating"), pt("c", 3, "FAILED")],
                        RetentionPolicy(), NOW)
    assert [(d.id, d.keep, d.reasons) for d in plan] == [
        ("a", True, (NEWEST,)),
        ("b", True, ("in progress (status: Creating)",)),
        ("c", False, ("not usable (status: FAILED)",)),
    ]


def test_every_in_progress_status_is_kept():
    points = [pt(s, i, s) for i, s in enumerate(sorted(IN_PROGRESS))]
    plan = apply_policy(points, RetentionPolicy(), NOW)
    assert all(d.keep and d.reasons == (f"in progress (status: {d.id})",) for d in plan)


def test_created_is_reported_in_utc():
    plus2 = timezone(timedelta(hours=2))
    [d] = apply_policy([Candidate("a", datetime(2026, 12, 1, 1, 30, tzinfo=plus2))], RetentionPolicy(), NOW)
    assert d.created == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert d.created.tzinfo is UTC


def test_empty_pin_reason_still_says_pinned():
    plan = apply_policy([pt("a", 1), pt("b", 2)], RetentionPolicy(), NOW, pinned={"b": ""})
    assert plan[1].keep and plan[1].reasons == ("pinned",)


@pytest.mark.parametrize(
    "call",
    [
        lambda: apply_policy([Candidate("a", datetime(2026, 1, 1))], RetentionPolicy(), NOW),
        lambda: apply_policy([], RetentionPolicy(), datetime(2026, 1, 1)),
        lambda: apply_policy([pt("a", 1), pt("a", 2)], RetentionPolicy(), NOW),
        lambda: apply_policy([], RetentionPolicy(daily=-1), NOW),
    ],
    ids=["naive-created", "naive-now", "duplicate-id", "negative-count"],
)
def test_rejects_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_100k_points_are_all_decided():
    """Timing lives in benchmarks/retention_bench.py (never asserted in tests: CI machines are noisy)."""
    points = [pt(f"rp-{i:06d}", 7 * i, "creating" if i % 997 == 0 else "available") for i in range(100_000)]
    policy = RetentionPolicy(last=3, hourly=24, daily=7, weekly=4, monthly=12)
    plan = apply_policy(points, policy, NOW)
    assert len(plan) == 100_000
    newest_available = next(d for d in plan if d.id == "rp-000001")  # rp-000000 is "creating"
    assert newest_available.keep and "newest available copy" in newest_available.reasons


# ---------------------------------------------------------------------------------------------
# Randomized properties (seeded, so failures reproduce)

SEEDS = range(300)


def random_case(rng: random.Random, *, future: bool = True, pins: bool = True):
    now = NOW + timedelta(seconds=rng.randrange(0, 400 * 86400))
    span = rng.choice([3600 * 6, 86400 * 3, 86400 * 40, 86400 * 800])
    n = rng.randrange(0, 80)
    # Draw times from a small pool sometimes, so equal timestamps (id tie-breaks) are common.
    pool = [rng.randrange(-3600 if future else 0, span) for _ in range(max(1, n // rng.choice([1, 3])))]
    points = []
    for i in range(n):
        r = rng.random()
        status = "available" if r < 0.7 else rng.choice(sorted(IN_PROGRESS)) if r < 0.85 else rng.choice(
            ["failed", "error", "incompatible-restore", "deleting"])
        points.append(Candidate(f"rp-{i:03d}", now - timedelta(seconds=rng.choice(pool)), status))
    rng.shuffle(points)
    policy = RetentionPolicy(**{rule: rng.choice([0, 0, 1, 2, 3, 7]) for rule in RULES})
    pinned = {p.id: "pinned by test" for p in points if pins and rng.random() < 0.05}
    return points, policy, now, pinned


def reference_plan(points, policy, now, pinned):
    """A deliberately different, naive implementation to check apply_policy against.

    Groups available points by strftime label, orders the groups by their newest point, keeps
    the newest point of the first N groups. Quadratic in places; fine for small inputs.
    """
    formats = {"hourly": "%Y-%m-%dT%H", "daily": "%Y-%m-%d", "weekly": "%G-W%V", "monthly": "%Y-%m"}
    order = sorted(points, key=lambda p: (p.created, p.id), reverse=True)
    avail = [p for p in order if p.status.lower() == "available"]
    why = {p.id: [] for p in points}
    for rank, p in enumerate(avail[: policy.last], start=1):
        why[p.id].append(f"last {policy.last} (#{rank})")
    for rule, fmt in formats.items():
        groups: dict[str, list[Candidate]] = {}
        for p in avail:
            groups.setdefault(p.created.astimezone(UTC).strftime(fmt), []).append(p)
        newest_first = sorted(groups.items(), key=lambda kv: max((p.created, p.id) for p in kv[1]), reverse=True)
        for label, members in newest_first[: getattr(policy, rule)]:
            best = max(members, key=lambda p: (p.created, p.id))
            why[best.id].append(f"{rule} {label}")
    if avail:
        why[avail[0].id].append(NEWEST)
    rules = ", ".join(f"{r} {getattr(policy, r)}" for r in RULES if getattr(policy, r)) or "no rules"
    out = []
    for p in order:
        reasons = why[p.id]
        s = p.status.lower()
        if s in IN_PROGRESS:
            reasons.append(f"in progress (status: {p.status})")
        if p.created > now and s in IN_PROGRESS | {"available"}:
            reasons.append(FUTURE)
        if p.id in pinned:
            reasons.append(pinned[p.id])
        if reasons:
            out.append((p.id, True, tuple(reasons)))
        elif s == "available":
            out.append((p.id, False, (f"not kept by any rule ({rules})",)))
        else:
            out.append((p.id, False, (f"not usable (status: {p.status})",)))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_properties(seed):
    rng = random.Random(seed)
    points, policy, now, pinned = random_case(rng)
    plan = apply_policy(points, policy, now, pinned)

    # A permutation of the input, newest first (ties: id descending).
    assert sorted(d.id for d in plan) == sorted(p.id for p in points)
    assert [(d.created, d.id) for d in plan] == sorted(((d.created, d.id) for d in plan), reverse=True)

    # Every decision explains itself; a deletion has exactly one reason.
    for d in plan:
        assert d.reasons and all(d.reasons)
        if not d.keep:
            assert len(d.reasons) == 1

    by_id = {p.id: p for p in points}
    available = [d for d in plan if by_id[d.id].status == "available"]
    if available:
        newest = available[0]
        assert newest.keep and NEWEST in newest.reasons
    assert sum(NEWEST in d.reasons for d in plan) == (1 if available else 0)

    for d in plan:
        status = by_id[d.id].status
        if status in IN_PROGRESS or d.id in pinned:
            assert d.keep
        elif status != "available":
            assert not d.keep

    # Kept available points are bounded by the rules (+1 for the newest; future and pinned extra).
    extra = sum(1 for d in available if d.created > now or d.id in pinned)
    bound = sum(getattr(policy, r) for r in RULES) + 1 + extra
    assert sum(d.keep for d in available) <= bound

    # Same answer as a naive, independently written implementation.
    assert [(d.id, d.keep, d.reasons) for d in plan] == reference_plan(points, policy, now, pinned)


@pytest.mark.parametrize("seed", range(100))
def test_kept_available_bound_without_future_or_pins(seed):
    points, policy, now, _ = random_case(random.Random(seed), future=False, pins=False)
    status = {p.id: p.status for p in points}
    kept = sum(1 for d in apply_policy(points, policy, now) if d.keep and status[d.id] == "available")
    assert kept <= sum(getattr(policy, r) for r in RULES) + 1


@pytest.mark.parametrize("seed", range(100))
def test_input_order_does_not_matter(seed):
    rng = random.Random(seed)
    points, policy, now, pinned = random_case(rng)
    shuffled = points[:]
    rng.shuffle(shuffled)
    assert apply_policy(points, policy, now, pinned) == apply_policy(shuffled, policy, now, pinned)


@pytest.mark.parametrize("seed", range(100))
def test_raising_a_count_never_deletes_more(seed):
    rng = random.Random(seed)
    points, policy, now, pinned = random_case(rng)
    rule = rng.choice(RULES)
    bigger = RetentionPolicy(**{r: getattr(policy, r) + (rng.randrange(1, 5) if r == rule else 0) for r in RULES})
    kept = {d.id for d in apply_policy(points, policy, now, pinned) if d.keep}
    kept_bigger = {d.id for d in apply_policy(points, bigger, now, pinned) if d.keep}
    assert kept <= kept_bigger
