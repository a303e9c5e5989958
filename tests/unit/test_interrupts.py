"""The one Ctrl-C / SIGTERM policy (dr.interrupts), as the runbook engine and `dr schedule` use it."""

from __future__ import annotations

import os
import signal

import pytest

from dr.interrupts import Interrupts


def _signal(sig=signal.SIGINT):
    os.kill(os.getpid(), sig)


def test_first_signal_cancels_calls_on_stop_and_logs_its_name():
    said, stopped = [], []
    with Interrupts(said.append, first="{signal} received: stopping", on_stop=lambda: stopped.append(1)) as i:
        _signal(signal.SIGTERM)
        assert i.cancel.is_set() and stopped == [1]
    assert said == ["SIGTERM received: stopping"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_runbook_ignores_further_signals():
    said = []
    with Interrupts(said.append) as i:
        _signal()
        _signal()
    assert i.cancel.is_set() and len(said) == 1 and said[0].startswith("stopping")


def test_the_scheduler_exits_at_once_on_the_second_signal():
    stopped = []
    with pytest.raises(KeyboardInterrupt):
        with Interrupts(lambda m: None, on_stop=lambda: stopped.append(1), second_forces=True):
            _signal()
            assert stopped == [1]
            _signal()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_during_teardown_the_first_signal_warns_and_the_second_stops_it():
    said = []
    with Interrupts(said.append) as i:
        i.in_teardown = True
        _signal()
        assert not i.stop_teardown.is_set() and "press Ctrl-C again" in said[0]
        _signal()
        assert i.stop_teardown.is_set() and not i.cancel.is_set()


def test_stop_from_inside_is_the_first_signal():
    stopped = []
    i = Interrupts(lambda m: None, on_stop=lambda: stopped.append(1))
    i.stop("lease lost")
    assert i.cancel.is_set() and i.reason == "lease lost" and stopped == [1]
