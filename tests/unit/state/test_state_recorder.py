"""The run recorder: checked transitions, a save after each, Ctrl-C and errors in one place."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

import dr
from dr.clock import FixedClock, iso
from dr.errors import Interrupted, OperationFailed
from dr.state import LocalStore, Recorder, RunStore
from dr.state.status import (
    RUN_TRANSITIONS,
    STEP_TRANSITIONS,
    IllegalTransition,
    check_transition,
    run_outcome,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


class CountingStore(LocalStore):
    """A LocalStore that remembers every status it was asked to write."""

    def __init__(self, root):
        super().__init__(root)
        self.writes: list[dict] = []

    def put_json(self, key, value):
        super().put_json(key, value)
        if key.startswith("runs/"):
            self.writes.append(value)


@pytest.fixture
def store(tmp_path):
    return CountingStore(tmp_path / "state")


@pytest.fixture
def clock():
    return FixedClock(T0)


def saved(store, rec):
    return RunStore(store).load(rec.run_id)


def test_a_run_with_one_resource_and_steps(store, clock):
    with Recorder(store, clock, "backup", "dr backup run", plan=[{"name": "app-db"}]) as rec:
        with rec.resource("app-db", "rds-instance") as r:
            with r.step("snapshot", "snap-1 in us-east-1"):
                clock.advance(30)
            with r.step("copy", "snap-1 to us-west-2") as s:
                clock.advance(90)
                assert s.seconds() == 90
            r.note(copied=1)
            r.add_point({"id": "snap-1", "region": "us-west-2", "role": "copy"})
    record = saved(store, rec)
    assert record.status == "completed" and record.error is None
    assert record.kind == "backup" and record.command == "dr backup run"
    assert record.dr_version == dr.__version__ and record.plan == [{"name": "app-db"}]
    assert record.started_at == iso(T0) and record.finished_at == iso(clock.now())
    result = record.results[0]
    assert (result.name, result.kind, result.status) == ("app-db", "rds-instance", "completed")
    assert [(s.name, s.status) for s in result.steps] == [("snapshot", "completed"), ("copy", "completed")]
    assert result.steps[1].started_at == iso(T0.replace(second=30))
    assert result.summary == {"copied": 1} and result.recovery_points[0]["id"] == "snap-1"
    assert rec.seconds() == 120 and rec.resources[0].seconds() == 120


def test_every_transition_is_saved_at_once(store, clock):
    """start, resource running, step running, step completed, resource completed, run completed."""
    with Recorder(store, clock, "backup") as rec:
        assert [w["status"] for w in store.writes] == ["running"]
        with rec.resource("assets", "s3") as r:
            assert store.writes[-1]["results"][0]["status"] == "running"
            with r.step("copy"):
                assert store.writes[-1]["results"][0]["steps"][0]["status"] == "running"
            assert store.writes[-1]["results"][0]["steps"][0]["status"] == "completed"
        assert store.writes[-1]["results"][0]["status"] == "completed"
        assert store.writes[-1]["status"] == "running"
    assert len(store.writes) == 6
    assert store.writes[-1]["status"] == "completed"


def test_ctrl_c_marks_what_runs_interrupted_saves_and_goes_on(store, clock):
    with pytest.raises(KeyboardInterrupt):
        with Recorder(store, clock, "backup") as rec:
            with rec.resource("done", "s3"):
                pass
            with rec.resource("app-db", "rds-instance") as r:
                with r.step("wait-copy"):
                    raise KeyboardInterrupt
    record = saved(store, rec)
    assert record.status == "interrupted" and record.error == "interrupted by the user (Ctrl-C)"
    assert [r.status for r in record.results] == ["completed", "interrupted"]
    assert record.results[1].steps[0].status == "interrupted" and record.results[1].finished_at
    assert store.writes[-1]["status"] == "interrupted"


def test_ctrl_c_with_a_hint_becomes_interrupted_naming_the_run(store, clock):
    with pytest.raises(Interrupted) as caught:
        with Recorder(store, clock, "backup", interrupt_hint="run it again") as rec:
            raise KeyboardInterrupt
    assert rec.run_id in str(caught.value) and caught.value.hint == "run it again"
    assert saved(store, rec).status == "interrupted"


def test_interrupted_from_a_wait_keeps_its_message(store, clock):
    with pytest.raises(Interrupted):
        with Recorder(store, clock, "verify") as rec:
            with rec.resource("app", "mysql") as r:
                with r.step("restore"):
                    raise Interrupted("interrupted while waiting for snap-1")
    record = saved(store, rec)
    assert record.status == "interrupted" and record.error == "interrupted while waiting for snap-1"
    assert record.results[0].error == "interrupted while waiting for snap-1"
    assert record.results[0].steps[0].error == "interrupted while waiting for snap-1"


def test_an_error_fails_step_resource_and_run_with_its_message(store, clock):
    with pytest.raises(OperationFailed):
        with Recorder(store, clock, "backup") as rec:
            with rec.resource("app-db", "rds-instance") as r:
                with r.step("copy"):
                    raise OperationFailed("snapshot snap-1 in us-west-2 is failed")
    record = saved(store, rec)
    assert record.status == "failed" and record.error == "snapshot snap-1 in us-west-2 is failed"
    assert record.results[0].status == "failed" and record.results[0].steps[0].status == "failed"


def test_keep_going_records_the_failure_and_runs_the_next_resource(store, clock):
    with Recorder(store, clock, "backup") as rec:
        with rec.resource("broken", "s3", keep_going=True):
            raise ValueError("boom")
        with rec.resource("fine", "s3"):
            pass
    record = saved(store, rec)
    assert record.status == "failed" and record.error is None
    assert [(r.name, r.status) for r in record.results] == [("broken", "failed"), ("fine", "completed")]
    assert record.results[0].error == "unexpected error: ValueError('boom')"


def test_final_status_rules(store, clock):
    assert run_outcome([]) == "completed"
    assert run_outcome(["completed", "skipped"]) == "completed"
    assert run_outcome(["completed", "failed"]) == "failed"
    assert run_outcome(["completed"], error="no DR key") == "failed"
    assert run_outcome(["failed", "interrupted"]) == "interrupted"
    with Recorder(store, clock, "backup", error="key alias/dr not found") as rec:
        r = rec.add("app-db", "rds-instance")
        r.fail("key alias/dr not found")  # blocked: recorded, never run
        rec.skip("other", "s3", "not selected")
    record = saved(store, rec)
    assert record.status == "failed"
    assert [(r.status, r.error) for r in record.results] == [("failed", "key alias/dr not found"),
                                                              ("skipped", "not selected")]


def test_an_explicit_finish_is_kept(store, clock):
    with Recorder(store, clock, "drill") as rec:
        rec.finish("aborted", "the safety gate refused")
    record = saved(store, rec)
    assert (record.status, record.error) == ("aborted", "the safety gate refused")


def test_illegal_transitions_are_refused_and_nothing_is_written(store, clock):
    with Recorder(store, clock, "backup") as rec:
        r = rec.add("app-db", "rds-instance")
        r.complete()
        writes = len(store.writes)
        with pytest.raises(IllegalTransition, match="resource app-db: completed -> failed"):
            r.fail("too late")
        assert len(store.writes) == writes and r.status == "completed"
        assert r.result.error is None  # a refused transition changes nothing, not even the error
        s = r.start_step("copy")
        s.complete()
        with pytest.raises(IllegalTransition, match="step copy: completed -> failed"):
            s.fail("too late")
        assert s.step.error is None
    with pytest.raises(IllegalTransition, match="completed -> failed"):
        rec.finish("failed")
    assert saved(store, rec).status == "completed"


def test_the_tables_are_the_runbook_journals():
    from dr.runbook import journal

    assert journal.RUN_TRANSITIONS is RUN_TRANSITIONS and journal.STEP_TRANSITIONS is STEP_TRANSITIONS
    check_transition(STEP_TRANSITIONS, "x", "pending", "running")
    with pytest.raises(IllegalTransition):
        check_transition(STEP_TRANSITIONS, "x", "pending", "completed")
    with pytest.raises(IllegalTransition):
        check_transition(RUN_TRANSITIONS, "run", "completed", "running")


def test_given_start_time_and_run_id(store, clock):
    earlier = T0.replace(hour=11)
    with Recorder(store, clock, "backup", run_id="backup-20240501T110000Z-abcd", started=earlier) as rec:
        with rec.resource("app-db", "rds-instance", started=earlier) as r:
            r.fail("the job raised")
    record = saved(store, rec)
    assert record.run_id == "backup-20240501T110000Z-abcd"
    assert record.started_at == record.results[0].started_at == iso(earlier)
    assert record.status == "failed"


def test_resources_from_several_threads(store, clock):
    with Recorder(store, clock, "backup") as rec:
        def one(i):
            with rec.resource(f"db{i}", "rds-instance") as r:
                for n in range(5):
                    with r.step(f"s{n}"):
                        r.note(n=n)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    record = saved(store, rec)
    assert record.status == "completed" and len(record.results) == 4
    assert all(len(r.steps) == 5 and r.status == "completed" for r in record.results)
