"""Ctrl-C (and SIGTERM) during a run: ask the run to stop instead of killing it mid-write.

While a run is going, the first signal sets `cancel`: no new step starts, running steps are
told to stop (their `ctx.wait` raises), the journal records where the run stopped, and a drill
still tears down. A signal during teardown only warns; a second one there sets `stop_teardown`
(what is left is recorded as skipped, and may keep billing). Handlers are installed only when
the run is on the main thread (Python delivers signals there) and restored afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.cancel = threading.Event()
        self.stop_teardown = threading.Event()
        self.in_teardown = False
        self._teardown_presses = 0
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def stop(self, why: str) -> None:
        """Stop the run from inside (its lease was lost or preempted): like the first Ctrl-C."""
        self.reason = why
        self.cancel.set()

    def _handle(self, signum: int, frame: object) -> None:
        if self.in_teardown:
            self._teardown_presses += 1
            if self._teardown_presses >= 2:
                self.stop_teardown.set()
            else:
                self.log("teardown is removing what the drill made; press Ctrl-C again to stop it "
                         "(what is left may keep billing)")
            return
        if not self.cancel.is_set():
            self.log("stopping: no new step will start; running steps are asked to stop "
                     "(the journal records where; --resume continues)")
        self.cancel.set()
