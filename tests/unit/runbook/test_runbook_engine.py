"""The engine: parallel DAG, journal before/after every step, failure, retries, timeouts, abort,
Ctrl-C, teardown, hooks, resume, the lock, RTO and the critical path."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from dr.clock import Clock
from dr.errors import EXIT_INTERRUPTED, UsageError
from dr.runbook import RunLocked, run_runbook
from dr.runbook.journal import RunJournal
from dr.state.status import IllegalTransition
from dr.runbook.lease import _boot_id, lease_key
from dr.state.records import RunStore
from tests.support.runbook_world import World, engine, runbook


def journal(ectx, run_id):
    return ectx.store.get_json(f"journals/{run_id}.json")


# -- the happy path and the journal ----------------------------------------------------------


def test_twenty_noops_complete_and_every_step_is_journaled_before_and_after(tmp_path):
    steps = "\n".join(f"  - {{id: s{i}, type: noop{', needs: [s' + str(i - 1) + ']' if i else ''}}}"
                      for i in range(20))
    rb = runbook(f"version: 1\nname: chain\nsteps:\n{steps}\n", tmp_path)
    events = []
    ectx = engine(tmp_path, on_event=events.append)
    result = run_runbook(rb, ectx)
    assert result.status == "completed" and result.exit_code == 0
    assert [s.status for s in result.steps.values()] == ["completed"] * 20
    step_events = [(e["step"], e["to"]) for e in events if e["step"]]
    assert step_events == [(f"s{i}", to) for i in range(20) for to in ("running", "completed")]
    doc = journal(ectx, result.run_id)
    assert doc["status"] == "completed" and doc["finished_at"]
    assert doc["finish_order"] == [f"s{i}" for i in range(20)]
    assert ectx.store.get_json(lease_key("chain"))["released_at"]  # released
    record = RunStore(ectx.store).load(result.run_id)
    assert record.status == "completed" and [r.name for r in record.results][:2] == ["s0", "s1"]


def test_parallel_branches_overlap(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: par
steps:
  - {id: root, type: noop}
  - {id: left, type: make, needs: [root], with: {name: l, seconds: 0.4}}
  - {id: right, type: make, needs: [root], with: {name: r, seconds: 0.4}}
  - {id: join, type: noop, needs: [left, right]}
""", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "completed"
    # structure, not tight timings: both started before either finished
    assert max(world.started["left"], world.started["right"]) < min(world.finished["left"], world.finished["right"])
    print(f"\ncritical path {result.critical_path_seconds:.3f}s ({' -> '.join(result.critical_path)}), "
          f"wall {result.wall_seconds:.3f}s, rto {result.rto_seconds:.3f}s")
    assert result.critical_path[0] == "root" and result.critical_path[-1] == "join"
    assert result.wall_seconds < 0.8 + 0.5  # far below the sum of the sleeps run one after the other


def test_max_parallel_one_serialises(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: ser
steps:
  - {id: a, type: make, with: {name: a, seconds: 0.1}}
  - {id: b, type: make, with: {name: b, seconds: 0.1}}
""", tmp_path, world)
    run_runbook(rb, engine(tmp_path, max_parallel=1))
    first, second = sorted(["a", "b"], key=world.started.get)
    assert world.finished[first] <= world.started[second]


# -- failure, retries, timeouts, abort -------------------------------------------------------

FAILING = """\
version: 1
name: failing
steps:
  - {id: base, type: make, with: {name: base}}
  - {id: other, type: make, needs: [base], with: {name: other}}
  - {id: broken, type: fail, needs: [base], with: {message: "disk on fire"}}
  - {id: after, type: make, needs: [broken], with: {name: after}}
  - {id: later, type: make, needs: [after, other], with: {name: later}}
"""


def test_a_failure_skips_its_dependents_and_fails_the_run(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    result = run_runbook(runbook(FAILING, tmp_path, world), ectx)
    assert result.status == "failed" and result.exit_code == 1
    status = {k: v.status for k, v in result.steps.items()}
    assert status == {"base": "completed", "other": "completed", "broken": "failed",
                      "after": "skipped", "later": "skipped"}
    assert result.steps["broken"].error == "RuntimeError: disk on fire"
    assert result.error == "step broken: RuntimeError: disk on fire"
    assert "needs broken" in result.steps["after"].error
    assert world.count("execute", "after") == 0 and world.count("execute", "later") == 0
    assert result.teardown == []  # not a drill
    assert journal(ectx, result.run_id)["status"] == "failed"


def test_drill_teardown_runs_after_a_failure_in_reverse_order_of_completion(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: drill
steps:
  - {id: first, type: make, with: {name: first}}
  - {id: second, type: make, needs: [first], with: {name: second}}
  - {id: third, type: make, needs: [second], with: {name: boom}}
  - {id: kept, type: make, needs: [first], with: {name: kept, seconds: 0.2}, teardown: false}
  - {id: broken, type: fail, needs: [third, kept]}
  - {id: never, type: make, needs: [broken], with: {name: never}}
""", tmp_path, world)
    ectx = engine(tmp_path, drill=True)
    result = run_runbook(rb, ectx)
    assert result.status == "failed"
    # 'boom' raises in teardown: recorded, and the others still run; 'kept' opted out
    assert world.order("teardown") == ["third", "second", "first"]
    assert [(t.step, t.status) for t in result.teardown] == [("third", "failed"), ("second", "completed"),
                                                             ("first", "completed")]
    assert "teardown exploded" in result.teardown[0].error
    assert result.teardown_failed == ["third"]
    names = set(world.resources)
    assert any(n.startswith("kept-drill-") for n in names) and any(n.startswith("boom-drill-") for n in names)
    assert not any(n.startswith(("first-", "second-")) for n in names)
    doc = journal(ectx, result.run_id)
    assert doc["steps"]["second"]["teardown"]["status"] == "completed"
    assert doc["steps"]["third"]["teardown"]["status"] == "failed"


def test_drill_keep_skips_teardown(tmp_path):
    world = World()
    rb = runbook("version: 1\nname: d\nsteps:\n  - {id: a, type: make, with: {name: a}}\n", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path, drill=True, keep=True))
    assert result.status == "completed" and result.teardown == [] and len(world.resources) == 1


def test_retries_with_backoff_until_success(tmp_path):
    rb = runbook("""\
version: 1
name: retry
steps:
  - {id: flaky, type: fail, with: {times: 2}, retries: 2, retry_delay: 0.05}
""", tmp_path)
    ectx = engine(tmp_path)
    t0 = ectx.clock.monotonic()
    result = run_runbook(rb, ectx)
    assert result.status == "completed"
    assert result.steps["flaky"].attempts == 3 and result.steps["flaky"].outputs == {"attempt": 3}
    assert ectx.clock.monotonic() - t0 >= 0.05 + 0.1  # backoff doubles: 0.05, then 0.1
    notes = [e["note"] for e in journal(ectx, result.run_id)["events"] if e["step"] == "flaky"]
    assert sum(n.startswith("retry after") for n in notes) == 2


def test_retries_exhausted_fails_with_the_last_error(tmp_path):
    rb = runbook("version: 1\nname: r\nsteps:\n  - {id: f, type: fail, with: {times: 5}, retries: 1, "
                 "retry_delay: 0.01}\n", tmp_path)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "failed" and result.steps["f"].attempts == 2


def test_a_timeout_fails_the_step_and_skips_dependents(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: slow
steps:
  - {id: slow, type: sleep, with: {seconds: 30}, timeout: 0.2}
  - {id: after, type: make, needs: [slow], with: {name: x}}
""", tmp_path, world)
    t0 = time.monotonic()
    result = run_runbook(rb, engine(tmp_path))
    assert time.monotonic() - t0 < 5
    assert result.status == "failed"
    assert result.steps["slow"].error == "timed out after 0.2s"
    assert result.steps["after"].status == "skipped"


def test_a_timed_out_attempt_is_retried(tmp_path):
    rb = runbook("version: 1\nname: t\nsteps:\n  - {id: s, type: sleep, with: {seconds: 30}, timeout: 0.1, "
                 "retries: 1, retry_delay: 0.01}\n", tmp_path)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "failed" and result.steps["s"].attempts == 2


def test_a_step_that_ignores_its_timeout_is_abandoned_after_the_grace(tmp_path):
    world = World()
    rb = runbook("version: 1\nname: h\nsteps:\n  - {id: stuck, type: hang, with: {seconds: 3}, timeout: 0.1}\n",
                 tmp_path, world)
    t0 = time.monotonic()
    result = run_runbook(rb, engine(tmp_path, stop_grace=0.3))
    assert time.monotonic() - t0 < 2
    assert result.status == "failed"
    assert "did not stop within 0.3s" in result.steps["stuck"].error


def test_abort_stops_new_steps_and_ends_aborted(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: gate
steps:
  - {id: gate, type: gate}
  - {id: side, type: make, with: {name: side, seconds: 0.2}}
  - {id: after, type: make, needs: [side], with: {name: after}}
""", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "aborted" and result.exit_code == 1
    assert result.steps["gate"].error.startswith("aborted: the newest copy is older")
    assert result.steps["side"].status == "completed"  # already running: allowed to finish
    assert result.steps["after"].status == "skipped"
    assert "aborted by step gate" in result.steps["after"].error


def test_outputs_that_cannot_be_journaled_fail_the_step(tmp_path):
    rb = runbook("version: 1\nname: o\nsteps:\n  - {id: e, type: echo, with: {wait: 5s}}\n", tmp_path,
                 World())
    result = run_runbook(rb, engine(tmp_path))
    # a timedelta output is journaled as seconds; a set would not be
    assert result.status == "completed" and result.steps["e"].outputs["wait"] == 5.0


# -- references at run time ------------------------------------------------------------------


def test_references_resolve_before_the_step_runs_and_keep_their_type(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: refs
params: {size: 3}
steps:
  - {id: db, type: make, with: {name: db, size: "${params.size}"}}
  - id: use
    type: echo
    with:
      number: ${steps.db.size}
      text: "db=${steps.db.resource} in ${config.regions.dr} run ${run.id} drill=${run.drill}"
      mapping: {region: "${run.region}", whole: "${steps.db}"}
      items: ["${config.objectives.rpo}", "${steps.db.size}"]
      wait: ${config.health.timeout}
      ratio: ${steps.db.size}
""", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path, params={"size": 7}))
    out = result.steps["use"].outputs
    assert out["number"] == 7 and out["types"]["number"] == "int"
    assert out["text"] == f"db=db in us-west-2 run {result.run_id} drill=false"
    assert out["mapping"] == {"region": "us-west-2", "whole": {"resource": "db", "size": 7}}
    assert out["items"] == [3600.0, 7]  # a timedelta in the list is journaled as seconds
    assert out["types"]["wait"] == "timedelta" and out["wait"] == 600.0
    assert out["types"]["ratio"] == "float"
    assert result.steps["use"].via == "execute"


def test_a_reference_of_the_wrong_type_fails_the_step_before_execute(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: wrong
steps:
  - {id: a, type: noop, with: {values: {n: "not a number"}}}
  - {id: b, type: echo, with: {number: "${steps.a.n}"}}
""", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "failed"
    assert result.steps["b"].error == "step b: number: expected a whole number, got 'not a number'"
    assert world.count("execute", "b") == 0


def test_unknown_param_override_is_a_usage_error(tmp_path):
    rb = runbook("version: 1\nname: p\nparams: {a: 1}\nsteps:\n  - {id: n, type: noop}\n", tmp_path)
    with pytest.raises(UsageError, match="has no param 'b'"):
        run_runbook(rb, engine(tmp_path, params={"b": 2}))


def test_dry_run_writes_and_runs_nothing(tmp_path):
    world = World()
    rb = runbook("version: 1\nname: dry\nsteps:\n  - {id: a, type: make, with: {name: a}}\n", tmp_path, world)
    ectx = engine(tmp_path)
    result = run_runbook(rb, ectx, dry_run=True)
    assert result.dry_run and result.steps["a"].status == "pending"
    assert world.calls == [] and ectx.store.list_keys("") == []


# -- hooks and RTO ---------------------------------------------------------------------------


def test_hooks_run_at_start_end_and_on_failure(tmp_path):
    rb = runbook("""\
version: 1
name: hooks
steps:
  - {id: hello, type: notify, with: {at: start, message: "starting ${run.name}"}}
  - {id: bye, type: notify, with: {at: end, message: "ended ${run.status}"}}
  - {id: alarm, type: notify, with: {at: failure, message: "FAILED ${run.status}"}}
  - {id: work, type: fail}
""", tmp_path)
    ectx = engine(tmp_path)
    result = run_runbook(rb, ectx)
    assert result.status == "failed"
    assert [(h.id, h.status) for h in result.hooks] == [("hello", "completed"), ("alarm", "completed"),
                                                         ("bye", "completed")]
    said = [m for m in ectx.messages if "notify:" in m]
    assert said == ["[hello] notify: starting hooks", "[alarm] notify: FAILED failed", "[bye] notify: ended failed"]
    assert list(result.steps) == ["work"]  # hooks are not DAG steps


def test_the_failure_hook_does_not_run_when_the_run_completes(tmp_path):
    rb = runbook("version: 1\nname: h\nsteps:\n  - {id: alarm, type: notify, with: {at: failure, message: x}}\n"
                 "  - {id: w, type: noop}\n", tmp_path)
    result = run_runbook(rb, engine(tmp_path))
    assert result.status == "completed" and result.hooks == []


def test_rto_ends_at_the_marked_step(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: rto
steps:
  - {id: up, type: make, with: {name: up, seconds: 0.2}, rto_end: true}
  - {id: cleanup, type: sleep, needs: [up], with: {seconds: 0.3}}
""", tmp_path, world)
    result = run_runbook(rb, engine(tmp_path))
    assert 0.2 <= result.rto_seconds < 0.45
    assert result.critical_path == ["up", "cleanup"] and result.critical_path_seconds >= 0.5


def test_rto_defaults_to_the_health_checks(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: rto
steps:
  - {id: health, type: http.wait_healthy, with: {seconds: 0.1}}
  - {id: after, type: sleep, needs: [health], with: {seconds: 0.3}}
""", tmp_path, world)
    assert rb.rto_gates() == ("health",)
    result = run_runbook(rb, engine(tmp_path))
    assert result.rto_seconds < 0.35 < result.wall_seconds


def test_no_rto_when_the_gate_did_not_pass(tmp_path):
    rb = runbook("version: 1\nname: r\nsteps:\n  - {id: f, type: fail, rto_end: true}\n", tmp_path)
    assert run_runbook(rb, engine(tmp_path)).rto_seconds is None


# -- Ctrl-C ----------------------------------------------------------------------------------

INTERRUPTIBLE = """\
version: 1
name: ctrlc
steps:
  - {id: first, type: make, with: {name: first}}
  - {id: slow, type: make, needs: [first], with: {name: slow, seconds: 20}}
  - {id: last, type: make, needs: [slow], with: {name: last}}
"""


def _sigint_after(ectx, seconds: float) -> None:
    """Ctrl-C when the run's (simulated) clock reaches `seconds`."""
    ectx.clock.at(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))


def test_ctrl_c_interrupts_the_run_and_the_journal_says_where(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    t0 = time.monotonic()
    result = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    assert time.monotonic() - t0 < 5
    assert result.status == "interrupted" and result.exit_code == EXIT_INTERRUPTED
    doc = journal(ectx, result.run_id)
    assert doc["status"] == "interrupted"
    assert {k: v["status"] for k, v in doc["steps"].items()} == {"first": "completed", "slow": "interrupted",
                                                                 "last": "pending"}
    assert doc["steps"]["slow"]["error"].startswith("interrupted")
    assert ectx.store.get_json(lease_key("ctrlc"))["released_at"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_during_a_drill_still_tears_down(tmp_path):
    world = World()
    ectx = engine(tmp_path, drill=True)
    _sigint_after(ectx, 0.3)
    result = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    assert result.status == "interrupted"
    assert world.order("teardown") == ["slow", "first"]  # the interrupted one too, newest first
    assert world.resources == {}


def test_a_second_ctrl_c_during_teardown_stops_it(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: td
steps:
  - {id: a, type: make, with: {name: a}}
  - {id: b, type: make, needs: [a], with: {name: b, teardown_seconds: 10}}
""", tmp_path, world)
    ectx = engine(tmp_path, drill=True)
    _sigint_after(ectx, 0.4), _sigint_after(ectx, 0.6)
    t0 = time.monotonic()
    result = run_runbook(rb, ectx)
    assert time.monotonic() - t0 < 5
    assert result.status == "completed" and result.exit_code == 1  # the drill left resources behind
    assert [(t.step, t.status) for t in result.teardown] == [("b", "failed"), ("a", "skipped")]
    assert result.teardown[1].error == "teardown stopped by Ctrl-C"
    assert any("press Ctrl-C again" in m for m in ectx.messages)
    assert len(world.resources) == 2


def test_resume_after_ctrl_c_skips_completed_steps_and_checks_the_one_in_flight(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    assert first.status == "interrupted"
    world.resources["slow"] = {"size": 1}  # the interrupted step's effect exists after all
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    second = run_runbook(rb, engine(tmp_path), resume=first.run_id)
    assert second.status == "completed" and second.run_id == first.run_id and second.sessions == 2
    assert world.count("execute", "first") == 1  # not re-run
    assert world.count("check", "first") == 0
    assert world.count("check", "slow") == 1 and world.count("execute", "slow") == 1  # the first session's
    assert second.steps["slow"].via == "check"
    assert second.steps["last"].via == "execute"
    assert second.steps["first"].outputs == {"resource": "first", "size": 1}  # from the journal


def test_resume_redoes_an_in_flight_step_whose_check_finds_nothing(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    second = run_runbook(rb, engine(tmp_path), resume=first.run_id)
    assert second.status == "completed"
    assert world.count("check", "slow") == 1 and world.count("execute", "slow") == 2
    assert second.steps["slow"].via == "execute"
    assert sorted(world.resources) == ["first", "last", "slow"]


def test_resume_of_a_torn_down_drill_rebuilds_with_the_same_names(tmp_path):
    world = World()
    ectx = engine(tmp_path, drill=True, keep=False)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    assert world.resources == {}
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    second = run_runbook(rb, engine(tmp_path, drill=True, keep=True), resume=first.run_id)
    assert second.status == "completed"
    suffix = first.run_id.rsplit("-", 1)[-1]
    assert sorted(world.resources) == [f"{n}-drill-{suffix}" for n in ("first", "last", "slow")]
    assert world.count("check", "first") == 1  # torn down: its effect was in doubt


def test_resume_after_a_failure_checks_the_failed_step_and_runs_its_dependents(tmp_path):
    world = World()
    text = """\
version: 1
name: flaky
steps:
  - {id: base, type: make, with: {name: base}}
  - {id: shaky, type: make, needs: [base], with: {name: shaky}}
  - {id: after, type: make, needs: [shaky], with: {name: after}}
"""
    world.fail_next.add("shaky")
    first = run_runbook(runbook(text, tmp_path, world), engine(tmp_path))
    assert first.status == "failed" and first.steps["after"].status == "skipped"
    second = run_runbook(runbook(text, tmp_path, world), engine(tmp_path), resume=first.run_id)
    assert second.status == "completed"
    assert world.count("execute", "base") == 1
    assert world.count("check", "shaky") == 1 and world.count("execute", "shaky") == 2
    assert world.count("execute", "after") == 1


@pytest.mark.parametrize("change, message", [
    ("name: other", "ran runbook 'failing', not 'other'"),
    ("drill", "was not a drill"),
    ("params", "a resumed run keeps its params"),
    ("completed", "already completed"),
    ("unknown", "no journal for run"),
])
def test_resume_refuses_what_cannot_be_faithful(tmp_path, change, message):
    world = World()
    text = FAILING.replace("name: failing", "name: failing\nparams: {p: 1}")
    first = run_runbook(runbook(text, tmp_path, world), engine(tmp_path))
    run_id, ectx, rb = first.run_id, engine(tmp_path), runbook(text, tmp_path, world)
    if change == "name: other":
        rb = runbook(text.replace("name: failing", "name: other"), tmp_path, world)
        ectx.lock_name = "failing"
    elif change == "drill":
        ectx.drill = True
    elif change == "params":
        ectx.params = {"p": 2}
    elif change == "completed":
        done = run_runbook(runbook("version: 1\nname: failing\nparams: {p: 1}\nsteps:\n  - {id: n, type: noop}\n",
                                   tmp_path), engine(tmp_path))
        run_id = done.run_id
    else:
        run_id = "failing-20990101T000000Z-0000"
    with pytest.raises(UsageError, match=message):
        run_runbook(rb, ectx, resume=run_id)
    assert ectx.store.get_json(lease_key("failing"))["released_at"]  # a refused resume leaves no lease


# -- the lock --------------------------------------------------------------------------------


def test_a_second_run_is_refused_naming_the_first(tmp_path):
    world = World()
    rb = runbook("version: 1\nname: one\nsteps:\n  - {id: s, type: make, with: {name: s, seconds: 0.5}}\n",
                 tmp_path, world)
    results = {}
    events = []
    started = threading.Event()

    def on_event(e):
        events.append(e)
        if e.get("to") == "running" and e.get("step") == "s":
            started.set()

    first = threading.Thread(target=lambda: results.setdefault("first", run_runbook(  # real time: it runs
        rb, engine(tmp_path, on_event=on_event, clock=Clock()))))                      # off the main thread
    first.start()
    assert started.wait(5)
    with pytest.raises(RunLocked) as info:
        run_runbook(rb, engine(tmp_path))
    first.join()
    running_id = results["first"].run_id
    assert f"another run is in progress: run {running_id}" in str(info.value)
    assert "its journal says running" in str(info.value)
    assert info.value.holder["run_id"] == running_id
    assert run_runbook(rb, engine(tmp_path)).status == "failed"  # free again (s already exists)


def test_the_lock_is_per_stack(tmp_path):
    from tests.support.runbook_world import CONFIG, make_config

    template = tmp_path / "t.yaml"
    template.write_text("Resources: {}\n")
    config = make_config(tmp_path, CONFIG + f"stack: {{name: acme-web, template: {template}}}\n")
    ectx = engine(tmp_path, config=config)
    assert ectx.resolved_lock(runbook("version: 1\nname: x\nsteps:\n  - {id: n, type: noop}\n", tmp_path)) \
        == "acme-web"


def _leave_stale_lease(ectx, run_id, *, pid=None, status=None, expires="2099-01-01T00:00:00+00:00",
                       host=None):
    """A lease as a run leaves it when its process dies: not released, naming the holder."""
    doc = {"format": 1, "lock": "ctrlc", "run_id": run_id, "runbook": "ctrlc", "kind": "ctrlc", "drill": False,
           "owner": {"pid": pid or 999999999, "host": host or os.uname().nodename, "session": "t",
                     "boot": _boot_id()},
           "acquired_at": "2024-01-01T00:00:00+00:00", "renewed_at": "2024-01-01T00:00:00+00:00",
           "expires_at": expires, "released_at": None, "history": []}
    ectx.store.put_json(lease_key("ctrlc"), doc)
    if status:
        j = ectx.store.get_json(f"journals/{run_id}.json")
        j["status"] = status
        ectx.store.put_json(f"journals/{run_id}.json", j)


def test_a_stale_lease_is_taken_over_by_resume_of_that_run_only(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    # pretend the process died without releasing: the lease stays, the journal says running
    _leave_stale_lease(ectx, first.run_id, status="running")
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    with pytest.raises(RunLocked) as info:
        run_runbook(rb, engine(tmp_path))
    assert f"resume it with --resume {first.run_id}" in info.value.hint
    resumed = engine(tmp_path)
    assert run_runbook(rb, resumed, resume=first.run_id).status == "completed"
    assert any("LEASE: taking over run" in m and "process on this host is gone" in m for m in resumed.messages)


def test_a_live_holder_on_another_host_is_taken_over_only_once_expired_or_with_take_over(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    _leave_stale_lease(ectx, first.run_id, status="running", host="machine-that-died")
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    with pytest.raises(RunLocked, match="is still going on") as info:
        run_runbook(rb, engine(tmp_path), resume=first.run_id)
    assert "--take-over" in info.value.hint and "machine-that-died" in str(info.value)
    _leave_stale_lease(ectx, first.run_id, host="machine-that-died", expires="2020-01-01T00:00:00+00:00")
    resumed = engine(tmp_path)
    assert run_runbook(rb, resumed, resume=first.run_id).status == "completed"
    assert any("its lease expired at 2020-01-01" in m for m in resumed.messages)


def test_take_over_takes_a_lease_that_has_not_expired(tmp_path):
    world = World()
    ectx = engine(tmp_path)
    _sigint_after(ectx, 0.3)
    first = run_runbook(runbook(INTERRUPTIBLE, tmp_path, world), ectx)
    _leave_stale_lease(ectx, first.run_id, pid=os.getpid(), status="running")  # alive: this process
    rb = runbook(INTERRUPTIBLE.replace("seconds: 20", "seconds: 0"), tmp_path, world)
    with pytest.raises(RunLocked, match="is still going on"):
        run_runbook(rb, engine(tmp_path), resume=first.run_id)
    assert run_runbook(rb, engine(tmp_path, take_over=True), resume=first.run_id).status == "completed"
    history = ectx.store.get_json(lease_key("ctrlc"))["history"]
    assert history[-1]["run_id"] == first.run_id and "--take-over" in history[-1]["why"]


def test_a_lease_of_a_completed_run_is_taken_by_anyone(tmp_path):
    rb = runbook("version: 1\nname: ctrlc\nsteps:\n  - {id: n, type: noop}\n", tmp_path)
    ectx = engine(tmp_path)
    done = run_runbook(rb, ectx)
    _leave_stale_lease(ectx, done.run_id, pid=os.getpid())
    assert run_runbook(rb, engine(tmp_path)).status == "completed"


# -- the journal's rules ---------------------------------------------------------------------


def test_the_journal_refuses_an_impossible_transition_and_ignores_writes_once_closed(tmp_path):
    rb = runbook("version: 1\nname: j\nsteps:\n  - {id: n, type: noop}\n", tmp_path)
    ectx = engine(tmp_path)
    j = RunJournal.create(ectx.store, rb, "j-20240101T000000Z-abcd", kind="j", drill=False, region="r",
                          params={}, clock=ectx.clock)
    with pytest.raises(IllegalTransition, match="pending -> completed"):
        j.transition("n", "completed")
    j.transition("n", "running")
    j.transition("n", "completed")
    j.finish("completed")
    assert j.transition("n", "pending") is False
    with pytest.raises(IllegalTransition):
        j.resume()  # a completed run cannot go back to running


# -- the state store fails -------------------------------------------------------------------


class FailingStore:
    """A LocalStore whose journal writes start failing after `ok` of them."""

    def __init__(self, inner, ok: int):
        self.inner, self.ok = inner, ok
        self.description = "failing store"

    def _count(self, key):
        if key.startswith("journals/"):
            if self.ok <= 0:
                from dr.errors import OperationFailed
                raise OperationFailed("the state bucket is unreachable")
            self.ok -= 1

    def put_json(self, key, document):
        self._count(key)
        self.inner.put_json(key, document)

    def put_json_if(self, key, document, version):
        self._count(key)
        return self.inner.put_json_if(key, document, version)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_when_the_journal_cannot_be_written_the_run_stops_and_a_drill_still_tears_down(tmp_path):
    world = World()
    rb = runbook("""\
version: 1
name: broken
steps:
  - {id: a, type: make, with: {name: a}}
  - {id: b, type: make, needs: [a], with: {name: b}}
  - {id: c, type: make, needs: [b], with: {name: c}}
""", tmp_path, world)
    from dr.state.local import LocalStore

    store = FailingStore(LocalStore(tmp_path / "state"), ok=3)  # create, a running, a completed
    result = run_runbook(rb, engine(tmp_path, store=store, drill=True))
    assert result.status == "failed"
    assert "the journal could not be written: the state bucket is unreachable" in result.error
    assert world.count("execute", "b") == 0  # never started without its "running" record
    assert world.order("teardown") == ["a"] and world.resources == {}
    assert result.steps["b"].status == "pending"  # its "running" record never reached the store
