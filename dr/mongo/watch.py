"""`--watch`: poll every N seconds and say what changed since the previous poll."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dr.clock import Clock
from dr.mongo.model import Finding, MongoReport
from dr.mongo.service import SetResult, results_dict


@dataclass(frozen=True)
class Poll:
    index: int
    checked_at: datetime
    results: list[SetResult]
    changes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"poll": self.index, "checked_at": self.checked_at.isoformat(),
                **results_dict(self.results), "changes": self.changes}


def set_changes(prev: list[SetResult] | None, cur: list[SetResult]) -> list[dict]:
    """Changes per set: the report diff, or a check that started failing or recovered."""
    if prev is None:
        return []
    before = {r.name: r for r in prev}
    changes = []
    for r in cur:
        old = before.get(r.name)
        if r.error is not None:
            if old is None or old.error is None or str(old.error) != str(r.error):
                changes.append({"set": r.name, "kind": "error", "text": f"check failed: {r.error}"})
        elif old is not None and old.report is None:
            changes.append({"set": r.name, "kind": "recovered", "text": "check succeeds again"})
        elif old is not None:
            changes += [{"set": r.name, **c} for c in report_changes(old.report, r.report)]
    return changes


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


def watch(check: Callable[[], list[SetResult]], interval: float, *, clock: Clock,
          on_poll: Callable[[Poll, bool], None], polls: int | None = None) -> Poll:
    """Run `check` every `interval` seconds (start to start) until `polls` polls (None: until
    Ctrl-C); `on_poll(poll, is_last)` sees each one. Returns the last poll."""
    prev: list[SetResult] | None = None
    index = 0
    while True:
        index += 1
        started = clock.monotonic()
        results = check()
        poll = Poll(index, clock.now(), results, set_changes(prev, results))
        last = polls is not None and index >= polls
        on_poll(poll, last)
        if last:
            return poll
        prev = results
        clock.sleep(max(0.0, interval - (clock.monotonic() - started)))
