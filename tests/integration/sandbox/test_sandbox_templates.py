"""AWS's own sample templates (the shared fixtures, unchanged) as stacks in the patched sandbox
(`EmbeddedAws`), in us-west-2: created, waited for, listed, deleted, and what is left afterwards.

What moto still cannot do with them is asserted here too, so that it is visible (and so that this
file fails, and gets updated, when a moto release or a new fidelity patch changes it):

- AWS::SecretsManager::Secret, AWS::AutoScaling::ScalingPolicy and AWS::CloudWatch::Alarm have no
  moto CloudFormation model: the stack completes without them, `!Ref` to them resolves to nothing
  (an output built from one is dropped), and DescribeStackResources lists each as an entry with no
  LogicalResourceId, type or physical id. A resource whose Condition is false is listed the same way
  (AWS lists neither).
- `{{resolve:secretsmanager:...}}` dynamic references are not resolved (moto has no resolver).
- A CreationPolicy (ResourceSignal) is not waited for: nothing signals in the sandbox, and the stack
  completes at once, where AWS would wait for cfn-signal and time out after PT5M.
"""

from __future__ import annotations

import base64
import re
import urllib.request

import boto3
import pytest
from botocore.config import Config

from dr.sandbox.server import EmbeddedAws
from tests.conftest import fixtures_dir

pytestmark = pytest.mark.integration

if fixtures_dir() is None:
    pytest.skip("the shared fixtures (../shared/fixtures or $DR_FIXTURES) are absent", allow_module_level=True)

REGION = "us-west-2"
NO_RETRIES = Config(retries={"max_attempts": 1})
FAST = {"Delay": 1, "MaxAttempts": 30}


def template(name: str) -> str:
    base = fixtures_dir()
    path = base / "cloudformation" / name if base else None
    if path is None or not path.is_file():
        pytest.skip(f"the shared fixture cloudformation/{name} is absent (../shared/fixtures or $DR_FIXTURES)")
    return path.read_text()


@pytest.fixture(scope="module")
def sandbox_server():
    with EmbeddedAws() as aws:
        yield aws.endpoint


@pytest.fixture
def aws(sandbox_server):
    urllib.request.urlopen(urllib.request.Request(f"{sandbox_server}/moto-api/reset", method="POST"),
                           timeout=10)

    def make(service):
        return boto3.client(service, region_name=REGION, endpoint_url=sandbox_server, config=NO_RETRIES)
    return make


def params(**values):
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def as_dict(tags) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def launch(aws, name: str, body: str, **parameters) -> tuple[dict, list[dict]]:
    """CreateStack, wait for CREATE_COMPLETE; the stack and its resources."""
    cfn = aws("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=body, Parameters=params(**parameters))
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=FAST)
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    return stack, cfn.describe_stack_resources(StackName=name)["StackResources"]


def delete(aws, stack: dict) -> None:
    cfn = aws("cloudformation")
    cfn.delete_stack(StackName=stack["StackName"])
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack["StackId"], WaiterConfig=FAST)


def by_logical_id(resources: list[dict]) -> dict[str, dict]:
    return {r["LogicalResourceId"]: r for r in resources if "LogicalResourceId" in r}


def unlisted(resources: list[dict]) -> int:
    """Entries moto lists for resources it did not create (no model, or a false Condition)."""
    return sum(1 for r in resources if "LogicalResourceId" not in r)


def network(aws) -> tuple[str, list[str]]:
    """A VPC of our own with a subnet in each of two zones, and a key pair."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for i, zone in enumerate("ab")]
    ec2.create_key_pair(KeyName="acme-usw2")
    return vpc, subnets


# --- RDS_MySQL_With_Read_Replica --------------------------------------------------------------------


def test_rds_mysql_with_read_replica(aws):
    stack, resources = launch(aws, "rds-replica", template("RDS_MySQL_With_Read_Replica.yaml"),
                              DBUser="admin", DBInstanceClass="db.t3.micro")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    listed = by_logical_id(resources)
    assert {k: v["ResourceType"] for k, v in listed.items()} == {
        "MainDB": "AWS::RDS::DBInstance", "ReplicaDB": "AWS::RDS::DBInstance"}
    assert {v["ResourceStatus"] for v in listed.values()} == {"CREATE_COMPLETE"}
    # DBCredential (AWS::SecretsManager::Secret: no moto model) and DBEC2SecurityGroup (Condition
    # IsEC2VPC is false in us-west-2) are listed as two empty entries
    assert unlisted(resources) == 2
    main, replica = listed["MainDB"]["PhysicalResourceId"], listed["ReplicaDB"]["PhysicalResourceId"]
    rds = aws("rds")
    dbs = {d["DBInstanceIdentifier"]: d for d in rds.describe_db_instances()["DBInstances"]}
    assert set(dbs) == {main, replica}
    assert dbs[replica]["ReadReplicaSourceDBInstanceIdentifier"] == main
    assert dbs[main]["ReadReplicaDBInstanceIdentifiers"] == [replica]
    assert dbs[main]["Engine"] == "mysql" and dbs[main]["DBName"] == "MyDatabase"
    assert as_dict(dbs[main]["TagList"])["aws:cloudformation:logical-id"] == "MainDB"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["JDBCConnectionString"] == f"jdbc:mysql://{dbs[main]['Endpoint']['Address']}:3306/MyDatabase"
    assert "DBCredentialSecretNameArn" not in outputs  # !Ref DBCredential: nothing to refer to

    delete(aws, stack)
    left = rds.describe_db_instances()["DBInstances"]
    assert [d["DBInstanceIdentifier"] for d in left] == [replica]  # DeletionPolicy: Retain
    assert "ReadReplicaSourceDBInstanceIdentifier" not in left[0]  # promoted when its source went
    (snapshot,) = rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]  # DeletionPolicy: Snapshot
    assert re.fullmatch(r"rds-replica-snapshot-maindb-[a-z0-9]{12}", snapshot["DBSnapshotIdentifier"])
    assert snapshot["DBInstanceIdentifier"] == main
    tags = as_dict(snapshot["TagList"])
    assert tags["aws:cloudformation:stack-id"] == stack["StackId"]
    assert tags["aws:cloudformation:logical-id"] == "MainDB" and tags["Name"] == "Master Database"


# --- WordPress_Multi_AZ ------------------------------------------------------------------------------


def test_wordpress_multi_az(aws):
    vpc, subnets = network(aws)
    stack, resources = launch(aws, "wordpress", template("WordPress_Multi_AZ.yaml"), VpcId=vpc,
                              Subnets=",".join(subnets), KeyName="acme-usw2", DBUser="wpadmin",
                              DBPassword="sandboxpassword1", InstanceType="t2.micro")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    listed = by_logical_id(resources)
    assert {k: v["ResourceType"] for k, v in listed.items()} == {
        "ApplicationLoadBalancer": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "ALBListener": "AWS::ElasticLoadBalancingV2::Listener",
        "ALBTargetGroup": "AWS::ElasticLoadBalancingV2::TargetGroup",
        "ALBSecurityGroup": "AWS::EC2::SecurityGroup", "WebServerSecurityGroup": "AWS::EC2::SecurityGroup",
        "DBEC2SecurityGroup": "AWS::EC2::SecurityGroup",
        "WebServerGroup": "AWS::AutoScaling::AutoScalingGroup",
        "LaunchConfig": "AWS::AutoScaling::LaunchConfiguration", "DBInstance": "AWS::RDS::DBInstance"}
    assert unlisted(resources) == 0
    rds = aws("rds")
    (db,) = rds.describe_db_instances()["DBInstances"]
    assert db["DBInstanceIdentifier"] == listed["DBInstance"]["PhysicalResourceId"]
    assert db["Engine"] == "mysql" and db["MultiAZ"] is True  # MultiAZDatabase defaults to "true"
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [
        listed["DBEC2SecurityGroup"]["PhysicalResourceId"]]
    (group,) = aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert set(group["VPCZoneIdentifier"].split(",")) == set(subnets)
    (url,) = [o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "WebsiteURL"]
    assert url.startswith("http://wordpress-") and url.endswith(".us-west-2.elb.amazonaws.com/wordpress")

    delete(aws, stack)
    assert rds.describe_db_instances()["DBInstances"] == []
    # DBInstance has no DeletionPolicy. AWS's documented default for an instance outside a cluster
    # is Snapshot (a final snapshot would be left); the sandbox deliberately deletes without one.
    assert rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"] == []
    assert aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert aws("elbv2").describe_load_balancers()["LoadBalancers"] == []


# --- AutoScalingMultiAZWithNotifications -------------------------------------------------------------


def test_autoscaling_multi_az_with_notifications(aws):
    vpc, subnets = network(aws)
    group = aws("ec2").create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    key = aws("kms").create_key()["KeyMetadata"]["Arn"]
    certificate = aws("acm").request_certificate(DomainName="www.example.com")["CertificateArn"]
    stack, resources = launch(
        aws, "autoscaling", template("AutoScalingMultiAZWithNotifications.yaml"), OperatorEMail="ops@example.com",
        KeyName="acme-usw2", KmsKeyArn=key, CertificateArn=certificate, SecurityGroups=group,
        Subnets=",".join(subnets), AZs=f"{REGION}a,{REGION}b", VPC=vpc)
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    listed = by_logical_id(resources)
    assert {k: v["ResourceType"] for k, v in listed.items()} == {
        "NotificationTopic": "AWS::SNS::Topic", "LaunchTemplate": "AWS::EC2::LaunchTemplate",
        "WebServerGroup": "AWS::AutoScaling::AutoScalingGroup",
        "ElasticLoadBalancer": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "LoadBalancerListener": "AWS::ElasticLoadBalancingV2::Listener",
        "TargetGroup": "AWS::ElasticLoadBalancingV2::TargetGroup",
        "LoadBalancerSecurityGroup": "AWS::EC2::SecurityGroup", "InstanceSecurityGroup": "AWS::EC2::SecurityGroup"}
    # WebServerScaleUpPolicy, WebServerScaleDownPolicy (AWS::AutoScaling::ScalingPolicy) and
    # CPUAlarmHigh, CPUAlarmLow (AWS::CloudWatch::Alarm): no moto model, four empty entries
    assert unlisted(resources) == 4
    ec2 = aws("ec2")
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=listed["LaunchTemplate"]["PhysicalResourceId"])["LaunchTemplateVersions"]
    assert version["LaunchTemplateName"] == "autoscaling-LaunchTemplate"
    user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
    assert "cfn-init -v --stack autoscaling --resource LaunchTemplate --region us-west-2" in user_data
    (asg,) = aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert asg["LaunchTemplate"]["LaunchTemplateId"] == listed["LaunchTemplate"]["PhysicalResourceId"]
    assert len(asg["Instances"]) == 1 and set(asg["VPCZoneIdentifier"].split(",")) == set(subnets)
    (url,) = [o["OutputValue"] for o in stack["Outputs"]]
    assert url.startswith("https://autoscaling-") and url.endswith(".us-west-2.elb.amazonaws.com")

    delete(aws, stack)
    assert aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert aws("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert aws("rds").describe_db_instances()["DBInstances"] == []
