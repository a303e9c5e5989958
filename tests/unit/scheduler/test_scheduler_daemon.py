"""The scheduler loop with a steered clock, a local state store and fake jobs: slots, locks,
catch-up, overlap, failures, alerts, the spool, health and metrics. No AWS, no sleeping."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import FixedClock
from dr.config import parse_config, parse_schedule
from dr.context import make_context
from dr.report.model import CopyEvent
from dr.sandbox import world
from dr.scheduler import jobs as J
from dr.scheduler.clocks import ScaledClock, StopAwareClock
from dr.scheduler.daemon import Options, Scheduler
from dr.scheduler.runners import JobOutcome
from dr.scheduler.spool import SpoolingStore
from dr.state.local import LocalStore
from dr.state.records import RunStore

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 13, 5, tzinfo=UTC)


def at(h, m=0, day=2):
    return datetime(2026, 3, day, h, m, tzinfo=UTC)


class Publisher:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []
        self.fail = False

    def publish(self, subject, message):
        if self.fail:
            raise ConnectionError("sns down")
        self.sent.append((subject, message))


class Runner:
    """A fake job: records its calls; fails, raises or blocks on request; returns a DR copy."""

    def __init__(self):
        self.calls: list[tuple[str, datetime]] = []
        self.raise_for: set[str] = set()
        self.fail_for: set[str] = set()
        self.block = threading.Event()
        self.block.set()
        self.lock = threading.Lock()

    def __call__(self, ctx, job, slot):
        with self.lock:
            self.calls.append((job.name, slot))
        self.block.wait(10)
        if job.name in self.raise_for:
            raise RuntimeError(f"{job.name} exploded")
        if job.name in self.fail_for:
            return JobOutcome("failed", run_id="backup-x", error="copy failed: KMS refused")
        now = ctx.clock.now()
        return JobOutcome("completed", run_id=f"backup-{job.name}-{slot:%H%M}",
                          copies=[CopyEvent(job.name, now, now, "snap", "us-west-2", "r")])


class FlakyStore(LocalStore):
    """A LocalStore that can be switched off, like a bucket behind a broken network."""

    down = False

    def _check(self):
        if self.down:
            raise ConnectionError("endpoint unreachable")

    def put_json(self, key, document):
        self._check()
        super().put_json(key, document)

    def get_json(self, key):
        self._check()
        return super().get_json(key)

    def create_json(self, key, document):
        self._check()
        return super().create_json(key, document)

    def list_keys(self, prefix):
        self._check()
        return super().list_keys(prefix)


@pytest.fixture
def config(tmp_path):
    return parse_config(world.config_text("http://127.0.0.1:1", tmp_path / "state"))


def make(config, tmp_path, clock, store, *, jobs=None, runner=None, publisher=None, name="a", **opts):
    ctx = make_context(config, clock=clock,
                       store=SpoolingStore(lambda: store, tmp_path / f"spool-{name}", now=clock.now))
    jobs = jobs or [J.Job("app-db", "rds", parse_schedule("every 1h"), "rds-instance")]
    options = Options(owner=f"host-{name}", rpo_alert_grace=timedelta(0), **opts)
    return Scheduler(ctx, jobs, options=options, runner=runner or Runner(), publisher=publisher or Publisher())


def settle(*schedulers):
    """One pass that may start jobs, then wait for them and record how they ended."""
    for s in schedulers:
        s.tick()
    for s in schedulers:
        for st in s.states.values():
            if st.running and st.running.thread:
                st.running.thread.join(10)
        s.tick()


def locks(store, job="app-db"):
    return {k: store.get_json(k) for k in store.list_keys(J.lock_prefix(job))}


# --- slots and locks ------------------------------------------------------------------------------


def test_each_slot_runs_once_and_downtime_gives_one_catch_up_run(config, tmp_path):
    clock, store, runner = FixedClock(T0), LocalStore(tmp_path / "state"), Runner()
    s = make(config, tmp_path, clock, store, runner=runner)
    s.load_state()
    s.tick()
    settle(s)
    clock.set(at(13, 59))
    settle(s)
    clock.set(at(14, 0, ))
    settle(s)
    assert runner.calls == [("app-db", at(13)), ("app-db", at(14))]
    clock.set(at(20, 30))  # down from 14:00 to 20:30: slots 15..19 missed
    settle(s)
    assert runner.calls[-1] == ("app-db", at(20)) and len(runner.calls) == 3
    docs = locks(store)
    assert docs[J.lock_key("app-db", at(20))]["missed_slots"] == 5
    assert {d["status"] for d in docs.values()} == {"completed"}
    assert s.metrics.job("app-db").missed_slots == 5


def test_a_restarted_scheduler_does_not_rerun_the_slot_it_already_ran(config, tmp_path):
    clock, store = FixedClock(T0), LocalStore(tmp_path / "state")
    first = make(config, tmp_path, clock, store)
    first.load_state()
    settle(first)
    runner = Runner()
    second = make(config, tmp_path, clock, store, runner=runner, name="b")
    second.load_state()
    settle(second)
    assert runner.calls == []
    assert second.metrics.job("app-db").last_success == T0


def test_two_schedulers_on_one_store_run_each_slot_exactly_once(config, tmp_path):
    clock, store = FixedClock(T0), LocalStore(tmp_path / "state")
    jobs = [J.Job(n, "rds", parse_schedule("every 15m"), "rds-instance") for n in ("a1", "a2", "a3")]
    ra, rb = Runner(), Runner()
    a = make(config, tmp_path, clock, store, jobs=jobs, runner=ra, name="a")
    b = make(config, tmp_path, clock, store, jobs=jobs, runner=rb, name="b")
    for minute in range(0, 120, 5):
        clock.set(T0 + timedelta(minutes=minute))
        threads = [threading.Thread(target=x.tick) for x in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        settle(a, b)
    runs = sorted(ra.calls + rb.calls)
    assert len(runs) == len(set(runs)) == 3 * 9  # slots 13:00 ... 15:00, 3 jobs; who runs is a race
    elsewhere = sum(x.metrics.job(j.name).claimed_elsewhere for x in (a, b) for j in jobs)
    assert elsewhere >= 1


def test_no_overlapping_runs_of_a_job(config, tmp_path):
    clock, store, runner = FixedClock(T0), LocalStore(tmp_path / "state"), Runner()
    runner.block.clear()
    s = make(config, tmp_path, clock, store, runner=runner)
    s.tick()
    clock.set(at(14, 1))
    s.tick()
    clock.set(at(15, 2))
    s.tick()
    assert runner.calls == [("app-db", at(13))]  # still running: 14:00 and 15:00 wait
    runner.block.set()
    settle(s)
    settle(s)
    assert runner.calls == [("app-db", at(13)), ("app-db", at(15))]  # one catch-up
    assert locks(store)[J.lock_key("app-db", at(15))]["missed_slots"] == 1


def test_a_job_still_running_on_another_machine_blocks_the_next_slot(config, tmp_path):
    clock, store = FixedClock(T0), LocalStore(tmp_path / "state")
    ra, rb = Runner(), Runner()
    ra.block.clear()
    a = make(config, tmp_path, clock, store, runner=ra, name="a")
    b = make(config, tmp_path, clock, store, runner=rb, name="b")
    a.tick()
    clock.set(at(14, 0, ))
    a.tick()  # heartbeat: a's lock stays fresh
    b.tick()
    assert rb.calls == [] and b.events[-1]["event"] == "busy"
    ra.block.set()
    settle(a)
    clock.set(at(14, 1))
    settle(b, a)
    assert sorted(ra.calls + rb.calls) == [("app-db", at(13)), ("app-db", at(14))]


def test_a_dead_schedulers_lock_does_not_block_forever(config, tmp_path):
    clock, store = FixedClock(T0), LocalStore(tmp_path / "state")
    store.create_json(J.lock_key("app-db", at(12)), {"status": "running", "heartbeat": at(12).isoformat()})
    runner = Runner()
    s = make(config, tmp_path, clock, store, runner=runner)
    settle(s)
    assert runner.calls == [("app-db", at(13))]


# --- failures and alerts --------------------------------------------------------------------------


def test_a_job_that_raises_is_recorded_alerted_once_and_cleared_once(config, tmp_path):
    clock, store, runner, pub = FixedClock(T0), LocalStore(tmp_path / "state"), Runner(), Publisher()
    runner.raise_for.add("app-db")
    other = J.Job("assets", "s3", parse_schedule("every 1h"), "s3")
    s = make(config, tmp_path, clock, store, runner=runner, publisher=pub,
             jobs=[J.Job("app-db", "rds", parse_schedule("every 1h"), "rds-instance"), other])
    settle(s)
    settle(s)
    assert ("assets", at(13)) in runner.calls  # the other job ran regardless
    records = RunStore(store).list(kind="backup")
    assert len(records) == 1 and records[0].status == "failed"
    assert "app-db exploded" in records[0].results[0].error and records[0].results[0].name == "app-db"
    assert locks(store)[J.lock_key("app-db", at(13))]["status"] == "failed"
    failed = [p for p in pub.sent if "failed" in p[0]]
    assert len(failed) == 1 and "app-db" in failed[0][0] and "dr runs show" in failed[0][1]
    clock.set(at(14))
    settle(s)  # fails again: same incident, no second message
    assert len([p for p in pub.sent if "failed" in p[0]]) == 1
    runner.raise_for.clear()
    clock.set(at(15))
    settle(s)
    cleared = [p for p in pub.sent if "succeeds again" in p[0]]
    assert len(cleared) == 1 and "is closed after 1h55m" in cleared[0][1]
    clock.set(at(16))
    settle(s)
    assert len(pub.sent) == 2
    assert store.get_json("alerts/job-app-db.json")["open"] is False


def test_a_failed_publish_is_retried(config, tmp_path):
    clock, store, runner, pub = FixedClock(T0), LocalStore(tmp_path / "state"), Runner(), Publisher()
    runner.fail_for.add("app-db")
    pub.fail = True
    s = make(config, tmp_path, clock, store, runner=runner, publisher=pub)
    settle(s)
    assert pub.sent == []
    pub.fail = False
    clock.set(at(14))
    settle(s)
    assert len(pub.sent) == 1 and "failed" in pub.sent[0][0]


def test_rpo_breach_alerts_once_and_clears_once(config, tmp_path):
    clock, store, runner, pub = FixedClock(T0), LocalStore(tmp_path / "state"), Runner(), Publisher()
    s = make(config, tmp_path, clock, store, runner=runner, publisher=pub)
    settle(s)  # a copy at 13:05
    runner.fail_for.add("app-db")
    for hour in (14, 15, 16):
        clock.set(at(hour, 30))
        settle(s)
        s.evaluate_rpo(clock.now())
    breaches = [p for p in pub.sent if "RPO breach" in p[0]]
    assert len(breaches) == 1 and "app-db's newest copy in us-west-2 is" in breaches[0][0]
    assert "dr_rpo_breach{resource=\"app-db\"} 1" in s.render_metrics()
    runner.fail_for.clear()
    clock.set(at(17, 1))
    settle(s)
    s.evaluate_rpo(clock.now())
    assert len([p for p in pub.sent if "RPO back within objective" in p[0]]) == 1
    assert "dr_rpo_breach{resource=\"app-db\"} 0" in s.render_metrics()


def test_two_schedulers_send_one_rpo_alert_between_them(config, tmp_path):
    clock, store, pub = FixedClock(T0), LocalStore(tmp_path / "state"), Publisher()
    a = make(config, tmp_path, clock, store, publisher=pub, name="a")
    b = make(config, tmp_path, clock, store, publisher=pub, name="b")
    point = at(9)
    for x in (a, b):
        x.metrics.set_point("app-db", "rds", point)
        x.started_at = at(0)
    a.evaluate_rpo(clock.now())
    b.evaluate_rpo(clock.now())
    assert len(pub.sent) == 1


# --- the state store unreachable --------------------------------------------------------------------


def test_store_unreachable_spools_records_is_unhealthy_and_flushes_later(config, tmp_path):
    clock = FixedClock(T0)
    store = FlakyStore(tmp_path / "state")
    saved = []

    def runner(ctx, job, slot):
        store.down = True  # the network drops mid-run
        from dr.clock import iso
        from dr.state.records import ResourceResult, RunRecord
        record = RunRecord(run_id="backup-20260302T130500Z-abcd", kind="backup", status="completed",
                           started_at=iso(ctx.clock.now()), finished_at=iso(ctx.clock.now()),
                           results=[ResourceResult("app-db", "rds-instance", "completed", iso(ctx.clock.now()))])
        ctx.runs.save(record)
        saved.append(record.run_id)
        return JobOutcome("completed", record.run_id)

    s = make(config, tmp_path, clock, store, runner=runner)
    s.load_state()
    s._tick_mono = clock.monotonic()
    settle(s)
    assert saved and store.down
    healthy, doc = s.health()
    assert not healthy and "state store unreachable" in doc["reasons"][0]
    assert doc["state_store"]["spooled"] >= 2  # the run record and the lock's final state
    s.flush(force=True)  # still down: nothing flushed, nothing lost
    assert len(s.store.pending()) == doc["state_store"]["spooled"]
    store.down = False
    assert store.get_json("runs/backup-20260302T130500Z-abcd.json") is None
    s.flush(force=True)
    assert store.get_json("runs/backup-20260302T130500Z-abcd.json")["status"] == "completed"
    assert store.get_json(J.lock_key("app-db", at(13)))["status"] == "completed"
    s.tick()
    healthy, doc = s.health()
    assert healthy and doc["state_store"]["spooled"] == 0


def test_claims_retry_with_backoff_then_run_with_a_local_lock(config, tmp_path):
    clock = FixedClock(T0)
    store = FlakyStore(tmp_path / "state")
    store.down = True
    runner = Runner()
    s = make(config, tmp_path, clock, store, runner=runner, degrade_after=timedelta(minutes=10))
    s.tick()
    assert runner.calls == [] and s.states["app-db"].retry_at == T0 + timedelta(seconds=5)
    clock.set(T0 + timedelta(seconds=6))
    s.tick()
    assert s.states["app-db"].retry_at == T0 + timedelta(seconds=16)  # backoff doubles
    clock.set(at(13, 11))
    settle(s)
    assert runner.calls == [("app-db", at(13))]
    store.down = False
    s.flush(force=True)
    doc = store.get_json(J.lock_key("app-db", at(13)))
    assert doc["status"] == "completed" and "claimed locally" in doc["degraded"]


# --- loop, stop, once -----------------------------------------------------------------------------


def test_run_forever_stops_cleanly_and_ran_each_slot_once(config, tmp_path):
    clock = ScaledClock(T0, speed=600)  # ten clock minutes per real second
    store, runner = LocalStore(tmp_path / "state"), Runner()
    jobs = [J.Job("app-db", "rds", parse_schedule("every 1m"), "rds-instance")]
    s = make(config, tmp_path, clock, store, jobs=jobs, runner=runner, max_sleep=5)
    thread = threading.Thread(target=s.run_forever)
    thread.start()
    time.sleep(1.0)
    s.stop()
    thread.join(10)
    assert not thread.is_alive()
    slots = [slot for _, slot in runner.calls]
    assert len(slots) >= 3 and len(slots) == len(set(slots))
    assert all(d["status"] == "completed" for d in locks(store).values())


def test_stop_interrupts_a_job_waiting_on_the_clock(config, tmp_path):
    stop = threading.Event()
    clock = StopAwareClock(ScaledClock(T0, 1.0), stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert clock.sleep(3600) is True
    assert time.monotonic() - started < 5


def test_run_once_runs_what_is_due_then_nothing(config, tmp_path):
    clock, store, runner = FixedClock(T0), LocalStore(tmp_path / "state"), Runner()
    jobs = [J.Job("app-db", "rds", parse_schedule("every 1h"), "rds-instance"),
            J.Job("assets", "s3", parse_schedule("every 15m"), "s3")]
    assert make(config, tmp_path, clock, store, jobs=jobs, runner=runner).run_once() == 0
    assert sorted(runner.calls) == [("app-db", at(13)), ("assets", at(13))]
    assert make(config, tmp_path, clock, store, jobs=jobs, runner=runner, name="b").run_once() == 0
    assert len(runner.calls) == 2


def test_metrics_text(config, tmp_path):
    clock, store, runner = FixedClock(T0), LocalStore(tmp_path / "state"), Runner()
    runner.fail_for.add("assets")
    jobs = [J.Job("app-db", "rds", parse_schedule("every 1h"), "rds-instance"),
            J.Job("assets", "s3", parse_schedule("every 15m"), "s3")]
    s = make(config, tmp_path, clock, store, jobs=jobs, runner=runner)
    settle(s)
    clock.set(T0 + timedelta(minutes=10))
    text = s.render_metrics()
    assert "# TYPE dr_job_last_success_timestamp_seconds gauge" in text
    assert f'dr_job_last_success_timestamp_seconds{{job="app-db"}} {T0.timestamp():.3f}' in text
    assert 'dr_job_runs_total{job="assets",status="failed"} 1' in text
    assert 'dr_job_failures_total{job="assets"} 1' in text
    assert 'dr_rpo_seconds{resource="app-db",kind="rds"} 600' in text
    assert 'dr_job_last_duration_seconds{job="app-db"} 0.000' in text
    assert "dr_rpo_objective_seconds 3600" in text and "dr_state_store_up 1" in text
    for line in text.splitlines():
        assert line.startswith("#") or line.count(" ") == 1, line


def test_a_long_state_store_outage_alerts_once_and_once_when_back(config, tmp_path):
    clock, store, pub = FixedClock(T0), FlakyStore(tmp_path / "state"), Publisher()
    s = make(config, tmp_path, clock, store, publisher=pub)
    settle(s)
    store.down = True
    s.store.probe()
    for minutes in (5, 11, 20, 30):
        clock.set(T0 + timedelta(minutes=minutes))
        s.flush(force=True)
    assert [p[0] for p in pub.sent] == ["[dr] state store unreachable"]
    store.down = False
    clock.set(T0 + timedelta(minutes=31))
    s.flush(force=True)
    s.flush(force=True)
    assert [p[0] for p in pub.sent] == ["[dr] state store unreachable", "[dr] state store reachable again"]


def test_once_does_not_wait_for_a_run_still_going_on_another_machine(config, tmp_path):
    clock, store, runner = FixedClock(T0), LocalStore(tmp_path / "state"), Runner()
    store.create_json(J.lock_key("app-db", at(12)), {"status": "running", "heartbeat": T0.isoformat()})
    s = make(config, tmp_path, clock, store, runner=runner)
    assert s.run_once() == 0
    assert runner.calls == [] and s.events[-1]["event"] == "busy"
