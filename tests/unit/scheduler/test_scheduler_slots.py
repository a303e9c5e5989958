"""The slot-lock protocol on its own (dr.scheduler.slots), the pure alert conditions
(dr.scheduler.rpo) and the scheduler's clocks' monotonic time. No threads, no sleeping."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import FixedClock, iso
from dr.config import parse_schedule
from dr.scheduler import jobs as J
from dr.scheduler.clocks import ScaledClock, StopAwareClock
from dr.scheduler.rpo import job_condition, rpo_condition, store_condition
from dr.scheduler.slots import LOCK_FORMAT, SlotLocks, record_crash
from dr.scheduler.spool import StoreUnavailable
from dr.state.local import LocalStore
from dr.state.records import RunStore

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 13, 5, tzinfo=UTC)
JOB = J.Job("app-db", "rds", parse_schedule("every 1h"), "rds-instance")
SLOT = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
DUE = J.Due("app-db", SLOT, SLOT, 0)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "state")


def locks(store, owner="host-a"):
    return SlotLocks(store, owner, stale_after=timedelta(minutes=5))


def test_the_first_claim_wins_and_the_second_is_taken(store):
    won = locks(store).claim(JOB, DUE, T0, None, claim_locally=False)
    assert won.outcome == "won" and won.checked and not won.local
    doc = store.get_json(won.key)
    assert doc["format"] == LOCK_FORMAT and doc["owner"] == "host-a" and doc["status"] == "running"
    assert doc["slot"] == iso(SLOT)
    lost = locks(store, "host-b").claim(JOB, DUE, T0, None, claim_locally=False)
    assert lost.outcome == "taken" and lost.slot == SLOT


def test_a_running_previous_slot_makes_the_next_one_busy_until_its_heartbeat_is_stale(store):
    first = locks(store).claim(JOB, DUE, T0, None, claim_locally=False)
    nxt = J.Due("app-db", SLOT + timedelta(hours=1), SLOT + timedelta(hours=1), 0)
    later = T0 + timedelta(hours=1)
    locks(store).beat(first.key, first.doc, later)
    busy = locks(store, "host-b").claim(JOB, nxt, later + timedelta(minutes=1), SLOT, claim_locally=False)
    assert busy.outcome == "busy" and busy.slot == SLOT and not busy.checked
    stale = later + timedelta(minutes=6)
    assert locks(store, "host-b").claim(JOB, nxt, stale, SLOT, claim_locally=False).outcome == "won"


def test_finish_abandon_and_history(store):
    sl = locks(store)
    claim = sl.claim(JOB, DUE, T0, None, claim_locally=False)
    sl.finish(claim.key, claim.doc, status="completed", finished=T0 + timedelta(minutes=3), run_id="r1",
              error=None, seconds=180.0)
    history = sl.history(JOB)
    assert history.last_claimed == SLOT and history.last_success == T0 + timedelta(minutes=3)
    assert history.last_duration == 180.0
    nxt = J.Due("app-db", SLOT + timedelta(hours=1), SLOT + timedelta(hours=1), 0)
    second = sl.claim(JOB, nxt, T0 + timedelta(hours=1), SLOT, claim_locally=False)
    sl.abandon(second.key, second.doc, T0 + timedelta(hours=1, minutes=1))
    doc = store.get_json(second.key)
    assert doc["status"] == "interrupted" and "scheduler stopped" in doc["error"]
    assert sl.history(JOB).last_claimed == SLOT + timedelta(hours=1)
    sl.prune([JOB], T0 + timedelta(days=30), timedelta(days=7))
    assert store.list_keys(J.lock_prefix("app-db")) == [second.key]  # the newest stays


class Unreachable(LocalStore):
    def __init__(self, root):
        super().__init__(root)
        self.local: dict[str, dict] = {}

    def list_keys(self, prefix):
        raise StoreUnavailable("injected: unreachable")

    def create_local(self, key, doc):
        return self.local.setdefault(key, doc) is doc


def test_an_unreachable_store_waits_or_claims_locally(tmp_path):
    store = Unreachable(tmp_path / "state")
    claim = locks(store).claim(JOB, DUE, T0, None, claim_locally=False)
    assert claim.outcome == "unreachable" and "injected" in claim.error and not claim.checked
    claim = locks(store).claim(JOB, DUE, T0, None, claim_locally=True)
    assert claim.outcome == "won" and claim.local and claim.doc["degraded"]
    assert locks(store, "host-b").claim(JOB, DUE, T0, None, claim_locally=True).outcome == "taken"


def test_a_crash_is_recorded_as_a_failed_run(store):
    clock = FixedClock(T0 + timedelta(minutes=2))
    run_id = record_crash(store, clock, JOB, started=T0, slot=SLOT, error="RuntimeError: boom")
    record = RunStore(store).load(run_id)
    assert (record.kind, record.status, record.error) == ("backup", "failed", "RuntimeError: boom")
    assert record.started_at == iso(T0) and record.finished_at == iso(clock.now())
    assert record.command == f"dr schedule (job app-db, slot {iso(SLOT)})"
    assert [(r.name, r.kind, r.status, r.error) for r in record.results] == [
        ("app-db", "rds-instance", "failed", "RuntimeError: boom")]


def test_a_crash_that_cannot_be_recorded_is_logged(tmp_path, caplog):
    class Broken(LocalStore):
        def put_json(self, key, value):
            raise OSError("disk full")

    assert record_crash(Broken(tmp_path), FixedClock(T0), JOB, started=T0, slot=SLOT, error="x") is None
    assert "could not record the failure" in caplog.text


def test_rpo_conditions():
    hour = timedelta(hours=1)
    kw = dict(started_at=T0 - 3 * hour, running=False, objective=hour, grace=timedelta(minutes=10),
              dr_region="us-west-2", owner="host-a")
    cond, breach = rpo_condition(JOB, timedelta(hours=2, minutes=5, seconds=13), T0, **kw)
    assert cond.failing and breach and cond.subject == "[dr] RPO breach: app-db's newest copy in us-west-2 is 2h5m old"
    cond, breach = rpo_condition(JOB, timedelta(minutes=65), T0, **kw)
    assert not cond.failing and breach  # over the objective, within the grace
    cond, _ = rpo_condition(JOB, timedelta(minutes=90), T0, **{**kw, "running": True})
    assert not cond.failing  # a running job gets up to twice the objective
    cond, breach = rpo_condition(JOB, None, T0, **kw)
    assert cond.failing and breach and cond.incident == "no-copy"


def test_job_and_store_conditions():
    cond = job_condition(JOB, SLOT, status="failed", run_id="r1", error="boom", owner="host-a")
    assert cond.failing and cond.key == "job-app-db" and "dr runs show r1" in cond.message

    class Store:
        description, up, down_since, last_error = "s3://state", False, T0, "timeout"

    assert store_condition(Store, T0 + timedelta(minutes=5), was_open=False, owner="h") is None
    assert store_condition(Store, T0 + timedelta(minutes=10), was_open=False, owner="h").failing
    Store.up = True
    assert not store_condition(Store, T0 + timedelta(minutes=20), was_open=True, owner="h").failing


def test_the_scheduler_clocks_give_monotonic_time():
    fixed = FixedClock(T0)
    stop = threading.Event()
    aware = StopAwareClock(fixed, stop)
    fixed.advance(42)
    assert aware.monotonic() == fixed.monotonic() == 42
    scaled = ScaledClock(T0, speed=3600.0)
    first = scaled.monotonic()
    assert 0 <= first < 3600  # clock seconds since start
    assert abs((scaled.now() - T0).total_seconds() - scaled.monotonic()) < 3600
