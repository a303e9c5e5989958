"""The one clock: every `now()` and every wait in dr goes through here, so tests can steer time."""

from __future__ import annotations

import threading
from datetime import datetime, timezone


class Clock:
    """Wall-clock time in UTC, and sleeps that wake early when a run is cancelled."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

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
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        self.slept.append(seconds)
        return bool(cancel and cancel.is_set())
