"""`dr runbook describe|plan|validate` (handlers called through their own argparse wiring)."""

from __future__ import annotations

import argparse

import pytest

from dr.cli import runbook as cli
from dr.cli.app import App
from dr.errors import ConfigError, UsageError
from dr.runbook.steps import REGISTRY
from tests.support.runbook_world import CONFIG


def run(argv: list[str], config_path: str = "/nonexistent/dr.yaml"):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args, App(config_path=config_path))


def test_describe_one_type_has_fixed_sections():
    assert run(["runbook", "describe", "sleep"]).text == """\
Type:         sleep
Description:  Waits a while (simulated latency in tests and benchmarks; a settle time).
Parameters:
  seconds  float     required  how long to wait
Outputs:      slept
IAM actions:  <none>
Example:
  - id: settle
    type: sleep
    with: {seconds: 30}"""


def test_describe_notify_shows_defaults_and_iam():
    text = run(["runbook", "describe", "notify"]).text
    assert "  at        str       default now     now (a DAG step), start, end or failure" in text
    assert "IAM actions:  sns:Publish" in text


def test_describe_lists_every_registered_type_with_params_iam_and_example():
    outcome = run(["runbook", "describe"])
    assert [d["name"] for d in outcome.data] == sorted(REGISTRY)
    for name, cls in REGISTRY.items():
        assert f"Type:         {name}\n" in outcome.text
        assert f"IAM actions:  {', '.join(cls.iam_actions) or '<none>'}\n" in outcome.text
        for p in cls.params:
            assert f"\n  {p.name}  " in outcome.text
    assert all(set(d) == {"name", "description", "params", "outputs", "iam_actions", "example"}
               for d in outcome.data)


def test_describe_an_unknown_type_suggests_one():
    with pytest.raises(UsageError, match="unknown step type 'slep'; did you mean 'sleep'"):
        run(["runbook", "describe", "slep"])


RUNBOOK = """\
version: 1
name: demo
params: {pause: 1}
steps:
  - {id: start, type: notify, with: {at: start, message: "go ${run.id}"}}
  - {id: a, type: noop, with: {values: {region: "${config.regions.dr}"}}}
  - {id: b, type: sleep, needs: [a], with: {seconds: "${params.pause}"}, timeout: 5m, retries: 2}
  - {id: c, type: noop, with: {values: {from_a: "${steps.a.region}"}}, rto_end: true}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "dr.yaml").write_text(CONFIG)
    (tmp_path / "rb.yaml").write_text(RUNBOOK)
    return tmp_path


def test_plan_shows_batches_with_references_resolved_where_known(files):
    outcome = run(["runbook", "plan", "--runbook", str(files / "rb.yaml")], str(files / "dr.yaml"))
    assert outcome.text == f"""\
Runbook:  demo ({files / 'rb.yaml'})
Config:   {files / 'dr.yaml'}
Steps:    3 in 2 batch(es); a step starts as soon as its needs are done
Batch 1:
  a  (noop)  needs: <none>
      values: {{'region': 'us-west-2'}}
Batch 2:
  b  (sleep)  needs: a  [timeout 5m, retries 2]
      seconds: 1
  c  (noop)  needs: a (via ${{steps.a}})  [ends the RTO]
      values: {{'from_a': '${{steps.a.region}}'}}
Hooks:
  at start: start (notify)
RTO ends when these complete: c"""
    assert outcome.data["batches"][1][1]["implied_needs"] == ["a"]


def test_validate_a_good_and_a_bad_runbook(files):
    ok = run(["runbook", "validate", str(files / "rb.yaml")], str(files / "dr.yaml"))
    assert ok.exit_code == 0 and ok.text == f"{files / 'rb.yaml'}: valid: runbook demo, 3 steps in 2 batch(es), 1 hook(s)"
    without = run(["runbook", "validate", str(files / "rb.yaml")])
    assert without.text.endswith("(no dr.yaml: config references checked against the model only)")
    (files / "bad.yaml").write_text(RUNBOOK.replace("type: sleep", "type: sleeep"))
    with pytest.raises(ConfigError) as info:
        run(["runbook", "validate", str(files / "bad.yaml")], str(files / "dr.yaml"))
    assert info.value.exit_code == 2
    assert str(info.value).startswith(f"{files / 'bad.yaml'}:7: step 'b': unknown step type 'sleeep'; "
                                      "did you mean 'sleep'?")
