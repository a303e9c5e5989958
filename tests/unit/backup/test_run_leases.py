"""Run leases (dr.backup.leases): what proves a run dead, stale or alive, and that a lease is
written before the run creates anything and gone when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from dr.backup.leases import STALE_AFTER, RunLease, lease_state, owner, read_leases
from dr.clock import FixedClock
from dr.state import LocalStore

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


def doc(**who) -> dict:
    return {"format": "dr-run-lease/1", "run_id": "backup-20300101T115900Z-abcd",
            "owner": who, "heartbeat": (NOW - timedelta(seconds=30)).isoformat()}


def test_this_process_is_live_whatever_the_heartbeat():
    me = owner()
    old = doc(**me)
    old["heartbeat"] = (NOW - timedelta(days=3)).isoformat()  # a hung process is still alive
    assert lease_state(old, NOW)[0] == "live"


def test_a_dead_process_on_this_machine_is_dead_at_once():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    state, why = lease_state(doc(**{**owner(), "pid": child.pid, "pid_started": None}), NOW)
    assert state == "dead" and f"pid {child.pid}" in why and "gone" in why


def test_a_reused_pid_is_dead():
    me = owner()
    assert me["pid_started"] is not None  # Linux: /proc/<pid>/stat
    state, why = lease_state(doc(**{**me, "pid_started": me["pid_started"] - 1}), NOW)
    assert state == "dead" and "another process" in why


def test_another_machine_is_judged_by_its_heartbeat():
    other = {"host": "elsewhere", "boot": "b", "pid": os.getpid()}
    assert lease_state(doc(**other), NOW)[0] == "live"
    late = doc(**other)
    late["heartbeat"] = (NOW - STALE_AFTER - timedelta(seconds=1)).isoformat()
    state, why = lease_state(late, NOW)
    assert state == "stale" and "has not renewed" in why
    # the same host name in another boot (or another container) is another machine
    assert lease_state(doc(**{**owner(), "boot": "other-boot", "pid": 999999}), NOW)[0] == "live"


def test_lease_is_written_at_start_holds_things_and_is_gone_at_the_end(tmp_path):
    store = LocalStore(tmp_path)
    clock = FixedClock(NOW)
    with RunLease(store, "backup-20300101T120000Z-abcd", "backup", clock,
                  heartbeat=timedelta(milliseconds=20)) as lease:
        [(key, first)] = read_leases(store)
        assert key == "leases/runs/backup-20300101T120000Z-abcd.json"
        assert first["owner"]["pid"] == os.getpid() and first["files"] == []
        lease.hold(files=["/b/lamp/x.dump.zst.drenc"], databases=["dr_verify_abcdef"])
        [(_, held)] = read_leases(store)
        assert held["files"] == ["/b/lamp/x.dump.zst.drenc"]
        assert held["databases"] == ["dr_verify_abcdef"]
        clock.set(NOW + timedelta(minutes=1))
        import time

        deadline = time.monotonic() + 5
        while read_leases(store)[0][1]["heartbeat"] == first["heartbeat"]:
            assert time.monotonic() < deadline, "the heartbeat did not renew the lease"
            time.sleep(0.01)
    assert read_leases(store) == []
