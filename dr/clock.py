"""The one clock: wall time (`now`), elapsed time (`monotonic`) and waiting (`sleep`).

Deadlines, durations and waits use `monotonic()` and `sleep()` from here, never `time.*`, so a
`FixedClock` steers them in tests: its `sleep` advances its monotonic time at once, and
`advance()` moves both its wall and monotonic time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone


class Clock:
    """Wall-clock time in UTC, and sleeps that wake early when a run is cancelled."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for deadlines and durations."""
        return time.monotonic()

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Sleep up to `seconds`; return True if `cancel` was set (the caller should stop)."""
        if cancel is None:
            threading.Event().wait(seconds)
            return False
        return cancel.wait(seconds)


class FixedClock(Clock):
    """A clock for tests and planning: `now()` is what you set; sleeps return at once."""

    def __init__(self, now: datetime):
        if now.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = now
        self._mono = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward together."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Return at once; monotonic time moves on by `seconds` (wall time stays where it was set)."""
        self.slept.append(seconds)
        if cancel is not None and cancel.is_set():
            return True
        self._mono += max(0.0, seconds)
        return False
