"""`${...}` references: parsing, escapes, type-preserving resolution, config lookups."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dr.runbook.refs import Deferred, Ref, RefError, find_refs, resolve, split, whole_ref
from dr.runbook.scope import Scope, as_seconds, check_config_type_path, config_value
from tests.support.runbook_world import CONFIG, make_config


def test_split_finds_literals_and_references():
    assert split("http://${steps.stack.host}:${config.dns.port}/x") == [
        "http://", Ref("steps", ("stack", "host")), ":", Ref("config", ("dns", "port")), "/x"]
    assert split("a $${literal} b") == ["a ${literal} b"]
    assert split("$5 and $ {x}") == ["$5 and $ {x}"]


def test_whole_and_embedded_references():
    assert whole_ref("${run.id}") == Ref("run", ("id",))
    assert whole_ref(" ${run.id}") is None and whole_ref(5) is None
    assert find_refs({"a": ["${params.x}", {"b": "x ${steps.s.o.deep}"}], "c": 3}) == [
        Ref("params", ("x",)), Ref("steps", ("s", "o", "deep"))]


@pytest.mark.parametrize("text, message", [
    ("${nope.x}", "a reference starts with one of steps, config, run, params"),
    ("${steps}", "expected steps.<name>"),
    ("${steps.a b}", "expected steps.<name>"),
    ("${run.id", "is not closed"),
])
def test_malformed_references(text, message):
    with pytest.raises(RefError, match=message):
        split(text)


def _scope(tmp_path) -> Scope:
    return Scope(config=make_config(tmp_path), run={"id": "drill-1", "drill": True, "region": "us-west-2"},
                 params={"n": 3}, outputs={"db": {"endpoint": "db.example", "port": 3306,
                                                  "tags": {"a": 1}, "list": [1, 2]}})


def test_a_whole_reference_keeps_its_type_and_embedded_ones_become_text(tmp_path):
    scope = _scope(tmp_path)
    value = {"port": "${steps.db.port}", "flag": "${run.drill}", "all": "${steps.db}",
             "url": "mysql://${steps.db.endpoint}:${steps.db.port}/?drill=${run.drill}",
             "rpo": "${config.objectives.rpo}", "text": "rpo ${config.objectives.rpo}, tags ${steps.db.tags}",
             "deep": ["${steps.db.list.1}", "${params.n}"]}
    assert resolve(value, scope.lookup) == {
        "port": 3306, "flag": True, "all": {"endpoint": "db.example", "port": 3306, "tags": {"a": 1},
                                            "list": [1, 2]},
        "url": "mysql://db.example:3306/?drill=true", "rpo": timedelta(hours=1),
        "text": 'rpo 1h, tags {"a": 1}', "deep": [2, 3]}


@pytest.mark.parametrize("ref, message", [
    ("${steps.web.url}", "step 'web' has not completed"),
    ("${steps.db.endpont}", "step 'db' did not output 'endpont'; did you mean 'endpoint'?"),
    ("${steps.db.list.5}", "is a list of 2; '5' is not an index in it"),
    ("${steps.db.port.x}", "is a int and has no 'x'"),
    ("${params.m}", "params has no 'm'"),
])
def test_resolution_errors_say_why(tmp_path, ref, message):
    with pytest.raises(RefError, match=message.replace("(", r"\(").replace("?", r"\?")):
        resolve(ref, _scope(tmp_path).lookup)


def test_a_preview_defers_what_is_known_only_at_run_time(tmp_path):
    scope = Scope(config=make_config(tmp_path), params={"n": 1}, preview=True)
    assert resolve("${steps.x.y}", scope.lookup) == Deferred(Ref("steps", ("x", "y")))
    assert resolve("${run.id}", scope.lookup) == Deferred(Ref("run", ("id",)))
    assert resolve("a ${steps.x.y} b ${params.n}", scope.lookup) == "a ${steps.x.y} b 1"


def test_config_values(tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text("Resources: {}\n")
    config = make_config(tmp_path, CONFIG + f"stack: {{name: web, template: {template}, "
                                            "parameters: {InstanceType: t3.small}}\n")
    assert config_value(config, ("regions", "dr")) == "us-west-2"
    assert config_value(config, ("rds", "app-db", "instance")) == "acme-prod-db"
    assert config_value(config, ("rds", "1", "cluster")) == "acme-aurora"
    assert config_value(config, ("stack", "parameters")) == {"InstanceType": "t3.small"}
    assert config_value(config, ("stack", "parameters", "InstanceType")) == "t3.small"
    assert config_value(config, ("stack", "template")) == str(template)
    assert config_value(config, ("health", "timeout")) == timedelta(minutes=10)
    assert config_value(config, ("notify", "sns_topic")) is None
    assert config_value(config, ("regions",)) == {"primary": "us-east-1", "dr": "us-west-2"}
    assert config_value(config, ("rds", "app-db", "schedule")) == "every 1d"


def test_config_paths_against_the_model():
    assert check_config_type_path(("regions", "dr")) is None
    assert check_config_type_path(("rds", "app-db", "instance")) is None
    assert check_config_type_path(("stack", "parameters", "Anything")) is None
    assert "has no 'nope'" in check_config_type_path(("nope",))
    assert "is a int and has no 'x'" in check_config_type_path(("dns", "ttl", "x"))


@pytest.mark.parametrize("value, seconds", [("30s", 30), ("1h30m", 5400), (2.5, 2.5), (timedelta(minutes=1), 60)])
def test_durations(value, seconds):
    assert as_seconds(value).total_seconds() == seconds


@pytest.mark.parametrize("value", ["soon", 0, -1, True, None, timedelta(0)])
def test_bad_durations(value):
    with pytest.raises((ValueError, TypeError)):
        as_seconds(value)
