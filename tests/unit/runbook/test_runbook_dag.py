"""Pure graph functions: batches, cycles, dependents, the critical path."""

from __future__ import annotations

from dr.runbook.dag import batches, critical_path, dependents, find_cycles, plan_batches
from tests.support.runbook_world import World, runbook

GRAPH = {"ready": (), "db": ("ready",), "files": ("ready",), "stack": ("db", "files"),
         "health": ("stack",), "dns": ("health",), "report": ("db",)}


def test_batches_are_topological_layers_in_file_order():
    assert batches(GRAPH) == [["ready"], ["db", "files"], ["stack", "report"], ["health"], ["dns"]]


def test_plan_batches_of_a_runbook(tmp_path):
    rb = runbook("""\
version: 1
name: p
steps:
  - {id: b, type: noop, needs: [a]}
  - {id: a, type: noop}
  - {id: c, type: noop, with: {values: {x: "${steps.a.y}"}}}
  - {id: hook, type: notify, with: {at: start, message: hi}}
""", tmp_path, World())
    assert [[s.id for s in batch] for batch in plan_batches(rb)] == [["a"], ["b", "c"]]


def test_find_cycles_reports_each_once():
    graph = {"a": ("b",), "b": ("c",), "c": ("a",), "d": ("d",), "e": ("a",)}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["d", "d"]]
    assert find_cycles(GRAPH) == []


def test_dependents_are_transitive():
    assert dependents(GRAPH, "db") == ["stack", "health", "dns", "report"]
    assert dependents(GRAPH, "dns") == []


def test_critical_path_is_the_longest_weighted_chain():
    seconds = {"ready": 1, "db": 10, "files": 20, "stack": 5, "health": 2, "dns": 1, "report": 100}
    assert critical_path(GRAPH, seconds) == (111.0, ["ready", "db", "report"])
    seconds["report"] = 1
    assert critical_path(GRAPH, seconds) == (29.0, ["ready", "files", "stack", "health", "dns"])
    assert critical_path({}, {}) == (0.0, [])
