"""Runbook loading: a valid runbook's model, and the exact `file:line` text of every error kind."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dr.errors import EXIT_USAGE, ConfigError
from dr.runbook import load_runbook, parse_runbook
from dr.runbook.steps.base import Param, StepType
from tests.support.runbook_world import World, make_config, registry

VALID = """\
version: 1
name: drill
description: rehearse the failover
params: {size: 2, label: blue}
steps:
  - id: ready
    type: noop
    with: {values: {ok: true}}
  - id: db
    type: make
    needs: ready
    with: {name: "db-${params.label}", size: "${params.size}"}
    timeout: 30m
    retries: 2
    retry_delay: 10s
  - id: stack
    type: echo
    needs: [ready]
    with:
      text: "${steps.db.resource}.${config.regions.dr}"
      number: ${steps.db.size}
    teardown: false
    rto_end: true
    description: the web tier
  - id: tell
    type: notify
    with: {at: end, message: "done ${run.status}"}
"""


def load(text: str, tmp_path, config="default", types=None):
    cfg = make_config(tmp_path) if config == "default" else config
    return parse_runbook(text, "rb.yaml", cfg, types or registry(World()))


def problems(text: str, tmp_path, config="default", types=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path, config, types)
    assert info.value.exit_code == EXIT_USAGE
    assert str(info.value).splitlines()[:len(info.value.problems)] == info.value.problems
    return info.value.problems


def one(text: str, tmp_path, **kwargs) -> str:
    found = problems(text, tmp_path, **kwargs)
    assert len(found) == 1, found
    return found[0]


def steps(body: str, params: str = "") -> str:
    return f"version: 1\nname: t\n{params}steps:\n{body}"


# -- a valid runbook -------------------------------------------------------------------------


def test_a_valid_runbook(tmp_path):
    rb = load(VALID, tmp_path)
    assert rb.name == "drill" and rb.description == "rehearse the failover"
    assert rb.params == {"size": 2, "label": "blue"}
    assert [s.id for s in rb.steps] == ["ready", "db", "stack"]
    assert [h.id for h in rb.hooks] == ["tell"] and rb.hooks[0].phase == "end"
    db, stack = rb.step("db"), rb.step("stack")
    assert db.needs == ("ready",) and db.timeout == timedelta(minutes=30)
    assert db.retries == 2 and db.retry_delay == timedelta(seconds=10) and db.teardown is True
    assert db.params == {"name": "db-${params.label}", "size": "${params.size}"}
    assert stack.explicit_needs == ("ready",) and stack.needs == ("ready", "db")  # implied by the reference
    assert stack.teardown is False and stack.rto_end is True and stack.description == "the web tier"
    assert stack.line == 16 and rb.source == "rb.yaml" and len(rb.digest) == 64
    assert rb.rto_gates() == ("stack",)


def test_load_runbook_reads_a_file_and_names_it_in_errors(tmp_path):
    path = tmp_path / "drill.yaml"
    path.write_text(steps("  - {id: a, type: zzz}\n"))
    with pytest.raises(ConfigError) as info:
        load_runbook(path, make_config(tmp_path), registry())
    assert info.value.problems == [f"{path}:4: step 'a': unknown step type 'zzz'; "
                                   "`dr runbook describe` lists the types"]
    with pytest.raises(ConfigError, match="runbook .*missing.yaml not found"):
        load_runbook(tmp_path / "missing.yaml")


# -- the file --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("version: 1\nname: [\n", "rb.yaml:3: YAML syntax error: expected the node content, but found '<stream end>'"),
    ("", "rb.yaml:1: expected a mapping with version, name and steps"),
    ("- a\n", "rb.yaml:1: expected a mapping with version, name and steps"),
])
def test_files_that_are_not_runbooks(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    assert str(info.value).splitlines()[0].startswith(expected)


def test_top_level_problems_are_all_reported_in_line_order(tmp_path):
    text = "version: 2\nname: Drill\nstepz: []\nsteps: []\nsteps: [1]\n"
    assert problems(text, tmp_path) == [
        "rb.yaml:1: version: expected 1 (the only runbook version), got 2",
        "rb.yaml:2: name: expected lowercase letters, digits and '-', got 'Drill'",
        "rb.yaml:3: stepz: unknown key; did you mean 'steps'?",
        "rb.yaml:4: steps: expected a non-empty list of steps",
        "rb.yaml:5: steps: duplicate key (already set on line 4)",
    ]


def test_missing_version_name_and_steps(tmp_path):
    assert problems("description: x\n", tmp_path) == [
        "rb.yaml:1: required key 'version' is missing (write version: 1)",
        "rb.yaml:1: required key 'name' is missing (e.g. name: drill)",
        "rb.yaml:1: required key 'steps' is missing",
    ]


def test_params_are_literal_defaults(tmp_path):
    assert one(steps("  - {id: a, type: noop}\n", "params:\n  x: ${config.regions.dr}\n"), tmp_path) == \
        "rb.yaml:4: params.x: a default is a literal value, not a reference"


# -- steps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    ("  - just-a-string\n", "rb.yaml:4: a step is a mapping with at least id and type"),
    ("  - {type: noop}\n", "rb.yaml:4: step: required key 'id' is missing"),
    ("  - {id: 1a, type: noop}\n", "rb.yaml:4: step id '1a': expected a letter then letters, digits, '_' or '-'"),
    ("  - {id: a}\n", "rb.yaml:4: step 'a': required key 'type' is missing"),
    ("  - {id: a, type: noopp}\n", "rb.yaml:4: step 'a': unknown step type 'noopp'; did you mean 'noop'?"),
    ("  - {id: a, type: noop, need: [b]}\n", "rb.yaml:4: step 'a': need: unknown key; did you mean 'needs'?"),
    ("  - {id: a, type: noop, params: {}}\n", "rb.yaml:4: step 'a': params: unknown key; a step's "
                                              "parameters go under 'with'"),
    ("  - {id: a, type: noop, with: [1]}\n", "rb.yaml:4: step 'a': with: expected a mapping of parameters"),
    ("  - {id: a, type: noop, needs: {b: 1}}\n", "rb.yaml:4: step 'a': needs: expected a step id or a list of "
                                                 "step ids"),
    ("  - {id: a, type: noop, timeout: soon}\n", "rb.yaml:4: step 'a': timeout: expected a duration like 30s, "
                                                 "15m, 1h or 7d (or a compound like 1h30m), got 'soon'"),
    ("  - {id: a, type: noop, timeout: 0}\n", "rb.yaml:4: step 'a': timeout: expected a duration greater than "
                                              "zero, got 0"),
    ("  - {id: a, type: noop, retries: 21}\n", "rb.yaml:4: step 'a': retries: expected a whole number from 0 "
                                               "to 20, got 21"),
    ("  - {id: a, type: noop, teardown: yes please}\n", "rb.yaml:4: step 'a': teardown: expected true or "
                                                        "false, got 'yes please'"),
    ("  - {id: a, type: noop, rto_end: 1}\n", "rb.yaml:4: step 'a': rto_end: expected true or false, got 1"),
])
def test_step_shape_problems(tmp_path, body, expected):
    assert one(steps(body), tmp_path) == expected


def test_duplicate_ids_name_the_first_line(tmp_path):
    body = "  - {id: a, type: noop}\n  - {id: b, type: noop}\n  - {id: a, type: noop}\n"
    assert one(steps(body), tmp_path) == "rb.yaml:6: duplicate step id 'a' (first used on line 4)"


def test_a_step_with_an_unknown_type_does_not_cascade(tmp_path):
    body = "  - {id: a, type: zzz}\n  - {id: b, type: noop, needs: [a], with: {values: {x: '${steps.a.y}'}}}\n"
    assert problems(steps(body), tmp_path) == [
        "rb.yaml:4: step 'a': unknown step type 'zzz'; `dr runbook describe` lists the types"]


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_, expected", [
    ("{nam: x}", ["rb.yaml:4: step 'a' (make): unknown parameter 'nam'; did you mean 'name'?",
                  "rb.yaml:4: step 'a' (make): name: required parameter is missing (str)"]),
    ("{name: x, colour: red}", ["rb.yaml:4: step 'a' (make): unknown parameter 'colour'; make takes: name, "
                                "seconds, size, teardown_seconds"]),
    ("{name: 5}", ["rb.yaml:4: step 'a' (make): name: expected a string, got 5 (quote it to make it a string)"]),
    ("{name: x, size: 1.5}", ["rb.yaml:4: step 'a' (make): size: expected a whole number, got 1.5"]),
    ("{name: x, size: true}", ["rb.yaml:4: step 'a' (make): size: expected a whole number, got True"]),
    ("{name: x, seconds: soon}", ["rb.yaml:4: step 'a' (make): seconds: expected a number, got 'soon'"]),
    ("{name: [x]}", ["rb.yaml:4: step 'a' (make): name: expected a string, got a list"]),
])
def test_parameter_problems(tmp_path, with_, expected):
    assert problems(steps(f"  - {{id: a, type: make, with: {with_}}}\n"), tmp_path) == expected


def test_parameter_problems_point_at_the_parameter_line(tmp_path):
    body = "  - id: a\n    type: make\n    with:\n      name: x\n      size: big\n"
    assert one(steps(body), tmp_path) == "rb.yaml:8: step 'a' (make): size: expected a whole number, got 'big'"


def test_every_parameter_type(tmp_path):
    body = """\
  - id: e
    type: echo
    with: {text: 1, number: x, flag: 1, mapping: [], items: {}, wait: soon, ratio: "1"}
"""
    assert problems(steps(body), tmp_path) == [
        "rb.yaml:6: step 'e' (echo): text: expected a string, got 1 (quote it to make it a string)",
        "rb.yaml:6: step 'e' (echo): number: expected a whole number, got 'x'",
        "rb.yaml:6: step 'e' (echo): flag: expected true or false, got 1",
        "rb.yaml:6: step 'e' (echo): mapping: expected a mapping, got a list",
        "rb.yaml:6: step 'e' (echo): items: expected a list, got a mapping",
        "rb.yaml:6: step 'e' (echo): wait: expected a duration like 30s, 15m, 1h (or a number of seconds), got 'soon'",
        "rb.yaml:6: step 'e' (echo): ratio: expected a number, got '1'",
    ]


def test_known_values_behind_references_are_type_checked(tmp_path):
    body = "  - {id: e, type: echo, with: {number: '${params.n}', wait: '${config.regions.dr}'}}\n"
    assert problems(steps(body, "params: {n: many}\n"), tmp_path) == [
        "rb.yaml:5: step 'e' (echo): number: expected a whole number, got 'many'",
        "rb.yaml:5: step 'e' (echo): wait: expected a duration like 30s, 15m, 1h (or a number of seconds), "
        "got 'us-west-2'",
    ]


def test_the_types_own_validate_runs_with_a_config_only(tmp_path):
    body = "  - {id: s, type: sleep, with: {seconds: -1}}\n"
    assert one(steps(body), tmp_path) == "rb.yaml:4: step 's' (sleep): seconds: expected zero or more, got -1.0"
    assert load(steps(body), tmp_path, config=None).steps[0].id == "s"


def test_validate_sees_run_time_values_as_their_reference_text(tmp_path):
    seen = {}

    class Picky(StepType):
        name = "picky"
        description = "records what validate saw"
        params = (Param("target", "str"), Param("extra", "dict"))
        outputs = ()
        iam_actions = ()
        example = "- {id: p, type: picky}\n"

        def validate(self, params, config):
            seen.update(params)
            return []

    types = {**registry(World()), "picky": Picky}
    body = ("  - {id: a, type: make, with: {name: x}}\n"
            "  - {id: p, type: picky, with: {target: '${steps.a.resource}', extra: {r: '${config.regions.dr}', "
            "i: '${run.id}'}}}\n")
    load(steps(body), tmp_path, types=types)
    assert seen == {"target": "${steps.a.resource}", "extra": {"r": "us-west-2", "i": "${run.id}"}}


# -- needs, hooks and cycles -----------------------------------------------------------------


def test_needs_an_unknown_step(tmp_path):
    body = "  - {id: build, type: noop}\n  - {id: b, type: noop, needs: [biuld]}\n"
    assert one(steps(body), tmp_path) == "rb.yaml:5: step 'b': needs unknown step 'biuld'; did you mean 'build'?"


@pytest.mark.parametrize("body, expected", [
    ("  - {id: a, type: noop, needs: [a]}\n", "rb.yaml:4: cycle in needs: a -> a"),
    ("  - {id: a, type: noop, needs: [b]}\n  - {id: b, type: noop, needs: [a]}\n",
     "rb.yaml:4: cycle in needs: a -> b -> a"),
    ("  - {id: a, type: noop, needs: [c]}\n  - {id: b, type: noop, needs: [a]}\n"
     "  - {id: c, type: noop, needs: [b]}\n", "rb.yaml:4: cycle in needs: a -> c -> b -> a"),
    ("  - {id: a, type: noop, with: {values: {x: '${steps.b.y}'}}}\n  - {id: b, type: noop, needs: [a]}\n",
     "rb.yaml:4: cycle in needs: a -> b -> a"),
])
def test_cycles_are_named(tmp_path, body, expected):
    assert one(steps(body), tmp_path) == expected


def test_hooks_stay_outside_the_dag(tmp_path):
    body = ("  - {id: a, type: noop}\n"
            "  - {id: h, type: notify, needs: [a], with: {at: end, message: 'x ${steps.a.x}'}}\n"
            "  - {id: b, type: noop, needs: [h]}\n"
            "  - {id: c, type: noop, with: {values: {v: '${steps.h.sent}'}}}\n")
    assert problems(steps(body), tmp_path) == [
        "rb.yaml:5: step 'h': a hook (at: end) cannot have needs",
        "rb.yaml:5: step 'h': ${steps.a.x}: a hook (at: end) cannot use step outputs",
        "rb.yaml:6: step 'b': needs 'h', a hook (at: end) that runs outside the DAG",
        "rb.yaml:7: step 'c': ${steps.h.sent}: 'h' is a hook; hooks have no outputs to use",
    ]


def test_notify_at_must_be_a_known_moment(tmp_path):
    body = "  - {id: n, type: notify, with: {at: lunch, message: x}}\n"
    assert one(steps(body), tmp_path) == \
        "rb.yaml:4: step 'n' (notify): at: expected one of now, start, end, failure, got 'lunch'"


# -- references ------------------------------------------------------------------------------


def ref_problem(tmp_path, ref: str, config="default") -> str:
    body = ("  - {id: db, type: make, with: {name: x}}\n"
            f"  - {{id: u, type: echo, with: {{text: \"{ref}\"}}}}\n")
    return one(steps(body, "params: {label: x}\n"), tmp_path, config=config)


@pytest.mark.parametrize("ref, expected", [
    ("${steps.db.resorce}", "${steps.db.resorce}: step 'db' (make) has no output 'resorce'; did you mean "
                            "'resource'?"),
    ("${steps.dbb.resource}", "${steps.dbb.resource} names unknown step 'dbb'; did you mean 'db'?"),
    ("${config.regions.drr}", "${config.regions.drr}: config.regions has no 'drr'; did you mean 'dr'?"),
    ("${config.stack.name}", "${config.stack.name}: config.stack is not set in the config"),
    ("${config.rds.app-bd.instance}", "${config.rds.app-bd.instance}: config.rds has no item named 'app-bd'; "
                                      "did you mean 'app-db'?"),
    ("${run.idd}", "${run.idd}: run has no 'idd'; did you mean 'id'?"),
    ("${params.lable}", "${params.lable}: no runbook param 'lable'; did you mean 'label'?"),
    ("${bogus.x}", "with.text: ${bogus.x}: a reference starts with one of steps, config, run, params (like "
                   "${steps.db.endpoint} or ${config.regions.dr})"),
    ("${steps.db.}", "with.text: ${steps.db.}: expected steps.<name>[.<name>...] with names of letters, "
                     "digits, '_' or '-'"),
    ("x ${run.id", "with.text: 'x ${run.id': '${' is not closed by '}' (write $${ for a literal ${)"),
])
def test_reference_problems(tmp_path, ref, expected):
    assert ref_problem(tmp_path, ref) == f"rb.yaml:6: step 'u': {expected}"


def test_secrets_cannot_be_referenced(tmp_path):
    from tests.support.runbook_world import CONFIG

    config = make_config(tmp_path, CONFIG + "dns: {provider: rfc2136, zone: example.com., record: www.example.com., "
                                            "server: 127.0.0.1, tsig: {name: k, secret: {env: TSIG}}}\n")
    assert ref_problem(tmp_path, "${config.dns.tsig.secret}", config=config) == (
        "rb.yaml:6: step 'u': ${config.dns.tsig.secret} is a secret; secrets cannot be referenced "
        "(the step reads them from the config itself)")


def test_config_paths_are_checked_against_the_model_without_a_config(tmp_path):
    assert ref_problem(tmp_path, "${config.regions.drr}", config=None) == \
        "rb.yaml:6: step 'u': ${config.regions.drr}: config.regions has no 'drr'; did you mean 'dr'?"
    assert ref_problem(tmp_path, "${config.stack.nmae}", config=None) == \
        "rb.yaml:6: step 'u': ${config.stack.nmae}: config.stack has no 'nmae'; did you mean 'name'?"
    assert ref_problem(tmp_path, "${config.regions.dr.x}", config=None) == \
        "rb.yaml:6: step 'u': ${config.regions.dr.x}: config.regions.dr is a str and has no 'x'"
    body = "  - {id: u, type: echo, with: {text: '${config.stack.parameters.Any} ${config.rds.0.instance}'}}\n"
    assert load(steps(body), tmp_path, config=None).steps[0].id == "u"


def test_dynamic_outputs_and_output_names(tmp_path):
    class Stack(StepType):
        name = "stackish"
        description = "outputs depend on the template"
        params = (Param("outputs", "list", default=None),)
        outputs = ("stack_id",)
        iam_actions = ()
        example = "- {id: s, type: stackish}\n"

        def output_names(self, params, config):
            return self.outputs + tuple(params.get("outputs") or ())

    types = {**registry(World()), "stackish": Stack}
    ok = ("  - {id: s, type: stackish, with: {outputs: [WebsiteURL]}}\n"
          "  - {id: n, type: noop, with: {values: {a: 1}}}\n"
          "  - {id: u, type: echo, with: {text: '${steps.s.WebsiteURL} ${steps.n.anything} ${steps.s}'}}\n")
    assert [s.needs for s in load(steps(ok), tmp_path, types=types).steps][2] == ("s", "n")
    bad = ok.replace("${steps.s.WebsiteURL}", "${steps.s.WebsiteUrl}")
    assert one(steps(bad), tmp_path, types=types) == (
        "rb.yaml:6: step 'u': ${steps.s.WebsiteUrl}: step 's' (stackish) has no output 'WebsiteUrl'; "
        "did you mean 'WebsiteURL'?")


def test_a_null_config_value_cannot_be_embedded_in_text(tmp_path):
    assert ref_problem(tmp_path, "topic ${config.notify.sns_topic}") == \
        "rb.yaml:6: step 'u' (echo): with.text: ${config.notify.sns_topic} is null and cannot be part of a string"
