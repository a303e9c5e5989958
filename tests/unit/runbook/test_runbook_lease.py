"""The run lease (one holder per stack, renewed, taken over race-free, a failover preempting a
drill) and the resume rules that keep time-sensitive gates honest."""

from __future__ import annotations

import threading
import time

import pytest

from dr.clock import Clock
from dr.runbook import RunLocked, run_runbook
from dr.runbook.journal import JournalFenced, RunJournal
from dr.runbook.lease import Claim, Lease, decide, holder_state, lease_key, was_preempted
from dr.state.local import LocalStore
from tests.support.runbook_world import World, runbook
from tests.support.runbook_world import engine as engine_on_sim_clock


def engine(tmp_path, **kwargs):
    """These runs race each other on threads and leases expire in real time: a real clock."""
    return engine_on_sim_clock(tmp_path, clock=Clock(), **kwargs)

HOLDER = {"run_id": "failover-20261201T000000Z-aaaa", "runbook": "failover", "kind": "failover",
          "drill": False, "owner": {"host": "a", "pid": 1, "session": "s1"},
          "acquired_at": "2026-12-01T00:00:00+00:00", "renewed_at": "2026-12-01T00:00:30+00:00",
          "expires_at": "2026-12-01T00:02:30+00:00", "released_at": None}
RESUME = Claim(run_id=HOLDER["run_id"], runbook="failover", kind="failover", drill=False, resume=True)
NEW = Claim(run_id="failover-20261201T010000Z-bbbb", runbook="failover", kind="failover", drill=False)


# -- the decision, pure ------------------------------------------------------------------------


@pytest.mark.parametrize("state,status,claim,action,words", [
    ("released", None, NEW, "take", "released"),
    ("live", "running", RESUME, "refuse", "is still going on"),
    ("live", "running", Claim(**{**RESUME.__dict__, "take_over": True}), "take", "--take-over"),
    ("expired", "running", RESUME, "take", "its lease expired"),
    ("dead", "running", RESUME, "take", "process on this host is gone"),
    ("live", "failed", RESUME, "take", "its journal says it ended failed"),
    ("live", "running", NEW, "refuse", "another run is in progress"),
    ("expired", "running", NEW, "refuse", "did not finish"),
    ("expired", "failed", NEW, "refuse", "did not finish"),
    ("live", "completed", NEW, "take", "completed without releasing"),
    ("expired", None, NEW, "take", "died before writing its journal"),
])
def test_who_may_take_the_lease(state, status, claim, action, words):
    decision = decide(HOLDER, state, status, claim)
    assert decision.action == action and words in decision.why


def test_a_failover_preempts_a_drill_live_or_not_and_a_drill_never_preempts():
    drill = {**HOLDER, "run_id": "drill-20261201T000000Z-dddd", "drill": True, "kind": "drill"}
    for state in ("live", "expired"):
        assert decide(drill, state, "running", NEW).action == "preempt"
    drill_claim = Claim(run_id="drill-20261201T020000Z-eeee", runbook="drill", kind="drill", drill=True)
    assert decide(drill, "live", "running", drill_claim).action == "refuse"
    assert decide(HOLDER, "live", "running", drill_claim).action == "refuse"  # a failover holds it


def test_take_over_never_displaces_a_session_that_has_just_taken_the_run_over():
    fresh = {**HOLDER, "took_over": {"session": "s0"}, "renewed_at": HOLDER["acquired_at"]}
    claim = Claim(**{**RESUME.__dict__, "take_over": True})
    assert "taken over moments ago" in decide(fresh, "live", "running", claim).why
    renewed = {**fresh, "renewed_at": "2026-12-01T00:00:30+00:00"}  # it lived a heartbeat: deliberate
    assert decide(renewed, "live", "running", claim).action == "take"


def test_holder_state_uses_expiry_release_and_local_pids():
    from datetime import datetime, timezone

    from dr.runbook.lease import _boot_id

    now = datetime(2026, 12, 1, 0, 1, tzinfo=timezone.utc)
    here = {**HOLDER, "owner": {**HOLDER["owner"], "boot": _boot_id()}}
    assert holder_state(here, now, "b", lambda pid: True) == "live"
    assert holder_state(here, now.replace(minute=3), "b", lambda pid: True) == "expired"
    assert holder_state(here, now, "a", lambda pid: False) == "dead"  # same host and boot, pid gone
    other_boot = {**HOLDER, "owner": {**HOLDER["owner"], "boot": "another-boot"}}
    assert holder_state(other_boot, now, "a", lambda pid: False) == "live"  # its pids mean nothing here
    assert holder_state({**HOLDER, "released_at": "x"}, now, "b", lambda pid: True) == "released"


# -- the lease against a store -----------------------------------------------------------------


def _acquire(store, claim, ttl=60.0, messages=None):
    from dr.clock import Clock

    return Lease.acquire(store, "acme-web", claim, Clock(), journal_status=lambda run_id: "running", ttl=ttl,
                         log=(messages.append if messages is not None else lambda m: None))


def test_renewal_is_a_compare_and_swap_and_a_lost_lease_says_to_whom(tmp_path):
    store = LocalStore(tmp_path)
    held = _acquire(store, Claim(run_id="drill-20261201T000000Z-dddd", runbook="drill", kind="drill", drill=True))
    assert held.renew() is None  # renewed: still ours
    assert store.get_json(lease_key("acme-web"))["renewed_at"] != store.get_json(lease_key("acme-web"))["acquired_at"]
    messages: list[str] = []
    failover = _acquire(store, NEW, messages=messages)
    assert failover.preempted["run_id"] == "drill-20261201T000000Z-dddd"
    assert any("a real failover preempts drill" in m for m in messages)
    assert was_preempted(store, "drill-20261201T000000Z-dddd")["by"] == NEW.run_id
    reason, why = held.renew()
    assert reason == "preempted" and why.startswith(f"preempted by failover {NEW.run_id}")
    held.release()  # a lost lease is not released (it is not ours): the failover keeps it
    assert store.get_json(lease_key("acme-web"))["run_id"] == NEW.run_id
    failover.release()
    assert store.get_json(lease_key("acme-web"))["released_at"]


def test_of_many_threads_taking_an_expired_lease_exactly_one_wins(tmp_path):
    store = LocalStore(tmp_path)
    stale = _acquire(store, RESUME, ttl=0.05)
    stale._stop.set()  # its machine died: no more renewals
    time.sleep(0.1)
    results: list = []

    def resume() -> None:
        try:
            results.append(_acquire(store, RESUME))
        except RunLocked as exc:
            results.append(exc)

    threads = [threading.Thread(target=resume) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if isinstance(r, Lease)]
    assert len(won) == 1 and len(results) == 12
    assert all("is still going on" in str(r) for r in results if isinstance(r, RunLocked))


def test_a_journal_written_by_another_session_fences_the_old_one(tmp_path):
    from dr.clock import Clock

    store = LocalStore(tmp_path)
    rb = runbook("version: 1\nname: j\nsteps:\n  - {id: n, type: noop}\n", tmp_path)
    old = RunJournal.create(store, rb, "j-20261201T000000Z-aaaa", kind="j", drill=False, region="r",
                            params={}, clock=Clock())
    new = RunJournal.load(store, old.run_id, Clock())
    new.resume()  # the new holder writes first
    with pytest.raises(JournalFenced, match="written by another session"):
        old.transition("n", "running")
    assert RunJournal.load(store, old.run_id, Clock()).doc["steps"]["n"]["status"] == "pending"


# -- through the engine ------------------------------------------------------------------------

SLOW_DRILL = """\
version: 1
name: ctrlc
steps:
  - {id: first, type: make, with: {name: first}}
  - {id: slow, type: make, needs: [first], with: {name: slow, seconds: 20}}
"""


def test_a_failover_preempts_a_running_drill_which_stops_and_tears_down(tmp_path):
    world = World()
    drill_ectx = engine(tmp_path, drill=True, lease_ttl=0.4)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=run_runbook(
        runbook(SLOW_DRILL, tmp_path, world), drill_ectx)))
    thread.start()
    deadline = time.monotonic() + 5
    while world.count("execute", "slow") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    failover = engine(tmp_path, drill=False, kind="failover", lease_ttl=0.4)
    result = run_runbook(runbook("version: 1\nname: ctrlc\nsteps:\n  - {id: n, type: noop}\n", tmp_path),
                         failover)
    thread.join(10)
    drill = box["result"]
    assert result.status == "completed" and result.preempted["run_id"] == drill.run_id
    assert drill.status == "interrupted" and drill.exit_code == 130
    assert drill.preempted_by.startswith(f"preempted by failover {result.run_id}")
    assert world.order("teardown") == ["slow", "first"] and world.resources == {}  # it tore itself down
    assert any("LEASE LOST: preempted" in m for m in drill_ectx.messages)


def test_a_preempted_drill_whose_process_was_gone_only_tears_down_on_resume(tmp_path):
    world = World()
    rb = runbook(SLOW_DRILL.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    store_ectx = engine(tmp_path, drill=True, keep=True)
    drill = run_runbook(rb, store_ectx)  # kept: its resources stay, like a drill that died
    store = store_ectx.store
    store.put_json(f"preemptions/{drill.run_id}.json", {"run_id": drill.run_id, "by": "failover-x",
                                                        "by_kind": "failover", "at": "now"})
    doc = store.get_json(f"journals/{drill.run_id}.json")
    doc["status"] = "running"  # it died in the middle
    store.put_json(f"journals/{drill.run_id}.json", doc)
    resumed = run_runbook(rb, engine(tmp_path, drill=True), resume=drill.run_id)
    assert resumed.status == "interrupted" and "was preempted by failover failover-x" in resumed.error
    assert world.count("execute", "first") == 1  # nothing ran again
    assert world.resources == {}  # only the teardown


GATED = """\
version: 1
name: gated
steps:
  - {id: db, type: make, with: {name: db}}
  - {id: health, type: http.wait_healthy, needs: [db]}
  - {id: flip, type: make, needs: [health], with: {name: flip}}
"""


def test_on_resume_the_health_gate_runs_again_before_what_needs_it(tmp_path):
    world = World()
    world.fail_next.add("flip")  # e.g. the DNS server was down
    rb = runbook(GATED, tmp_path, world)
    first = run_runbook(rb, engine(tmp_path))
    assert first.status == "failed" and world.count("execute", "health") == 1
    resumed = run_runbook(rb, engine(tmp_path), resume=first.run_id)
    assert resumed.status == "completed"
    assert world.count("execute", "health") == 2  # the gate passed again, in this session
    assert world.count("execute", "db") == 1  # what does not go stale is not redone
    executed = [step for what, step in world.calls if what == "execute"]
    assert executed[-2:] == ["health", "flip"]  # the gate, then what needs it


def test_steps_downstream_of_a_torn_down_step_are_put_back_in_doubt(tmp_path):
    world = World()
    world.fail_next.add("flip")
    rb = runbook(GATED, tmp_path, world)
    first = run_runbook(rb, engine(tmp_path, drill=True))  # fails at flip; the teardown removes db
    assert first.status == "failed" and world.resources == {}
    resumed = run_runbook(rb, engine(tmp_path, drill=True, keep=True), resume=first.run_id)
    assert resumed.status == "completed"
    assert world.count("execute", "db") == 2 and world.count("execute", "health") == 2
    assert world.count("check", "db") == 1  # asked the world first: gone, so made again
    assert sorted(world.resources) == [n for n in sorted(world.resources) if "drill" in n] and len(world.resources) == 2
