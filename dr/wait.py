"""The one wait loop: ask the world until it answers "ready", "failed", or time is up.

Every wait in dr (a snapshot copy, a restored database, a stack, a DNS change, a health URL)
is this loop with a different `describe`. It reads time from the clock it is given (`monotonic`
for the deadline, `sleep` for the pause), so a `FixedClock` runs a ten-minute wait in no time in
tests, and a cancel event (Ctrl-C, SIGTERM) ends the pause at once.

The stop rule is one: a deadline in seconds from the first check. The last answer is always
checked before the deadline is judged, so a wait never fails on an answer it did not read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Generic, TypeVar

from dr.clock import Clock
from dr.config.durations import format_duration
from dr.errors import Interrupted, OperationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pause `first` seconds after the first check, growing by `factor` up to `most`."""

    first: float = 5.0
    factor: float = 1.0
    most: float = 60.0

    def pauses(self):
        pause = self.first
        while True:
            yield pause
            pause = min(self.most, pause * self.factor)


@dataclass
class Waited(Generic[T]):
    """What a finished wait saw last, and how long and how many checks it took."""

    value: T
    checks: int
    seconds: float


def poll(describe: Callable[[], T], *, ready: Callable[[T], bool],
         what: str, clock: Clock, timeout: float,
         failed: Callable[[T], str | None] = lambda _value: None,
         progress: Callable[[T], None] = lambda _value: None,
         still: Callable[[T], str] = lambda _value: "not ready",
         backoff: Backoff = Backoff(),
         cancel: threading.Event | None = None,
         hint: str | None = None) -> Waited[T]:
    """Call `describe` until `ready(value)`; return what was seen.

    `failed(value)` returns a reason when the thing can never become ready (the loop stops at once
    with OperationFailed naming it); `progress(value)` is told every answer that is not yet ready;
    `still(value)` says what the last answer was when time is up ("creating": "still creating").
    Past `timeout` seconds the wait fails with `what` and the `hint`; a set `cancel` raises
    Interrupted. `describe` may raise: its errors pass through unchanged.
    """
    start = clock.monotonic()
    checks = 0
    for pause in backoff.pauses():
        value = describe()
        checks += 1
        if ready(value):
            return Waited(value, checks, clock.monotonic() - start)
        reason = failed(value)
        if reason:
            raise OperationFailed(f"{what}: {reason}", hint=hint)
        elapsed = clock.monotonic() - start
        if elapsed >= timeout:
            raise OperationFailed(f"{what}: still {still(value)} after {format_duration(timedelta(seconds=timeout))} "
                                  f"({checks} checks)", hint=hint)
        progress(value)
        if clock.sleep(min(pause, max(0.0, timeout - elapsed)), cancel):
            raise Interrupted(f"interrupted while waiting: {what}")
    raise AssertionError("unreachable")  # pragma: no cover - pauses() never ends

