"""The one wait loop, steered by a FixedClock: no real sleeps."""

import threading
from datetime import datetime, timezone

import pytest

from dr.clock import FixedClock
from dr.errors import Interrupted, OperationFailed
from dr.wait import Backoff, poll

T0 = datetime(2026, 12, 8, tzinfo=timezone.utc)


def answers(*values):
    it = iter(values)
    return lambda: next(it)


def test_returns_the_first_ready_answer_with_checks_and_elapsed_time():
    clock = FixedClock(T0)
    seen = []
    waited = poll(answers("creating", "copying", "available"), ready=lambda s: s == "available",
                  what="snapshot s1", clock=clock, timeout=600, progress=seen.append,
                  backoff=Backoff(first=5))
    assert (waited.value, waited.checks, waited.seconds) == ("available", 3, 10.0)
    assert seen == ["creating", "copying"]
    assert clock.slept == [5, 5]


def test_a_failed_answer_stops_at_once_with_its_reason():
    with pytest.raises(OperationFailed, match="snapshot s1: it is failed") as err:
        poll(answers("creating", "failed"), ready=lambda s: s == "available",
             failed=lambda s: f"it is {s}" if s == "failed" else None,
             what="snapshot s1", clock=FixedClock(T0), timeout=600, hint="see RDS events")
    assert err.value.hint == "see RDS events"


def test_the_deadline_is_judged_after_reading_the_last_answer():
    clock = FixedClock(T0)
    with pytest.raises(OperationFailed, match=r"still not ready after 12s \(4 checks\)"):
        poll(lambda: "creating", ready=lambda s: False, what="stack web", clock=clock,
             timeout=12, backoff=Backoff(first=4))
    # 4 + 4 + 4 seconds of pauses, never a pause past the deadline
    assert clock.slept == [4, 4, 4] and clock.monotonic() == 12


def test_the_time_out_says_what_the_last_answer_was():
    with pytest.raises(OperationFailed, match=r"snapshot s1: still copying after 10s \(3 checks\)"):
        poll(lambda: "copying", ready=lambda s: False, what="snapshot s1", clock=FixedClock(T0),
             timeout=10, backoff=Backoff(first=5), still=lambda s: s)


def test_backoff_grows_to_its_ceiling():
    clock = FixedClock(T0)
    with pytest.raises(OperationFailed):
        poll(lambda: 0, ready=lambda s: False, what="x", clock=clock, timeout=100,
             backoff=Backoff(first=10, factor=2, most=30))
    assert clock.slept == [10, 20, 30, 30, 10]


def test_a_cancel_ends_the_wait_as_interrupted():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Interrupted, match="waiting: db1"):
        poll(lambda: "creating", ready=lambda s: False, what="db1", clock=FixedClock(T0),
             timeout=60, cancel=cancel)


def test_errors_of_describe_pass_through():
    def boom():
        raise OperationFailed("AccessDenied")
    with pytest.raises(OperationFailed, match="AccessDenied"):
        poll(boom, ready=bool, what="x", clock=FixedClock(T0), timeout=1)
