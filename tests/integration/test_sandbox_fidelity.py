"""Each sandbox fidelity patch: plain moto (`python -m moto.server`) gets it wrong, the sandbox
(`EmbeddedAws`, `python -m dr.sandbox.server`) gets it right. When a moto release fixes one of
these upstream, its "plain" test fails: drop the patch then."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from dr.sandbox import fidelity
from dr.sandbox.server import EmbeddedAws
from tests.conftest import fixtures_dir

pytestmark = pytest.mark.integration

REGION = "us-west-2"
NO_RETRIES = Config(retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def sandbox_server():
    with EmbeddedAws() as aws:
        yield aws.endpoint


@pytest.fixture
def sandbox(sandbox_server):
    urllib.request.urlopen(urllib.request.Request(f"{sandbox_server}/moto-api/reset", method="POST"),
                           timeout=10)
    return sandbox_server


def clients(endpoint):
    def make(service):
        return boto3.client(service, region_name=REGION, endpoint_url=endpoint, config=NO_RETRIES)
    return make


def wordpress_text() -> str:
    base = fixtures_dir()
    path = base / "cloudformation" / "WordPress_Multi_AZ.yaml" if base else None
    if path is None or not path.is_file():
        pytest.skip("the shared fixture cloudformation/WordPress_Multi_AZ.yaml is absent "
                    "(../shared/fixtures or $DR_FIXTURES)")
    return path.read_text()


def params(**values):
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def stack_error(client, name, template, **parameters) -> str | None:
    """The CreateStack error message, or None if the call was accepted."""
    try:
        client.create_stack(StackName=name, TemplateBody=template, Parameters=params(**parameters))
    except ClientError as exc:
        return exc.response["Error"]["Message"]
    except ResponseParserError as exc:  # moto crashed: an HTML "500 Internal Server Error" page
        return f"500 Internal Server Error: {exc}"
    return None


# --- 1. engine names ----------------------------------------------------------------------------------


def create_mysql(rds, identifier="db1", engine="MySQL"):
    return rds.create_db_instance(DBInstanceIdentifier=identifier, Engine=engine, DBInstanceClass="db.t3.micro",
                                  AllocatedStorage=20, MasterUsername="admin",
                                  MasterUserPassword="sandboxpassword1")["DBInstance"]


def test_engine_names_plain_moto_refuses_mixed_case(endpoint):
    with pytest.raises(ClientError, match="Value MySQL for parameter Engine is invalid"):
        create_mysql(clients(endpoint)("rds"))


def test_engine_names_sandbox_accepts_any_case_and_stores_lowercase(sandbox):
    rds = clients(sandbox)("rds")
    assert create_mysql(rds)["Engine"] == "mysql"
    cluster = rds.create_db_cluster(DBClusterIdentifier="c1", Engine="Aurora-MySQL", MasterUsername="admin",
                                    MasterUserPassword="sandboxpassword1")["DBCluster"]
    assert cluster["Engine"] == "aurora-mysql"


# --- 2. GetAtt with a dotted attribute ----------------------------------------------------------------

DB = """\
  DB:
    Type: AWS::RDS::DBInstance
    Properties: {Engine: mysql, DBInstanceClass: db.t3.micro, AllocatedStorage: 5,
                 MasterUsername: admin, MasterUserPassword: sandboxpassword1}
"""
GETATT = "Resources:\n" + DB + """\
  Topic:
    Type: AWS::SNS::Topic
    Properties: {DisplayName: !Sub "db at ${DB.Endpoint.Address}"}
Outputs:
  Host: {Value: !GetAtt DB.Endpoint.Address}
  Port: {Value: !GetAtt [DB, Endpoint.Port]}
"""


def test_getatt_plain_moto_misreads_the_short_form(endpoint):
    error = stack_error(clients(endpoint)("cloudformation"), "s", GETATT)
    assert error and "Endpoint" in error and "Endpoint.Address" not in error


def test_getatt_sandbox_reads_the_attribute_after_the_first_dot(sandbox):
    cfn = clients(sandbox)("cloudformation")
    assert stack_error(cfn, "s", GETATT) is None
    (stack,) = cfn.describe_stacks(StackName="s")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["Host"].endswith(".rds.amazonaws.com") and outputs["Port"] == "3306"
    (topic,) = clients(sandbox)("sns").list_topics()["Topics"]
    attrs = clients(sandbox)("sns").get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]
    assert attrs["DisplayName"] == f"db at {outputs['Host']}"  # ${A.B.C} inside !Sub too


def test_split_getatt():
    assert fidelity.split_getatt("DB.Endpoint.Address") == ["DB", "Endpoint.Address"]
    assert fidelity.split_getatt(["DB", "Endpoint", "Port"]) == ["DB", "Endpoint.Port"]
    kept = ["DB", "Arn"]
    assert fidelity.split_getatt(kept) is kept


# --- 3. DBInstance from a snapshot, security groups, subnet group -------------------------------------

FROM_SNAPSHOT = """\
Parameters:
  Snapshot: {Type: String}
  Group: {Type: String}
Resources:
  DB:
    Type: AWS::RDS::DBInstance
    Properties:
      DBSnapshotIdentifier: !Ref Snapshot
      DBInstanceClass: db.t3.small
      DBSubnetGroupName: dr-private
      VPCSecurityGroups: [!Ref Group]
Outputs:
  Host: {Value: !GetAtt [DB, Endpoint.Address]}
"""


def _snapshot_world(endpoint):
    make = clients(endpoint)
    rds, ec2 = make("rds"), make("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName="dr-private", DBSubnetGroupDescription="dr",
                               SubnetIds=subnets[:2])
    create_mysql(rds, "prod", engine="mysql")
    rds.create_db_snapshot(DBInstanceIdentifier="prod", DBSnapshotIdentifier="snap-1")
    return rds, group


def test_snapshot_restore_plain_moto_ignores_the_snapshot(endpoint):
    rds, group = _snapshot_world(endpoint)
    cfn = clients(endpoint)("cloudformation")
    # DBSubnetGroupName as a name (how templates give it) crashes moto outright
    assert "500 Internal Server Error" in stack_error(cfn, "s", FROM_SNAPSHOT, Snapshot="snap-1", Group=group)
    # without it, the snapshot is ignored: there is no Engine, so moto refuses to make a new database
    template = FROM_SNAPSHOT.replace("      DBSubnetGroupName: dr-private\n", "").split("Outputs:")[0]
    assert "Engine" in stack_error(cfn, "s2", template, Snapshot="snap-1", Group=group)


def test_snapshot_restore_sandbox_restores_it_with_network_settings(sandbox):
    rds, group = _snapshot_world(sandbox)
    assert stack_error(clients(sandbox)("cloudformation"), "s", FROM_SNAPSHOT, Snapshot="snap-1", Group=group) is None
    (db,) = [d for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] != "prod"]
    assert db["Engine"] == "mysql" and db["MasterUsername"] == "admin"  # from the snapshot
    assert db["DBInstanceClass"] == "db.t3.small"
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "dr-private"
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [group]


WITH_GROUP = "Parameters:\n  Group: {Type: String}\nResources:\n" + DB.replace(
    "sandboxpassword1}", "sandboxpassword1,\n                 VPCSecurityGroups: [!Ref Group]}")


@pytest.mark.parametrize("server, expect_group", [("endpoint", False), ("sandbox", True)])
def test_vpc_security_groups_are_dropped_by_plain_moto_kept_by_the_sandbox(request, server, expect_group):
    endpoint = request.getfixturevalue(server)
    ec2 = clients(endpoint)("ec2")
    group = ec2.create_security_group(GroupName="db", Description="db",
                                      VpcId=ec2.describe_vpcs()["Vpcs"][0]["VpcId"])["GroupId"]
    assert stack_error(clients(endpoint)("cloudformation"), "s", WITH_GROUP, Group=group) is None
    (db,) = clients(endpoint)("rds").describe_db_instances()["DBInstances"]
    groups = [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]]
    assert (groups == [group]) is expect_group  # plain moto: the VPC's default group instead


# --- 4. ValidateTemplate -------------------------------------------------------------------------------

BROKEN = "Resources:\n  T:\n    Type: AWS::SNS::Topic\n    Properties: {NoSuchProperty: 1}\n"


def test_validate_plain_moto_rejects_a_sample_template_on_a_warning(endpoint):
    with pytest.raises(ClientError, match="Stack with id Mapping 'AWSInstanceType2NATArch' is defined but not used"):
        clients(endpoint)("cloudformation").validate_template(TemplateBody=wordpress_text())


def test_validate_sandbox_passes_warnings_and_still_reports_errors(sandbox):
    cfn = clients(sandbox)("cloudformation")
    reply = cfn.validate_template(TemplateBody=wordpress_text())
    assert reply["Description"].startswith("AWS CloudFormation Sample Template WordPress_Multi_AZ")
    with pytest.raises(ClientError, match="Template format error: .*NoSuchProperty"):
        cfn.validate_template(TemplateBody=BROKEN)


# --- 5. a resource that fails ---------------------------------------------------------------------------

BAD_ENGINE = "Resources:\n" + DB.replace("Engine: mysql", "Engine: nosuchengine")


def test_failure_plain_moto_leaves_the_stack_in_progress_with_no_event(endpoint):
    cfn = clients(endpoint)("cloudformation")
    assert "nosuchengine" in stack_error(cfn, "s", BAD_ENGINE)
    (stack,) = cfn.describe_stacks(StackName="s")["Stacks"]
    assert stack["StackStatus"] == "CREATE_IN_PROGRESS"


def test_failure_sandbox_rolls_back_with_the_reason_and_can_be_deleted(sandbox):
    cfn = clients(sandbox)("cloudformation")
    assert stack_error(cfn, "s", BAD_ENGINE) is None
    (stack,) = cfn.describe_stacks(StackName="s")["Stacks"]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE" and "Outputs" not in stack
    events = cfn.describe_stack_events(StackName="s")["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "DB" and failed["ResourceType"] == "AWS::RDS::DBInstance"
    assert "nosuchengine" in failed["ResourceStatusReason"]
    assert events[0]["ResourceStatus"] == "ROLLBACK_COMPLETE"
    assert cfn.describe_stack_resources(StackName="s")["StackResources"] == []
    cfn.delete_stack(StackName="s")
    assert stack_error(cfn, "s", BAD_ENGINE.replace("nosuchengine", "mysql")) is None
    assert cfn.describe_stacks(StackName="s")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


# --- 6. DescribeStacks parameters ----------------------------------------------------------------------

LISTS = """\
Parameters:
  Subnets: {Type: 'List<AWS::EC2::Subnet::Id>'}
  Secret: {Type: String, NoEcho: true}
Resources:
  T: {Type: AWS::SNS::Topic}
"""


def shown_parameters(endpoint):
    cfn = clients(endpoint)("cloudformation")
    assert stack_error(cfn, "s", LISTS, Subnets="subnet-1,subnet-2", Secret="hunter22") is None
    (stack,) = cfn.describe_stacks(StackName="s")["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_parameters_plain_moto_shows_a_python_list_and_the_secret(endpoint):
    assert shown_parameters(endpoint) == {"Subnets": "['subnet-1', 'subnet-2']", "Secret": "hunter22"}


def test_parameters_sandbox_shows_them_as_aws_does(sandbox):
    assert shown_parameters(sandbox) == {"Subnets": "subnet-1,subnet-2", "Secret": "****"}


# --- the real-world LAMP template, unchanged ------------------------------------------------------------


def launch_wordpress(endpoint):
    make = clients(endpoint)
    ec2 = make("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    ec2.create_key_pair(KeyName="acme-usw2")
    return stack_error(make("cloudformation"), "lamp", wordpress_text(), VpcId=vpc, Subnets=",".join(subnets[:2]),
                       KeyName="acme-usw2", DBUser="admin", DBPassword="sandboxpassword1")


def test_wordpress_plain_moto_cannot_launch_it(endpoint):
    assert "Value MySQL for parameter Engine is invalid" in launch_wordpress(endpoint)


def test_wordpress_sandbox_launches_it_unchanged(sandbox):
    assert launch_wordpress(sandbox) is None
    cfn = clients(sandbox)("cloudformation")
    (stack,) = cfn.describe_stacks(StackName="lamp")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    (url,) = [o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "WebsiteURL"]
    assert url.startswith("http://lamp-") and ".us-west-2.elb.amazonaws.com/wordpress" in url
    resources = {r["LogicalResourceId"]: r["ResourceStatus"]
                 for r in cfn.describe_stack_resources(StackName="lamp")["StackResources"]}
    assert set(resources) == {"ApplicationLoadBalancer", "ALBSecurityGroup", "ALBListener", "ALBTargetGroup",
                              "WebServerSecurityGroup", "WebServerGroup", "LaunchConfig",
                              "DBEC2SecurityGroup", "DBInstance"}
    assert set(resources.values()) == {"CREATE_COMPLETE"}
    (db,) = clients(sandbox)("rds").describe_db_instances()["DBInstances"]
    assert db["Engine"] == "mysql" and db["VpcSecurityGroups"]
    cfn.delete_stack(StackName="lamp")
    assert clients(sandbox)("rds").describe_db_instances()["DBInstances"] == []


# --- applying -------------------------------------------------------------------------------------------


def test_patches_are_documented_idempotent_and_applied_by_the_sandbox(sandbox):
    names = fidelity.apply()
    assert names == fidelity.apply() == fidelity.applied() == tuple(p.name for p in fidelity.PATCHES)
    for patch in fidelity.PATCHES:
        doc = patch.install.__doc__ or ""
        assert f"moto {fidelity.CHECKED_WITH_MOTO}" in doc.replace("\n", " "), patch.name
        assert patch.wrong and patch.right
    from moto.rds.models import DBInstance

    assert not hasattr(DBInstance.__init__.__wrapped__, "__wrapped__")  # wrapped once, not twice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_background_sandbox_process_is_patched_too():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dr.sandbox.server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
        assert create_mysql(clients(endpoint)("rds"))["Engine"] == "mysql"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- 7. Fn::GetAZs "" ----------------------------------------------------------------------------------

GETAZS = """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Select [0, !GetAZs ""]
"""


def first_az(endpoint) -> str:
    make = clients(endpoint)
    make("cloudformation").create_stack(StackName="azs", TemplateBody=GETAZS)
    (topic,) = make("sns").list_topics()["Topics"]
    return make("sns").get_topic_attributes(TopicArn=topic["TopicArn"])["Attributes"]["DisplayName"]


def test_getazs_plain_moto_answers_us_east_1_zones_everywhere(endpoint):
    assert REGION != "us-east-1" and first_az(endpoint) == "us-east-1a"


def test_getazs_sandbox_answers_the_stack_region_zones(sandbox):
    assert first_az(sandbox) == f"{REGION}a"
