"""The step-type registry, and THE lint that every registered type is complete (cloud-custodian's
PolicyMetaLint): name, description, typed and explained params, outputs, IAM actions, and an
example that itself loads and validates as a runbook step against a full config."""

from __future__ import annotations

import re

import pytest
import yaml

from dr.runbook import parse_runbook, steps
from dr.runbook.refs import scan
from dr.runbook.steps import REGISTRY, register
from dr.runbook.steps.base import PARAM_TYPES, Param, StepType
from dr.runbook.steps.generic import Noop
from tests.support.runbook_world import CONFIG, make_config

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  InstanceType: {Type: String, Default: t3.small}
  KeyName: {Type: String, Default: ""}
  DBHost: {Type: String, Default: ""}
  DBSnapshotIdentifier: {Type: String, Default: ""}
Resources:
  Topic: {Type: "AWS::SNS::Topic"}
Outputs:
  WebsiteURL: {Value: "http://example.com"}
"""


@pytest.fixture
def full_config(tmp_path):
    template = tmp_path / "web.yaml"
    template.write_text(TEMPLATE)
    return make_config(tmp_path, CONFIG.replace("health: {url: \"https://example.com/health\", timeout: 10m}\n", "") + f"""\
stack:
  name: acme-web
  template: {template}
  parameters: {{InstanceType: t3.small}}
  dr_parameters: {{KeyName: acme-usw2}}
  snapshot_parameter: DBSnapshotIdentifier
health: {{url: "http://{{stack.WebsiteURL}}/health", consecutive: 3, timeout: 10m}}
dns: {{provider: route53, zone: example.com., record: www.example.com., ttl: 60}}
notify: {{sns_topic: "arn:aws:sns:us-west-2:123456789012:dr-alerts"}}
mysql:
  - {{name: office-lamp, host: 10.0.0.5, databases: [app], destination: "s3://acme-dr-backups/mysql/"}}
""")


FAMILIES = (steps.generic, steps.readiness, steps.rds_restore, steps.stack, steps.teardown, steps.dns,
            steps.http, steps.mysql)
AWS_TYPES = ("readiness", "rds.restore", "stack.launch", "teardown")  # each needs IAM actions


def test_the_generic_types_are_registered():
    assert {"noop", "sleep", "fail", "notify"} <= set(REGISTRY)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_family_registers_the_types_it_lists(family):
    assert family.STEP_TYPES
    for cls in family.STEP_TYPES:
        assert REGISTRY[cls.name] is cls and cls.__module__ == family.__name__
    assert sum(len(f.STEP_TYPES) for f in FAMILIES) == len(REGISTRY)


def test_a_duplicate_name_is_an_error():
    class Other(StepType):
        name = "noop"

    target = {"noop": Noop}
    with pytest.raises(ValueError, match="duplicate step type 'noop'"):
        register(Other, target)
    assert register(Noop, target) is Noop  # the same class again is harmless


def _example_runbook(cls) -> str:
    """The type's example as a runbook, with a noop standing in for each step it needs."""
    example = yaml.safe_load(cls.example)
    assert isinstance(example, list) and len(example) == 1, "an example is a YAML list with one step"
    step = example[0]
    assert step.get("type") == cls.name, f"the example's type is {step.get('type')!r}"
    needed = set(step.get("needs") or [])
    needed |= {r.path[0] for r in scan(step.get("with") or {})[0] if r.namespace == "steps"}
    stubs = "".join(f"  - {{id: {n}, type: noop}}\n" for n in sorted(needed))
    body = "\n".join("  " + line for line in cls.example.rstrip("\n").splitlines())
    return f"version: 1\nname: lint\nsteps:\n{stubs}{body}\n"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_step_type_is_complete(name, full_config):
    cls = REGISTRY[name]
    assert cls.name == name and re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?", name)
    assert isinstance(cls.description, str) and len(cls.description) > 10
    assert isinstance(cls.params, tuple) and all(isinstance(p, Param) for p in cls.params)
    names = [p.name for p in cls.params]
    assert len(names) == len(set(names)), "parameter names are unique"
    for p in cls.params:
        assert p.type in PARAM_TYPES, f"{p.name}: type {p.type!r}"
        assert p.help, f"{p.name}: no help"
        assert not (p.required and p.default is not None), f"{p.name}: required with a default"
    assert isinstance(cls.outputs, tuple) and cls.outputs and all(isinstance(o, str) for o in cls.outputs)
    assert isinstance(cls.iam_actions, tuple)
    assert cls.iam_actions or name not in AWS_TYPES
    assert all(re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z0-9*]*", a) for a in cls.iam_actions), cls.iam_actions
    assert "execute" in vars(cls) or any("execute" in vars(b) for b in cls.__mro__[1:-2])
    example = yaml.safe_load(cls.example)
    assert set(example[0].get("with") or {}) <= {p.name for p in cls.params}
    runbook = parse_runbook(_example_runbook(cls), f"{name}.example", full_config, REGISTRY)
    assert name in [s.type for s in (*runbook.steps, *runbook.hooks)]
