"""Clocks the scheduler builds on dr.clock.Clock (still the one source of time).

* `StopAwareClock`: what a job's context gets. Its sleeps also end when the scheduler is told to
  stop (SIGTERM/SIGINT), so a backup waiting on AWS stops at its next poll and records where it
  was, as Ctrl-C on `dr backup run` does.
* `ScaledClock`: starts at a given instant and runs `speed` times faster than real time. Only for
  tests and rehearsals (`dr schedule --clock-start ... --clock-speed 60`: a minute per second;
  `--clock-anchor` is the real Unix time at which that clock reads `--clock-start`).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from dr.clock import Clock

_SLICE = 0.5  # real seconds between checks of the stop event


class StopAwareClock(Clock):
    def __init__(self, inner: Clock, stop: threading.Event):
        self.inner, self.stop = inner, stop

    def now(self) -> datetime:
        return self.inner.now()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """True if `cancel` or the scheduler's stop was set (the caller should stop)."""
        remaining = seconds
        while True:
            if self.stop.is_set() or (cancel is not None and cancel.is_set()):
                return True
            if remaining <= 0:
                return False
            step = min(remaining, _SLICE * getattr(self.inner, "speed", 1.0))
            if self.inner.sleep(step, cancel):
                return True
            remaining -= step


class ScaledClock(Clock):
    """`start` at real time `anchor` (Unix seconds; default: now), then `speed` times faster.

    Processes given the same start and anchor share one clock, whenever each of them started.
    Its monotonic time runs `speed` times faster too, so deadlines agree with its sleeps."""

    def __init__(self, start: datetime, speed: float = 1.0, anchor: float | None = None):
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware start time")
        if speed <= 0:
            raise ValueError("clock speed must be > 0")
        self.start, self.speed = start, speed
        self._real = Clock()
        since_anchor = self._real.now().timestamp() - anchor if anchor is not None else 0.0
        self._t0 = self._real.monotonic() - since_anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        """Clock seconds since `start`."""
        return (self._real.monotonic() - self._t0) * self.speed

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        return super().sleep(max(seconds, 0) / self.speed, cancel)
