"""dr/yamlnodes.py: the one YAML-with-line-numbers loader and problem collector (dr.yaml and runbooks)."""

from __future__ import annotations

import re

import pytest

from dr.config import parse_config
from dr.errors import EXIT_USAGE, ConfigError
from dr.runbook.loader import parse_runbook
from dr.yamlnodes import Node, Problems, did_you_mean, join, show

ONE_FORMAT = re.compile(r"[^\s:]+:\d+: \S")  # <file>:<line>: <key path>: <what>


def test_every_value_knows_its_line():
    root = Problems("f.yaml").load("a: 1\nb:\n  - x\n  - {c: true}\n")
    assert root.line == 1 and root.key_lines == {"a": 1, "b": 2}
    assert root.value["b"].value[1].line == 4 and root.value["b"].value[1].value["c"].line == 4
    assert root.plain() == {"a": 1, "b": ["x", {"c": True}]}


def test_an_empty_document_is_none():
    assert Problems("f.yaml").load("# nothing\n") is None


def test_problems_are_raised_all_at_once_in_file_order_with_exit_2():
    ck = Problems("f.yaml")
    ck.add("b.c", 7, "second")
    ck.add("", 2, "first, with no key path")
    ck.bad("a", Node([1], 5), "expected a mapping")
    with pytest.raises(ConfigError) as info:
        ck.raise_if_any(hint="read the docs")
    assert info.value.problems == ["f.yaml:2: first, with no key path", "f.yaml:5: a: expected a mapping, got a list",
                                   "f.yaml:7: b.c: second"]
    assert info.value.exit_code == EXIT_USAGE and info.value.hint == "read the docs"
    Problems("f.yaml").raise_if_any()  # nothing found: nothing raised


def test_structural_problems_are_collected_with_their_key_path():
    ck = Problems("f.yaml")
    root = ck.load("a:\n  b: 1\n  b: 2\n? [x]\n: 3\n")
    assert root.value["a"].plain() == {"b": 1}
    assert ck.messages() == ["f.yaml:3: a.b: duplicate key (already set on line 2)",
                             "f.yaml:4: (top level): expected a plain key name, got a mapping or list as key"]


def test_a_syntax_error_names_line_and_column_and_stops():
    with pytest.raises(ConfigError) as info:
        Problems("f.yaml").load("a: 1\nb: x: y\n")
    assert str(info.value) == "f.yaml:2: YAML syntax error: mapping values are not allowed here (column 5)"


def test_unknown_keys_get_a_did_you_mean_or_the_list_or_a_hint():
    ck = Problems("f.yaml")
    node = ck.load("retension: 1\nzzz: 2\nparams: 3\n")
    ck.unknown_keys("rds[0]", node, ("retention", "with"), hints={"params": "parameters go under 'with'"})
    ck.unknown_keys("", node, ("retention",), where="step 'a': ")
    assert ck.messages() == [
        "f.yaml:1: rds[0].retension: unknown key; did you mean 'retention'?",
        "f.yaml:1: step 'a': retension: unknown key; did you mean 'retention'?",
        "f.yaml:2: rds[0].zzz: unknown key; expected one of: retention, with",
        "f.yaml:2: step 'a': zzz: unknown key; expected one of: retention",
        "f.yaml:3: rds[0].params: unknown key; parameters go under 'with'",
        "f.yaml:3: step 'a': params: unknown key; expected one of: retention",
    ]


def test_shapes_required_and_section():
    ck = Problems("f.yaml")
    top = ck.load("kms: [x]\nstate: {}\n")
    assert ck.section(top, "kms", ("dr_key",), "expected a mapping") == (top.value["kms"], None)
    node, items = ck.section(top, "state", ("path",), "expected a mapping")
    assert items == {} and ck.required("state", node, "path") is None
    assert ck.section(top, "dns", ("zone",), "expected a mapping", required=False) == (None, None)
    assert ck.messages() == ["f.yaml:1: kms: expected a mapping, got a list",
                             "f.yaml:2: state.path: required key is missing"]


def test_helpers():
    assert join("", "a") == "a" and join("a[0]", "b") == "a[0].b"
    assert (show({}), show([]), show("x"), show(None)) == ("a mapping", "a list", "'x'", "None")
    assert did_you_mean("stepz", ["steps", "name"]) == "did you mean 'steps'?"
    assert did_you_mean("zzz", ["steps"]) is None


def test_config_and_runbook_problems_share_one_format(tmp_path):
    with pytest.raises(ConfigError) as config_error:
        parse_config("version: 2\nregion: x\n", source=str(tmp_path / "dr.yaml"))
    with pytest.raises(ConfigError) as runbook_error:
        parse_runbook("version: 2\nname: x\nstepz: []\n", "rb.yaml")
    config_lines, runbook_lines = config_error.value.problems, runbook_error.value.problems
    assert "dr.yaml:1: version: expected 1 (the only config version this dr understands), got 2" in config_lines
    assert "dr.yaml:2: region: unknown key; did you mean 'regions'?" in config_lines
    assert "rb.yaml:3: stepz: unknown key; did you mean 'steps'?" in runbook_lines
    assert all(ONE_FORMAT.match(line) for line in config_lines + runbook_lines)
