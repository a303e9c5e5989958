"""The AWS step types against the sandbox users run (EmbeddedAws: moto plus dr's fidelity patches).

The seeded demo world gets its DR copies from `run_backup`; the steps then restore, launch the
real-world LAMP template unchanged, adopt what a crashed attempt left, and tear down.
"""

from __future__ import annotations

import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from dr.aws import AwsSession
from dr.backup.service import run_backup
from dr.clock import Clock, FixedClock
from dr.config import load_config
from dr.context import make_context
from dr.errors import OperationFailed
from dr.runbook.steps.rds_restore import RdsRestore
from dr.runbook.steps.readiness import Readiness
from dr.runbook.steps.stack import StackLaunch
from dr.runbook.steps.teardown import Teardown
from dr.runbook.steps.base import AbortRun, StepContext
from dr.sandbox import world as W
from dr.sandbox.server import EmbeddedAws
from dr.state.local import LocalStore
from tests.conftest import fixtures_dir
from tests.support.step_calls import AsRun

pytestmark = pytest.mark.integration

DR = W.DR
RUN = "drill-20261126T120000Z-ab12"
OTHER_RUN = "drill-20261126T110000Z-cd34"
ZONE = "example.com."


def wordpress() -> Path:
    base = fixtures_dir()
    path = base / "cloudformation" / "WordPress_Multi_AZ.yaml" if base else None
    if path is None or not path.is_file():
        pytest.skip("the shared fixture cloudformation/WordPress_Multi_AZ.yaml is absent "
                    "(../shared/fixtures or $DR_FIXTURES)")
    return path


@pytest.fixture(scope="module")
def sandbox():
    with EmbeddedAws() as aws:
        yield aws.endpoint


@dataclass
class Sandbox:
    endpoint: str
    tmp: Path
    vpc: str
    subnets: list[str]
    ledgers: dict = field(default_factory=dict)

    def client(self, service: str, region: str = DR):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint)

    def config(self, extra: str = ""):
        """The demo world's dr.yaml plus `extra` sections."""
        path = self.tmp / "dr.yaml"
        failover = "stack:" not in extra and "dns:" not in extra
        path.write_text(W.config_text(self.endpoint, self.tmp / "state", failover=failover) + extra)
        return load_config(path)

    def wordpress(self, extra: str = ""):
        """dr.yaml with the LAMP stack: production parameters, and the DR network in dr_parameters."""
        return self.config(f"""\
stack:
  name: acme-web
  template: {wordpress()}
  parameters: {{DBUser: admin, DBPassword: sandboxpassword1, MultiAZDatabase: "false"}}
  dr_parameters: {{KeyName: acme-usw2, VpcId: {self.vpc}, Subnets: "{','.join(self.subnets)}"}}
""" + extra)

    def ctx(self, config, run_id: str = RUN, drill: bool = True, clock=None, step_id: str = "s",
            logs: list | None = None) -> StepContext:
        """A step context of run `run_id`; its ledger (what the run created) is kept per run id
        across contexts, as the journal keeps it across steps and sessions."""
        ledger = self.ledgers.setdefault(run_id, [])
        return StepContext(run_id=run_id, step_id=step_id, config=config,
                           session=AwsSession(endpoint_url=self.endpoint), clock=clock or Clock(),
                           cancel=threading.Event(), store=LocalStore(self.tmp / "state"), drill=drill,
                           region=DR, log=(logs.append if logs is not None else lambda m: None),
                           record_created=ledger.append, ledger=lambda: list(ledger))

    def lamp(self, extra: str = ""):
        """dr.yaml with the sandbox's LAMP web tier, which runs on the restored database."""
        return self.config(f"""stack:
  name: acme-web
  template: {W.TEMPLATE}
  parameters: {{InstanceType: t3.small}}
  snapshot_parameter: DBSnapshotIdentifier
""" + extra)

    def backup(self, config) -> None:
        record = run_backup(make_context(config)).record
        assert record.status == "completed", record.to_dict()


@pytest.fixture
def sb(sandbox, tmp_path) -> Sandbox:
    urllib.request.urlopen(urllib.request.Request(f"{sandbox}/moto-api/reset", method="POST"), timeout=10)
    W.seed(AwsSession(endpoint_url=sandbox))
    ec2 = boto3.client("ec2", region_name=DR, endpoint_url=sandbox)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    ec2.create_key_pair(KeyName="acme-usw2")
    return Sandbox(sandbox, tmp_path, vpc, subnets)


def instances(sb: Sandbox) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in sb.client("rds").describe_db_instances()["DBInstances"])


def live_stacks(sb: Sandbox) -> list[str]:
    return [s["StackName"] for s in sb.client("cloudformation").describe_stacks()["Stacks"]
            if s["StackStatus"] != "DELETE_COMPLETE"]


# --- readiness ----------------------------------------------------------------------------------------


def _zone(sb: Sandbox) -> None:
    sb.client("route53", "us-east-1").create_hosted_zone(Name=ZONE, CallerReference="dr-test")


DNS = f"dns: {{provider: route53, zone: {ZONE}, record: www.{ZONE}}}\n"


def _www(sb: Sandbox) -> None:
    r53 = sb.client("route53", "us-east-1")
    zone_id = r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"]
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": f"www.{ZONE}", "Type": "CNAME", "TTL": 300,
                                                  "ResourceRecords": [{"Value": "lb.example.net"}]}}]})


def test_readiness_passes_when_the_dr_region_can_take_over(sb):
    config = sb.lamp(DNS)
    sb.backup(config)
    _zone(sb)
    _www(sb)
    out = AsRun(Readiness).execute({}, sb.ctx(config))
    names = {c["name"]: c["ok"] for c in out["checks"]}
    assert names == {"dr-key": True, "rds:app-db:copy": True, "rds:aurora:copy": True, "template": True,
                     "template:region-mappings": True, "template:parameters": True,
                     "template:restored-data": True, "dns:read": True, "dns:record": True,
                     "dns:routing:simple": True}, out["checks"]
    assert 0 <= out["newest_copy_age_seconds"] < 60 and out["newest_copy_time"]


def test_readiness_refuses_a_template_that_would_not_run_on_the_restored_data(sb):
    config = sb.wordpress(DNS)  # AWS's WordPress sample creates its own empty database
    sb.backup(config)
    _zone(sb)
    _www(sb)
    with pytest.raises(AbortRun) as err:
        AsRun(Readiness).execute({}, sb.ctx(config))
    assert ("template:restored-data: WordPress_Multi_AZ.yaml creates its own database (DBInstance "
            "(AWS::RDS::DBInstance)) and dr.yaml sets no stack.snapshot_parameter") in str(err.value)


def test_readiness_names_every_failing_check(sb):
    template = sb.tmp / "regional.yaml"
    template.write_text("Mappings:\n  AWSRegionArch2AMI:\n    us-east-1: {HVM64: ami-1}\n"
                        "Resources:\n  Topic: {Type: 'AWS::SNS::Topic'}\n")
    config = sb.config(f"stack: {{name: acme-web, template: {template}}}\n" + DNS)  # no copies, no zone
    with pytest.raises(AbortRun) as err:
        AsRun(Readiness).execute({}, sb.ctx(config))
    text = str(err.value)
    assert "rds:app-db:copy: no available copy of app-db" in text
    assert "mapping AWSRegionArch2AMI in regional.yaml has no entry for us-west-2" in text
    assert f"dns:read: read the Route 53 hosted zone {ZONE}: Route 53 has no hosted zone {ZONE}" in text
    assert "dr-key" not in text  # the key is fine


def test_readiness_refuses_a_stale_copy_unless_data_loss_is_accepted(sb):
    config = sb.config()
    sb.backup(config)
    later = FixedClock(Clock().now() + timedelta(hours=2))
    with pytest.raises(AbortRun, match=r"rds:app-db:copy: newest copy dr-app-db-\S+ holds data from 2h"):
        AsRun(Readiness).execute({}, sb.ctx(config, clock=later))
    out = AsRun(Readiness).execute({"accept_data_loss": True, "resources": ["app-db"]}, sb.ctx(config, clock=later))
    (copy,) = [c for c in out["checks"] if c["name"] == "rds:app-db:copy"]
    assert "data loss accepted" in copy["detail"] and out["newest_copy_age_seconds"] >= 7200


# --- rds.restore --------------------------------------------------------------------------------------


def test_restore_instance_from_the_newest_dr_copy(sb):
    config = sb.config()
    sb.backup(config)
    ctx = sb.ctx(config)
    out = RdsRestore().execute({"resource": "app-db", "instance_class": "db.t3.small"}, ctx)
    assert out["identifier"] == "acme-prod-db-dr-drill-ab12"
    assert out["engine"] == "mysql" and out["port"] == 3306 and out["endpoint"]
    rds = sb.client("rds")
    (copy,) = rds.describe_db_snapshots(DBInstanceIdentifier=W.INSTANCE, SnapshotType="manual")["DBSnapshots"]
    assert out["snapshot_id"] == copy["DBSnapshotIdentifier"]
    source_time = sb.client("rds", "us-east-1").describe_db_snapshots(
        DBSnapshotIdentifier=copy["DBSnapshotIdentifier"])["DBSnapshots"][0]["SnapshotCreateTime"]
    assert out["snapshot_time"] == source_time.isoformat()  # when the data was captured, not copied
    (db,) = rds.describe_db_instances(DBInstanceIdentifier=out["identifier"])["DBInstances"]
    assert db["DBInstanceClass"] == "db.t3.small" and db["KmsKeyId"] == copy["KmsKeyId"]
    tags = {t["Key"]: t["Value"] for t in db["TagList"]}
    assert tags["dr:run"] == RUN and tags["dr:restored-from"] == out["snapshot_id"]
    assert RdsRestore().check({"resource": "app-db"}, ctx) == out


def test_restore_resumes_without_a_second_database_and_never_adopts_a_foreign_one(sb):
    config = sb.config()
    sb.backup(config)
    params = {"resource": "app-db"}
    first = RdsRestore().execute(params, sb.ctx(config))
    logs: list[str] = []
    again = RdsRestore().execute(params, sb.ctx(config, logs=logs))  # a retry after a crash
    assert again == first and "was started by this run" in logs[0]
    assert instances(sb) == ["acme-prod-db-dr-drill-ab12"]
    assert RdsRestore().check(params, sb.ctx(config, run_id=OTHER_RUN)) is None
    with pytest.raises(AbortRun) as err:
        RdsRestore().execute({**params, "identifier": first["identifier"]}, sb.ctx(config, run_id=OTHER_RUN))
    assert f"already exists in us-west-2: it was made by run {RUN}" in str(err.value)
    assert err.value.hint == f"resume that run instead, which adopts what it made: dr drill --resume {RUN}"
    assert "delete" not in str(err.value)  # never advice to delete a restored database
    with pytest.raises(OperationFailed, match="not deleting DB instance acme-prod-db-dr-drill-ab12 in "
                                              "us-west-2: this run's journal does not record creating it"):
        RdsRestore().teardown(params, first, sb.ctx(config, run_id=OTHER_RUN))  # not its to delete
    assert instances(sb) == ["acme-prod-db-dr-drill-ab12"]
    RdsRestore().teardown(params, first, sb.ctx(config))
    assert instances(sb) == []
    RdsRestore().teardown(params, first, sb.ctx(config))  # gone already: fine


def test_restore_aurora_cluster_with_a_writer_then_teardown(sb):
    config = sb.config()
    sb.backup(config)
    params = {"resource": "aurora", "instance_class": "db.r6g.large"}
    ctx = sb.ctx(config)
    out = RdsRestore().execute(params, ctx)
    assert out["identifier"] == "acme-aurora-dr-drill-ab12" and out["engine"] == "aurora-mysql"
    (cluster,) = sb.client("rds").describe_db_clusters(DBClusterIdentifier=out["identifier"])["DBClusters"]
    assert [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]] == ["acme-aurora-dr-drill-ab12-1"]
    assert RdsRestore().check(params, ctx) == out
    RdsRestore().teardown(params, out, ctx)
    assert sb.client("rds").describe_db_clusters()["DBClusters"] == []
    assert instances(sb) == []


class PrimaryDown(AwsSession):
    """The primary region's APIs do not answer (the disaster a failover is for); Route 53 is
    global (its client is merely signed for us-east-1)."""

    def client(self, service: str, region: str):
        if region == W.PRIMARY and service != "route53":
            raise AssertionError(f"asked {service} in the dead primary region")
        return super().client(service, region)


def test_readiness_and_restore_never_ask_the_dead_primary_region(sb):
    config = sb.config(DNS)
    sb.backup(config)
    _zone(sb)
    ctx = sb.ctx(config, drill=False)
    ctx.session = PrimaryDown(endpoint_url=sb.endpoint)
    assert all(c["ok"] for c in AsRun(Readiness).execute({}, ctx)["checks"])
    assert RdsRestore().execute({"resource": "app-db"}, ctx)["identifier"] == "acme-prod-db-dr"


def test_restore_a_chosen_snapshot_or_fail_clearly(sb):
    config = sb.config()
    with pytest.raises(OperationFailed, match="no available copy of app-db .* in us-west-2"):
        RdsRestore().execute({"resource": "app-db"}, sb.ctx(config))
    with pytest.raises(OperationFailed, match="snapshot nope .* not found in us-west-2"):
        RdsRestore().execute({"resource": "app-db", "snapshot": "nope"}, sb.ctx(config))
    sb.backup(config)
    (copy,) = sb.client("rds").describe_db_snapshots(DBInstanceIdentifier=W.INSTANCE)["DBSnapshots"]
    out = RdsRestore().execute({"resource": "app-db", "snapshot": copy["DBSnapshotIdentifier"],
                                "identifier": "restored-by-hand"}, sb.ctx(config, drill=False))
    assert out["identifier"] == "restored-by-hand" and out["snapshot_id"] == copy["DBSnapshotIdentifier"]


# --- stack.launch: the real-world LAMP template, unchanged ------------------------------------------


def test_wordpress_launches_in_the_dr_region_relaunches_idempotently_and_tears_down(sb):
    config = sb.wordpress()
    ctx = sb.ctx(config)
    step = StackLaunch()
    assert step.validate({}, config) == []
    out = step.execute({}, ctx)
    cfn = sb.client("cloudformation")
    (stack,) = cfn.describe_stacks(StackName="acme-web-drill-ab12")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert out["WebsiteURL"].startswith("http://") and out["WebsiteURL"].endswith("/wordpress")
    assert out["outputs"] == {"WebsiteURL": out["WebsiteURL"]} and out["stack_id"] == stack["StackId"]
    assert {t["Key"]: t["Value"] for t in stack["Tags"]}["dr:run"] == RUN
    (db,) = [d for d in sb.client("rds").describe_db_instances()["DBInstances"]
             if d["DBInstanceIdentifier"].startswith("acme-web-drill-ab12-dbinstance")]
    assert db["Engine"] == "mysql" and db["VpcSecurityGroups"]  # Engine: MySQL; VPCSecurityGroups
    assert step.check({}, ctx) == out

    logs: list[str] = []
    assert step.execute({}, sb.ctx(config, logs=logs)) == out  # nothing changed: no update
    assert any("nothing to update" in m for m in logs)
    more = step.execute({"parameters": {"WebServerCapacity": 2}}, ctx)
    assert cfn.describe_stacks(StackName=more["stack_id"])["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"

    with pytest.raises(OperationFailed, match="not deleting stack acme-web-drill-ab12"):
        step.teardown({}, out, sb.ctx(config, run_id=OTHER_RUN))  # another run's teardown: refused
    assert live_stacks(sb) == ["acme-web-drill-ab12"]
    step.teardown({}, out, ctx)
    assert live_stacks(sb) == []
    assert step.check({}, ctx) is None


FAILING = """\
Parameters:
  Engine: {Type: String}
Resources:
  DB:
    Type: AWS::RDS::DBInstance
    Properties: {Engine: !Ref Engine, DBInstanceClass: db.t3.micro, AllocatedStorage: 5,
                 MasterUsername: admin, MasterUserPassword: sandboxpassword1}
Outputs:
  Host: {Value: !GetAtt DB.Endpoint.Address}
"""


def test_a_failed_launch_names_the_resource_and_the_next_one_recreates_the_stack(sb):
    template = sb.tmp / "db.yaml"
    template.write_text(FAILING)
    config = sb.config(f"stack: {{name: acme-web, template: {template}, parameters: {{Engine: nosuchengine}}}}\n")
    ctx = sb.ctx(config, drill=False)
    with pytest.raises(OperationFailed) as err:
        StackLaunch().execute({}, ctx)
    assert "creating stack acme-web in us-west-2 ended in ROLLBACK_COMPLETE" in str(err.value)
    assert "DB (AWS::RDS::DBInstance): Value nosuchengine for parameter Engine is invalid" in str(err.value)
    logs: list[str] = []
    out = StackLaunch().execute({"parameters": {"Engine": "MySQL"}}, sb.ctx(config, drill=False, logs=logs))
    assert any("ROLLBACK_COMPLETE (a failed create): deleting it" in m for m in logs)
    assert out["Host"].endswith(".rds.amazonaws.com")


SNAPSHOT_TEMPLATE = """\
Parameters:
  DBSnapshotIdentifier: {Type: String}
Resources:
  DB:
    Type: AWS::RDS::DBInstance
    Properties: {DBSnapshotIdentifier: !Ref DBSnapshotIdentifier, DBInstanceClass: db.t3.small}
Outputs:
  Endpoint: {Value: !Sub "${DB.Endpoint.Address}:${DB.Endpoint.Port}"}
"""


def test_a_template_restores_its_database_from_the_snapshot_parameter(sb):
    template = sb.tmp / "restore.yaml"
    template.write_text(SNAPSHOT_TEMPLATE)
    config = sb.config(f"stack: {{name: acme-web, template: {template}, "
                       "snapshot_parameter: DBSnapshotIdentifier}\n")
    sb.backup(config)
    (copy,) = sb.client("rds").describe_db_snapshots(DBInstanceIdentifier=W.INSTANCE)["DBSnapshots"]
    assert StackLaunch().validate({"snapshot": "${steps.db.snapshot_id}"}, config) == []
    out = StackLaunch().execute({"snapshot": copy["DBSnapshotIdentifier"]}, sb.ctx(config))
    assert out["Endpoint"].endswith(":3306")
    (db,) = [d for d in sb.client("rds").describe_db_instances()["DBInstances"]
             if d["DBInstanceIdentifier"].startswith("acme-web-drill-ab12-db")]
    assert db["Engine"] == "mysql" and db["MasterUsername"] == "acme"  # from the snapshot
    assert db["StorageEncrypted"] is True and db["DBInstanceClass"] == "db.t3.small"


# --- teardown -----------------------------------------------------------------------------------------


def test_teardown_removes_everything_of_this_drill_and_nothing_else(sb):
    config = sb.lamp(DNS)
    sb.backup(config)
    _zone(sb)
    r53 = sb.client("route53", "us-east-1")
    zone_id = r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"][0]["Id"]
    ctx = sb.ctx(config)

    def record(name):
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "CNAME", "TTL": 60,
                                                      "ResourceRecords": [{"Value": "lb.example.net"}]}}]})

    ctx.created("dns-record", f"drill-ab12.{ZONE}", "global")  # as dns.flip does, before it writes
    record(f"drill-ab12.{ZONE}")
    record(f"www.{ZONE}")  # production
    record(f"drill-cd34.{ZONE}")  # another drill's

    def health_check(fqdn):
        return r53.create_health_check(CallerReference=fqdn, HealthCheckConfig={
            "Type": "HTTP", "FullyQualifiedDomainName": fqdn, "Port": 80, "ResourcePath": "/"})["HealthCheck"]["Id"]

    ctx.created("route53-health-check", "drill-ab12.example.com", "global")  # its caller reference
    drill_check, prod_check = health_check("drill-ab12.example.com"), health_check("www.example.com")
    db = RdsRestore().execute({"resource": "app-db"}, ctx)
    StackLaunch().execute({}, ctx)
    StackLaunch().execute({}, sb.ctx(config, run_id="failover-20261126T100000Z-ef56", drill=False))  # production
    rds = sb.client("rds")
    # named like this drill's, but nothing of this run made it: a teardown must not delete it
    rds.create_db_snapshot(DBInstanceIdentifier=db["identifier"], DBSnapshotIdentifier="acme-web-drill-ab12-decoy")

    before = AsRun(Teardown).execute({}, ctx)  # as the last DAG step: takes stock only
    kinds = sorted({f["kind"] for f in before["found"]})
    assert kinds == ["cloudformation-stack", "dns-record", "rds-instance", "rds-instance-snapshot",
                     "route53-health-check"]
    (decoy,) = [f for f in before["found"] if f["kind"] == "rds-instance-snapshot"]
    assert decoy["refused"] == "it looks like this drill's, but this run's journal does not record creating it"
    with pytest.raises(OperationFailed, match="drill drill-ab12 left billable resources behind: "
                                              "cloudformation-stack acme-web-drill-ab12"):
        AsRun(Teardown).execute({"at": "end", "delete": False}, ctx)
    with pytest.raises(OperationFailed) as err:
        AsRun(Teardown).teardown({}, before, ctx)  # the drill's teardown phase: sweep
    assert "rds-instance-snapshot acme-web-drill-ab12-decoy in us-west-2" in str(err.value)  # named, loudly
    assert "[not deleted: it looks like this drill's" in str(err.value)
    assert live_stacks(sb) == ["acme-web"]
    assert not any("drill-ab12" in i for i in instances(sb))
    assert [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
            if "drill" in s["DBSnapshotIdentifier"]] == ["acme-web-drill-ab12-decoy"]  # left alone
    assert len(rds.describe_db_snapshots(DBInstanceIdentifier=W.INSTANCE, SnapshotType="manual")["DBSnapshots"]) == 1
    names = {r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]}
    assert f"drill-ab12.{ZONE}" not in names and {f"www.{ZONE}", f"drill-cd34.{ZONE}"} <= names
    assert [c["Id"] for c in r53.list_health_checks()["HealthChecks"]] == [prod_check] != [drill_check]
    rds.delete_db_snapshot(DBSnapshotIdentifier="acme-web-drill-ab12-decoy")
    assert AsRun(Teardown).execute({"at": "end"}, ctx) == {"found": [], "left": [], "deleted": []}
    assert AsRun(Teardown).execute({}, sb.ctx(config, drill=False))["found"] == []  # not a drill: no-op


# --- through the engine: a drill of these steps, its teardown phase, --keep, a failure ----------------

DRILL = """\
version: 1
name: aws-drill
steps:
  - {id: ready, type: readiness, with: {resources: [app-db]}}
  - {id: db, type: rds.restore, with: {resource: "${config.rds.0.name}"}, needs: [ready]}
  - {id: stack, type: stack.launch, with: {snapshot: "${steps.db.snapshot_id}"}}
  - {id: cleanup, type: teardown, needs: [stack]}
  - {id: check-clean, type: teardown, with: {at: failure, delete: false}}
"""


def run_drill(sb: Sandbox, config, keep: bool = False, text: str = DRILL):
    from dr.runbook.engine import EngineContext, run_runbook
    from dr.runbook.loader import parse_runbook

    runbook = parse_runbook(text, "aws-drill.yaml", config)
    logs: list[str] = []
    ectx = EngineContext(config=config, session=AwsSession(endpoint_url=sb.endpoint),
                         store=LocalStore(sb.tmp / "state"), drill=True, keep=keep, log=logs.append)
    return run_runbook(runbook, ectx), logs


def test_a_drill_through_the_engine_leaves_nothing_behind(sb):
    config = sb.lamp()
    sb.backup(config)
    result, logs = run_drill(sb, config)
    assert result.status == "completed" and result.exit_code == 0, logs
    suffix = result.run_id.rsplit("-", 1)[-1]
    stack = result.steps["stack"].outputs
    assert stack["stack_name"] == f"acme-web-drill-{suffix}" and stack["WebsiteURL"]
    assert result.steps["db"].outputs["identifier"] == f"acme-prod-db-dr-drill-{suffix}"
    found = {f["kind"] for f in result.steps["cleanup"].outputs["found"]}
    assert {"cloudformation-stack", "rds-instance"} <= found
    assert {t.step: t.status for t in result.teardown} == {"cleanup": "completed", "stack": "completed",
                                                           "db": "completed"}
    assert live_stacks(sb) == [] and instances(sb) == []


def test_a_kept_drill_keeps_everything(sb):
    config = sb.lamp()
    sb.backup(config)
    result, _ = run_drill(sb, config, keep=True)
    suffix = result.run_id.rsplit("-", 1)[-1]
    assert result.status == "completed" and result.teardown == []
    assert live_stacks(sb) == [f"acme-web-drill-{suffix}"]
    assert f"acme-prod-db-dr-drill-{suffix}" in instances(sb)


def test_a_failed_drill_is_torn_down_and_checked(sb):
    template = sb.tmp / "db.yaml"
    template.write_text(FAILING)
    config = sb.config(f"stack: {{name: acme-web, template: {template}, parameters: {{Engine: nosuchengine}}}}\n")
    sb.backup(config)
    # the stack has a database of its own (which fails): it is not handed the restored snapshot
    # (and readiness would refuse it for that: this drill goes without, to fail at the launch)
    text = DRILL.replace('with: {snapshot: "${steps.db.snapshot_id}"}', "needs: [db]")
    text = text.replace("  - {id: ready, type: readiness, with: {resources: [app-db]}}\n", "")
    result, logs = run_drill(sb, config, text=text.replace(", needs: [ready]", ""))
    assert result.status == "failed" and result.exit_code == 1
    assert "DB (AWS::RDS::DBInstance)" in result.steps["stack"].error
    assert result.steps["cleanup"].status == "skipped"  # never started
    assert {t.step: t.status for t in result.teardown} == {"stack": "completed", "db": "completed"}
    (check,) = [h for h in result.hooks if h.id == "check-clean"]
    assert check.status == "completed", check.error  # nothing of the drill is left
    assert live_stacks(sb) == [] and not [i for i in instances(sb) if "drill" in i]
