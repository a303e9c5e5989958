"""Ctrl-C (and SIGTERM): ask the run to stop instead of killing it mid-write. The one policy,
used by the runbook engine and by `dr schedule`.

While a run is going, the first signal sets `cancel` (and calls `on_stop`): no new step or job
starts, running ones are told to stop (their waits end and raise Interrupted), and the record
says where they stopped. What a further signal does is the caller's choice:

* a runbook: nothing more, except during a drill's teardown, where the first signal only warns
  and a second sets `stop_teardown` (what is left is recorded as skipped, and may keep billing);
* the scheduler (`second_forces=True`): it raises KeyboardInterrupt, to exit at once (130).

Handlers are installed only on the main thread (Python delivers signals there) and restored
afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RUN_STOPPING = ("stopping: no new step will start; running steps are asked to stop "
                "(the journal records where; --resume continues)")


class Interrupts:
    """`first` is logged at the first signal; "{signal}" in it is replaced by the signal's name."""

    def __init__(self, log: Callable[[str], None], *, first: str = RUN_STOPPING,
                 on_stop: Callable[[], None] | None = None, second_forces: bool = False):
        self.log, self.first, self.on_stop, self.second_forces = log, first, on_stop, second_forces
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
        self._cancel()

    def _cancel(self) -> None:
        self.cancel.set()
        if self.on_stop is not None:
            self.on_stop()

    def _handle(self, signum: int, frame: object) -> None:
        if self.in_teardown:
            self._teardown_presses += 1
            if self._teardown_presses >= 2:
                self.stop_teardown.set()
            else:
                self.log("teardown is removing what the drill made; press Ctrl-C again to stop it "
                         "(what is left may keep billing)")
            return
        if self.cancel.is_set():
            if self.second_forces:
                raise KeyboardInterrupt
        else:
            self.log(self.first.replace("{signal}", signal.Signals(signum).name))
        self._cancel()
