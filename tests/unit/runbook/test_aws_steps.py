"""The AWS step types without a server: templates, parameters, names, validation, launch logic."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.aws_fake import FakeAws
from tests.support.aws_fake import FakeCfn as MemoryCfn
from dr.aws.rds import recovery_time
from dr.clock import FixedClock
from dr.config import parse_config
from dr.errors import ConfigError, OperationFailed
from dr.runbook.loader import load_runbook
from dr.runbook.steps import rds_restore as rr
from dr.runbook.steps import stack_cloudformation as cfn
from dr.runbook.steps.rds_restore import RdsRestore
from dr.runbook.steps.readiness import Readiness
from dr.runbook.steps.stack import StackLaunch
from dr.runbook.steps.teardown import Teardown

STEP_TYPES = (Readiness, RdsRestore, StackLaunch, Teardown)
from dr.runbook.steps.base import StepContext
from dr.runbook.steps.teardown_leftovers import DrillMatcher
from tests.conftest import REPO, fixtures_dir

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
RUN = "drill-20261126T120000Z-ab12"


def wordpress() -> Path:
    base = fixtures_dir()
    path = base / "cloudformation" / "WordPress_Multi_AZ.yaml" if base else None
    if path is None or not path.is_file():
        pytest.skip("the shared fixture cloudformation/WordPress_Multi_AZ.yaml is absent "
                    "(../shared/fixtures or $DR_FIXTURES)")
    return path


TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Parameters:
  KeyName: {Type: String}
  DBSnapshotIdentifier: {Type: String, Default: ""}
  Size: {Type: Number, Default: 1}
Mappings:
  RegionAmi:
    us-east-1: {AMI: ami-1}
    eu-west-1: {AMI: ami-2}
  Sizes:
    small: {Class: t3.small}
Resources:
  Web:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !FindInMap [RegionAmi, !Ref 'AWS::Region', AMI]
      UserData: !Base64 {"Fn::Sub": "host=${DB.Endpoint.Address}"}
  DB:
    Type: AWS::RDS::DBInstance
    Properties: {Engine: MySQL, DBSnapshotIdentifier: !Ref DBSnapshotIdentifier}
Outputs:
  URL: {Value: !GetAtt DB.Endpoint.Address}
  Port: {Value: !Join [":", [!GetAtt DB.Endpoint.Port, "x"]]}
"""


def config_for(tmp_path: Path, template: str | Path | None = None, extra: str = "", params: str = "KeyName: k"):
    if template is None:
        template = tmp_path / "t.yaml"
        template.write_text(TEMPLATE)
    text = f"""\
version: 1
regions: {{primary: us-east-1, dr: us-west-2}}
objectives: {{rpo: 1h, rto: 30m}}
kms: {{dr_key: alias/dr-backups}}
state: {{path: {tmp_path / 'state'}}}
rds:
  - {{name: app-db, instance: acme-prod-db}}
  - {{name: aurora, cluster: acme-aurora}}
stack:
  name: acme-web
  template: {template}
  parameters: {{{params}}}
  snapshot_parameter: DBSnapshotIdentifier
{extra}"""
    return parse_config(text, base_dir=tmp_path)


def context(config=None, drill=True, clock=None, run_id=RUN, region="us-west-2") -> StepContext:
    return StepContext(run_id=run_id, step_id="s", config=config, session=None,
                       clock=clock or FixedClock(NOW), cancel=threading.Event(), store=None,
                       drill=drill, region=region, log=lambda m: None)


# --- templates --------------------------------------------------------------------------------------


def test_cfn_loader_reads_short_tags_like_cloudformation():
    doc = cfn.parse_template(TEMPLATE)
    assert doc["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    web = doc["Resources"]["Web"]["Properties"]
    assert web["ImageId"] == {"Fn::FindInMap": ["RegionAmi", {"Ref": "AWS::Region"}, "AMI"]}
    assert web["UserData"] == {"Fn::Base64": {"Fn::Sub": "host=${DB.Endpoint.Address}"}}
    # !GetAtt splits on the FIRST dot only: the attribute is Endpoint.Address
    assert doc["Outputs"]["URL"]["Value"] == {"Fn::GetAtt": ["DB", "Endpoint.Address"]}
    assert doc["Outputs"]["Port"]["Value"]["Fn::Join"][1][0] == {"Fn::GetAtt": ["DB", "Endpoint.Port"]}


def test_cfn_loader_reads_json_and_rejects_non_templates(tmp_path):
    assert cfn.parse_template('{"Resources": {"A": {"Type": "AWS::SNS::Topic"}}}')["Resources"]
    with pytest.raises(ConfigError, match="no Resources section"):
        cfn.parse_template("a: 1", "x.yaml")
    with pytest.raises(ConfigError, match="YAML/JSON error"):
        cfn.parse_template("Resources: [", "x.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("Resources: {}\n" + "#" * cfn.MAX_BODY)
    with pytest.raises(ConfigError, match="larger than 51200 bytes"):
        cfn.load_template(big)
    with pytest.raises(ConfigError, match="cannot read the stack template"):
        cfn.load_template(tmp_path / "missing.yaml")


def test_region_mappings_must_cover_the_region(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE)
    t = cfn.load_template(path)
    assert t.region_mapping_gaps("us-east-1") == []
    assert t.region_mapping_gaps("us-west-2") == ["RegionAmi"]  # Sizes is not keyed by region


def test_wordpress_region_mappings_cover_us_west_2_but_not_every_region():
    t = cfn.load_template(wordpress())
    assert t.region_mapping_gaps("us-west-2") == []
    assert t.region_mapping_gaps("af-south-1") == ["AWSRegionArch2AMI"]
    assert "WebsiteURL" in t.outputs
    assert set(t.required_parameters()) == {"VpcId", "Subnets", "KeyName", "DBUser", "DBPassword"}


def test_parameter_problems_name_unknown_and_missing_parameters(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TEMPLATE)
    t = cfn.load_template(path)
    assert cfn.parameter_problems(t, {"KeyName"}) == []
    problems = cfn.parameter_problems(t, {"KeyNmae"})
    assert "'KeyNmae' is not a parameter of t.yaml" in problems[0]
    assert "needs a value for KeyName" in problems[1]


# --- validation against dr.yaml ---------------------------------------------------------------------


def test_stack_launch_validates_parameters_against_the_template(tmp_path):
    config = config_for(tmp_path)
    step = StackLaunch()
    assert step.validate({}, config) == []
    assert step.validate({"parameters": {"Size": "${steps.db.port}"}, "snapshot": "${steps.db.snapshot_id}"},
                         config) == []
    problems = step.validate({"parameters": {"Sise": "2"}}, config)
    assert problems and "'Sise' is not a parameter of t.yaml" in problems[0]
    bad = config_for(tmp_path, params="Other: x")
    assert any("needs a value for KeyName" in p for p in step.validate({}, bad))
    assert "capabilities" in step.validate({"capabilities": ["CAPABILITY_ALL"]}, config)[0]


def test_stack_launch_output_names_come_from_the_template(tmp_path):
    names = StackLaunch().output_names({}, config_for(tmp_path))
    assert names == ("stack_id", "stack_name", "created", "outputs", "URL", "Port")


def test_stack_launch_parameters_overlay_in_order(tmp_path):
    config = config_for(tmp_path, params="KeyName: prod-key, Size: '1'")
    step = StackLaunch()
    req = step.request({"snapshot": "snap-1", "parameters": {"Size": 3}}, context(config))
    assert req.name == "acme-web-drill-ab12"
    assert req.parameters == {"KeyName": "prod-key", "DBSnapshotIdentifier": "snap-1", "Size": "3"}
    assert req.tags["dr:run"] == RUN and req.tags["dr:drill"] == "true"
    assert step.request({}, context(config, drill=False)).name == "acme-web"


def test_dr_parameters_apply_away_from_the_primary_only(tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    config = config_for(tmp_path, template=template,
                        extra="  dr_parameters: {KeyName: dr-key}\n")
    step = StackLaunch()
    assert step.request({}, context(config)).parameters["KeyName"] == "dr-key"
    assert step.request({}, context(config, region="us-east-1")).parameters["KeyName"] == "k"


def test_rds_restore_validation(tmp_path):
    config = config_for(tmp_path)
    step = RdsRestore()
    assert step.validate({"resource": "app-db"}, config) == []
    assert "no rds resource named 'nope'" in step.validate({"resource": "nope"}, config)[0]
    assert "instance_class: required for the Aurora cluster" in step.validate({"resource": "aurora"}, config)[0]
    assert step.validate({"resource": "aurora", "instance_class": "db.r6g.large"}, config) == []
    assert "identifier" in step.validate({"resource": "app-db", "identifier": "bad--id"}, config)[0]
    assert step.validate({"resource": "${config.rds.0.name}"}, config) == []


def test_readiness_and_teardown_validation(tmp_path):
    config = config_for(tmp_path)
    assert Readiness().validate({"resources": ["app-db"]}, config) == []
    assert "no rds resource named 'x'" in Readiness().validate({"resources": ["x"]}, config)[0]
    assert Teardown().validate({"at": "later"}, config)[0].startswith("at: expected one of now, end, failure")
    assert Teardown.phase({}) is None and Teardown.phase({"at": "end"}) == "end"


# --- names, times, matching -------------------------------------------------------------------------


def test_names_are_deterministic_drill_suffixed_and_fit_rds_limits():
    ctx = context()
    assert rr.bounded_name(ctx, "acme-prod-db-dr") == "acme-prod-db-dr-drill-ab12"
    long = "a" * 60 + "-dr"
    name = rr.bounded_name(ctx, long)
    assert len(name) == 63 and name.endswith("-drill-ab12") and name == rr.bounded_name(ctx, long)
    assert rr.bounded_name(context(drill=False), "acme-prod-db-dr") == "acme-prod-db-dr"
    assert rr.cluster_instance_id("x" * 63) == "x" * 61 + "-1"
    assert rr.valid_identifier("acme-db-dr") and not rr.valid_identifier("1db")


def test_recovery_time_is_when_the_data_was_captured():
    original, tagged, copied = (NOW - timedelta(hours=h) for h in (3, 2, 1))
    item = {"SnapshotCreateTime": copied, "OriginalSnapshotCreateTime": original,
            "TagList": [{"Key": "dr:created-at", "Value": tagged.isoformat()}]}
    assert recovery_time(item) == original
    del item["OriginalSnapshotCreateTime"]  # cluster snapshots have no such field
    assert recovery_time(item) == tagged
    assert recovery_time({"SnapshotCreateTime": copied.replace(tzinfo=None)}) == copied


def test_drill_matcher_finds_this_drill_only():
    match = DrillMatcher(context())
    assert match("acme-web-drill-ab12")
    assert match("acme-web-drill-ab12-dbinstance-xyz")  # CloudFormation-made names
    assert match("drill-ab12.example.com.")  # the drill DNS record
    assert match("whatever", {"dr:run": RUN, "dr:drill": "true"})
    assert not match("whatever", {"dr:run": RUN, "dr:drill": "false"})  # made by a real failover
    assert not match("acme-web")  # production
    assert not match("acme-web-drill-ab123")  # another drill
    assert not match("whatever", {"dr:run": "drill-20261126T110000Z-ffff", "dr:drill": "true"})


def test_examples_load_in_a_runbook(tmp_path):
    """Each example, with the steps it needs, passes the loader's full validation."""
    config = config_for(tmp_path, extra="dns: {provider: route53, zone: example.com., record: www.example.com.}\n")
    steps = "".join(cls.example for cls in STEP_TYPES)
    text = "version: 1\nname: examples\nsteps:\n" + "\n".join("  " + line for line in steps.splitlines())
    text += "\n  - {id: report, type: noop}\n  - {id: flip, type: noop}\n"
    path = tmp_path / "examples.yaml"
    path.write_text(text)
    # the stack example passes DBHost, which this template does not take: a clear error
    with pytest.raises(ConfigError, match="'DBHost' is not a parameter of t.yaml"):
        load_runbook(path, config)
    path.write_text(text.replace("DBHost", "KeyName"))
    runbook = load_runbook(path, config)
    assert {s.type for s in runbook.steps} >= {c.name for c in STEP_TYPES}


@pytest.mark.parametrize("name", ["drill", "failover", "failback"])
def test_shipped_runbooks_load(tmp_path, name):
    config = config_for(tmp_path, extra='health: {url: "http://{stack.URL}/health"}\n'
                                         "dns: {provider: route53, zone: example.com., record: www.example.com.}\n")
    runbook = load_runbook(REPO / "runbooks" / f"{name}.yaml", config)
    types = [s.type for s in runbook.steps]
    dns = "dns.restore" if name == "failback" else "dns.flip"  # failback puts the saved values back
    assert types.index("stack.launch") < types.index("http.wait_healthy") < types.index(dns)
    assert [s.id for s in runbook.steps if s.rto_end] == ["health"]
    assert types[0] == "readiness"
    if name != "failback":
        assert types[:3] == ["readiness", "rds.restore", "stack.launch"]
    assert {h.phase for h in runbook.hooks} >= {"start", "end"}


# --- the idempotent launch, against a fake CloudFormation ------------------------------------------


class FakeCfn(MemoryCfn):
    """tests/support/aws_fake.py's CloudFormation (checked against the sandbox by tests/support/aws_contract.py), plus
    what these tests script: a create that rolls back, CloudFormation's "no updates", a count of calls."""

    def __init__(self, fail_create: int = 0):
        super().__init__(FakeAws().world, "us-west-2")
        self.calls: list[str] = []
        self.fail_create = fail_create
        self.no_updates = False

    def describe(self, name):
        self.calls.append("describe")
        return super().describe(name)

    def create(self, args):
        self.calls.append("create")
        stack_id = super().create(args)
        if self.fail_create:
            self.fail_create -= 1
            self.force(args["StackName"], "ROLLBACK_COMPLETE",
                       failed=("DB", "AWS::RDS::DBInstance", "Engine nope not supported"))
        return stack_id

    def update(self, args):
        self.calls.append("update")
        return False if self.no_updates else super().update(args)

    def delete(self, stack_id):
        self.calls.append("delete")
        super().delete(stack_id)


def _request(tmp_path, **params):
    config = config_for(tmp_path)
    return StackLaunch().request(params, context(config)), context(config)


def test_launch_creates_a_missing_stack_then_leaves_it_alone(tmp_path):
    req, ctx = _request(tmp_path)
    fake = FakeCfn()
    stack = cfn.launch(ctx, fake, req, owned=True)
    assert stack.status == "CREATE_COMPLETE" and fake.calls.count("create") == 1
    cfn.launch(ctx, fake, req, owned=True)
    assert "update" not in fake.calls and fake.calls.count("create") == 1


def test_launch_updates_when_parameters_change_and_no_updates_is_success(tmp_path):
    req, ctx = _request(tmp_path)
    fake = FakeCfn()
    cfn.launch(ctx, fake, req, owned=True)
    changed, _ = _request(tmp_path, parameters={"Size": "2"})
    assert cfn.launch(ctx, fake, changed, owned=True).status == "UPDATE_COMPLETE"
    back, _ = _request(tmp_path)  # Size left out: it keeps its current value, nothing to update
    assert cfn.launch(ctx, fake, back, owned=True).status == "UPDATE_COMPLETE"
    assert fake.calls.count("update") == 1
    assert fake.describe(req.name).parameters["Size"] == "2"
    again, _ = _request(tmp_path, parameters={"Size": "3"})
    fake.no_updates = True  # CloudFormation's own "nothing to do" counts as success
    assert cfn.launch(ctx, fake, again, owned=True).status == "UPDATE_COMPLETE"
    assert fake.calls.count("update") == 2


def test_launch_recreates_after_rollback_complete_and_names_the_failure(tmp_path):
    req, ctx = _request(tmp_path)
    fake = FakeCfn(fail_create=1)
    with pytest.raises(OperationFailed) as err:
        cfn.launch(ctx, fake, req, owned=True)
    assert "ROLLBACK_COMPLETE" in str(err.value)
    assert "DB (AWS::RDS::DBInstance): Engine nope not supported" in str(err.value)
    stack = cfn.launch(ctx, fake, req, owned=True)
    assert stack.status == "CREATE_COMPLETE"
    assert fake.calls.count("delete") == 1 and fake.calls.count("create") == 2


def test_launch_refuses_a_stack_that_needs_a_human(tmp_path):
    req, ctx = _request(tmp_path)
    fake = FakeCfn()
    cfn.launch(ctx, fake, req, owned=True)
    fake.force(req.name, "UPDATE_ROLLBACK_FAILED")
    with pytest.raises(OperationFailed, match="a previous operation on stack acme-web-drill-ab12"):
        cfn.launch(ctx, fake, req, owned=True)
