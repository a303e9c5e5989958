"""The one clock: wall time (`now`), elapsed time (`monotonic`) and waiting (`sleep`); and the
one way times are written and read back (`iso`, `parse_iso`, `parse_iso_or_none`).

Deadlines, durations and waits use `monotonic()` and `sleep()` from here, never `time.*`, so a
`FixedClock` steers them in tests: its `sleep` advances its monotonic time at once, and
`advance()` moves both its wall and monotonic time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
import time
from datetime import datetime, timedelta, timezone
from typing import Any


def iso(dt: datetime) -> str:
    """An aware datetime as ISO-8601 in UTC ('2024-05-01T12:00:00+00:00')."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: use an aware UTC datetime (dr.clock)")
    return dt.astimezone(timezone.utc).isoformat()


def parse_iso(s: str) -> datetime:
    """The inverse of `iso`; also accepts a trailing 'Z'. Naive times are rejected."""
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {s!r} has no timezone")
    return dt.astimezone(timezone.utc)


def parse_iso_or_none(value: Any) -> datetime | None:
    """Like `parse_iso`, for data read back from a store: None for anything that is not an
    ISO time with a timezone (never raises)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


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


class PausingClock(Clock):
    """A clock for dr.wait.poll whose pauses go through `pause` (StepContext.wait, which raises
    Interrupted at Ctrl-C and sleeps on the run's clock); its time is `clock`'s."""

    def __init__(self, clock: Clock, pause: Callable[[float], None]):
        self.now, self.monotonic, self.pause = clock.now, clock.monotonic, pause

    def sleep(self, seconds: float, cancel=None) -> bool:
        self.pause(seconds)
        return False
