"""`--watch`: poll every N seconds and say what changed since the previous poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dr.clock import Clock
from dr.monitor.report import report_changes
from dr.monitor.service import SetResult, results_dict


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


def watch(check: Callable[[], list[SetResult]], interval: float, *, clock: Clock,
          on_poll: Callable[[Poll, bool], None], polls: int | None = None) -> Poll:
    """Run `check` every `interval` seconds (start to start) until `polls` polls (None: until
    Ctrl-C); `on_poll(poll, is_last)` sees each one. Returns the last poll."""
    prev: list[SetResult] | None = None
    index = 0
    while True:
        index += 1
        started = time.monotonic()
        results = check()
        poll = Poll(index, clock.now(), results, set_changes(prev, results))
        last = polls is not None and index >= polls
        on_poll(poll, last)
        if last:
            return poll
        prev = results
        clock.sleep(max(0.0, interval - (time.monotonic() - started)))
