"""dr/permissions.py and `dr permissions`: the least-privilege policy for what dr.yaml enables.

The last test runs the real commands (backup, list, verify, prune, readiness, report, schedule,
drill, failover) against the sandbox with every botocore call recorded, and checks that the
policy `dr permissions` prints allows each one: the code and the policy cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dr.cli as cli
from dr.config import parse_config
from dr.permissions import (FEATURES, SCOPES, STEP_SCOPES, account_of, diff_policies, features_for,
                            policy_actions, policy_for, render, runbook_step_types, step_types_for)
from dr.runbook.steps import REGISTRY
from dr.sandbox import world as W

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account

BASE = """\
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
"""


def cfg(extra: str = "state: {path: ./.dr-state}\n", base: str = BASE):
    return parse_config(base + extra, base_dir=REPO)


def demo():
    return parse_config(W.config_text("http://127.0.0.1:1", "/tmp/s"))


def statements(policy):
    return {s["Sid"]: s for s in policy["Statement"]}


def resources(statement):
    r = statement["Resource"]
    return [r] if isinstance(r, str) else r


def all_policies():
    full = cfg("""\
state: {bucket: acme-dr-state, prefix: dr}
rds:
  - {name: app-db, instance: acme-prod-db}
  - {name: orders, cluster: acme-aurora}
s3:
  - {name: assets, source: acme-assets, destination: acme-assets-dr, delete: mirror, prefix: uploads/}
mysql:
  - {name: lamp, host: 10.0.0.5, databases: [app], destination: "s3://acme-dr-backups/mysql/"}
notify: {sns_topic: "arn:aws:sns:us-west-2:111122223333:dr-alerts"}
""")
    yield "demo", policy_for(demo())
    yield "demo --all", policy_for(demo(), all_features=True)
    yield "full", policy_for(full)
    yield "full --account", policy_for(full, "999988887777")
    yield "minimal", policy_for(cfg())
    yield "minimal --all", policy_for(cfg(), all_features=True)


# --- the declarations ----------------------------------------------------------------------------


def test_no_policy_ever_allows_a_wildcard_action():
    for name, policy in all_policies():
        for action in policy_actions(policy):
            assert "*" not in action, f"{name}: {action}"
            assert ":" in action and action.split(":")[1], f"{name}: {action}"
        for s in policy["Statement"]:
            assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s, name


def test_resource_star_only_where_aws_has_no_resource_level_permissions():
    unscoped_ok = {
        "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusterSnapshots", "cloudformation:ValidateTemplate", "cloudformation:DescribeStacks",
        "route53:ListHostedZonesByName", "route53:ListHealthChecks", "route53:CreateHealthCheck",
    }
    for name, policy in all_policies():
        for s in policy["Statement"]:
            if "*" in resources(s):
                assert s["Sid"] == "NoResourceLevelPermissions", f"{name}: {s['Sid']}"
                assert set(s["Action"]) <= unscoped_ok, f"{name}: {set(s['Action']) - unscoped_ok}"


def test_every_step_type_action_has_a_scope():
    """A step type with a new IAM action fails here until dr/permissions.py places it."""
    for name, cls in REGISTRY.items():
        for action in cls.iam_actions:
            assert action in STEP_SCOPES, f"step type {name}: {action} has no scope in STEP_SCOPES"


def test_every_scope_is_known_and_used():
    used = {g.scope for grants in FEATURES.values() for g in grants}
    used |= {s for scopes in STEP_SCOPES.values() for s in scopes}
    assert used <= set(SCOPES)
    assert set(SCOPES) <= used, f"declared but unused scopes: {set(SCOPES) - used}"
    sids = [sid for sid, _ in SCOPES.values()]
    assert len(sids) == len(set(sids)) and all(sid.isalnum() for sid in sids)


def test_all_covers_every_declared_action():
    declared = {a for grants in FEATURES.values() for g in grants for a in g.actions}
    declared |= {a for cls in REGISTRY.values() for a in cls.iam_actions}
    assert declared <= policy_actions(policy_for(demo(), all_features=True))


def test_the_policy_is_stable_and_valid_json():
    first, second = render(policy_for(demo())), render(policy_for(demo()))
    assert first == second and json.loads(first)["Version"] == "2012-10-17"


def test_policies_fit_an_inline_role_policy():
    for name, policy in all_policies():
        assert len(json.dumps(policy, separators=(",", ":"))) <= 10240, name


# --- which features a config enables ------------------------------------------------------------


def test_a_minimal_config_needs_only_the_dr_key():
    policy = policy_for(cfg())
    assert features_for(cfg()) == ["dr-key"]
    assert policy_actions(policy) == {"kms:DescribeKey"}


def test_features_follow_the_config():
    config = cfg("""\
state: {bucket: acme-dr-state}
rds: [{name: app-db, instance: acme-prod-db}]
mysql:
  - {name: lamp, host: 10.0.0.5, databases: [app], destination: "file:///var/backups/dr", key_file: /k}
""")
    assert features_for(config) == ["dr-key", "state-s3", "rds-instance"]
    actions = policy_actions(policy_for(config))
    assert "rds:CreateDBSnapshot" in actions and "rds:CreateDBClusterSnapshot" not in actions
    assert not any(a.startswith(("sns:", "cloudformation:", "route53:")) for a in actions)
    assert "s3:DeleteObject" in actions  # the state store deletes expired locks


def test_s3_mirror_alone_adds_delete_on_the_destination():
    keep = cfg("s3: [{name: a, source: src-b, destination: dst-b}]\nstate: {path: ./s}\n")
    mirror = cfg("s3: [{name: a, source: src-b, destination: dst-b, delete: mirror}]\nstate: {path: ./s}\n")
    assert "s3:DeleteObject" not in statements(policy_for(keep))["S3DestinationObjects"]["Action"]
    assert "s3:DeleteObject" in statements(policy_for(mirror))["S3DestinationObjects"]["Action"]
    assert not any(s["Sid"].startswith("S3Source") and "s3:DeleteObject" in s["Action"]
                   for s in policy_for(mirror)["Statement"])


def test_mysql_to_s3_uses_the_destination_prefix_and_the_envelope_context():
    policy = policy_for(cfg("""\
state: {path: ./s}
mysql: [{name: lamp, host: 10.0.0.5, databases: [app], destination: "s3://acme-dr-backups/mysql/lamp"}]
"""))
    s = statements(policy)
    assert s["BackupBuckets"]["Resource"] == "arn:aws:s3:::acme-dr-backups"
    assert s["BackupObjects"]["Resource"] == "arn:aws:s3:::acme-dr-backups/mysql/lamp/*"
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"} <= set(
        s["BackupObjects"]["Action"])
    envelope = s["DrKeyMysqlEnvelope"]
    assert set(envelope["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert envelope["Condition"]["StringEquals"] == {"kms:EncryptionContext:dr:kind": "mysql"}


def test_mysql_with_a_local_key_needs_no_envelope_permissions():
    config = cfg("""\
state: {path: ./s}
mysql: [{name: lamp, host: 10.0.0.5, databases: [app], destination: "s3://b-bucket/m/", key_file: /k}]
""")
    assert "DrKeyMysqlEnvelope" not in statements(policy_for(config))


def test_failover_step_types_come_with_a_stack_section():
    assert step_types_for(cfg()) == []
    types = step_types_for(demo())
    assert {"readiness", "rds.restore", "stack.launch", "dns.flip", "dns.restore", "teardown"} <= set(types)
    assert "mysql.restore" not in types  # the demo has no mysql entry


def test_notify_needs_a_topic():
    assert "SnsTopic" not in statements(policy_for(demo()))
    topic = "arn:aws:sns:us-west-2:111122223333:alerts"
    with_topic = parse_config(W.config_text("http://x:1", "/tmp/s") + f"notify: {{sns_topic: {topic}}}\n")
    assert statements(policy_for(with_topic))["SnsTopic"] == {
        "Sid": "SnsTopic", "Effect": "Allow", "Action": ["sns:Publish"], "Resource": topic}


def test_rfc2136_needs_no_route53_permissions():
    text = W.config_text("http://x:1", "/tmp/s").replace(
        "dns: {provider: route53, zone: acme.example., record: www.acme.example., ttl: 60}",
        "dns: {provider: rfc2136, zone: acme.example., record: www.acme.example., server: 192.0.2.53, "
        "tsig: {name: k, secret: {env: T}}}")
    assert "rfc2136" in text
    actions = policy_actions(policy_for(parse_config(text)))
    assert not any(a.startswith("route53:") for a in actions)
    assert "cloudformation:CreateStack" in actions


# --- resources and conditions -------------------------------------------------------------------


def test_the_demo_policy_scopes_every_resource_it_knows():
    s = statements(policy_for(demo(), ACCOUNT))
    assert s["S3SourceBuckets"]["Resource"] == "arn:aws:s3:::acme-assets"
    assert s["S3SourceObjects"]["Resource"] == "arn:aws:s3:::acme-assets/*"
    assert s["S3DestinationObjects"]["Resource"] == "arn:aws:s3:::acme-assets-dr/*"
    assert set(resources(s["RdsSources"])) == {f"arn:aws:rds:us-east-1:{ACCOUNT}:db:acme-prod-db",
                                               f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:acme-aurora"}
    assert f"arn:aws:rds:us-west-2:{ACCOUNT}:snapshot:dr-app-db-*" in resources(s["RdsSnapshots"])
    assert f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster-snapshot:dr-aurora-*" in resources(s["RdsSnapshots"])
    assert set(resources(s["CloudFormationStacks"])) == {
        f"arn:aws:cloudformation:{r}:{ACCOUNT}:stack/acme-web*/*" for r in ("us-east-1", "us-west-2")}
    names = s["Route53Records"]["Condition"]["ForAllValues:StringLike"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"]
    assert names == ["drill-*.acme.example", "www.acme.example"]
    assert all(":us-west-2:" in r for r in resources(s["RdsDrillDeletes"]))
    assert s["RdsDrillTaggedDeletes"]["Condition"] == {"StringEquals": {"aws:ResourceTag/dr:drill": "true"}}
    assert s["PassRoleToCloudFormation"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


def test_a_dr_key_alias_is_matched_by_condition():
    s = statements(policy_for(demo(), ACCOUNT))
    key = s["DrKey"]
    assert key["Resource"] == f"arn:aws:kms:us-west-2:{ACCOUNT}:key/*"
    assert key["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/dr-backups"}}
    assert s["DrKeyViaS3"]["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-west-2.amazonaws.com"}
    assert s["DrKeyGrantsForAwsServices"]["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    # keys dr never names, the sources' keys in the primary region: only through RDS or S3
    for sid in ("PrimaryKeysViaRds", "PrimaryKeyGrantsViaRds"):
        assert s[sid]["Resource"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"
        assert "kms:ViaService" in s[sid]["Condition"]["StringEquals"]


def test_a_dr_key_arn_or_id_is_the_resource_itself():
    arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    by_arn = parse_config(BASE.replace("alias/dr-backups", arn) + "state: {path: ./s}\n")
    key = statements(policy_for(by_arn))["DrKey"]
    assert key["Resource"] == arn and "Condition" not in key
    assert account_of(by_arn) == "111122223333"
    by_id = parse_config(BASE.replace("alias/dr-backups", "1234abcd-12ab-34cd-56ef-1234567890ab")
                         + "state: {path: ./s}\n")
    assert statements(policy_for(by_id, ACCOUNT))["DrKey"]["Resource"] == \
        f"arn:aws:kms:us-west-2:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    by_alias_arn = parse_config(BASE.replace("alias/dr-backups", "arn:aws:kms:us-west-2:111122223333:alias/dr")
                                + "state: {path: ./s}\n")
    key = statements(policy_for(by_alias_arn))["DrKey"]
    assert key["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"] == "alias/dr"


def test_the_account_comes_from_the_option_then_the_config_then_a_wildcard():
    assert statements(policy_for(demo()))["DrKey"]["Resource"] == "arn:aws:kms:us-west-2:*:key/*"
    assert statements(policy_for(demo(), "999988887777"))["DrKey"]["Resource"] == \
        "arn:aws:kms:us-west-2:999988887777:key/*"
    topic = parse_config(BASE + "state: {path: ./s}\nnotify: {sns_topic: arn:aws:sns:us-west-2:111122223333:t}\n")
    assert ":111122223333:" in statements(policy_for(topic))["DrKey"]["Resource"]
    from dr.errors import UsageError

    with pytest.raises(UsageError):
        policy_for(demo(), "12345")


def test_the_state_bucket_is_scoped_to_its_prefix():
    s = statements(policy_for(cfg("state: {bucket: acme-dr-state, prefix: /dr/x/}\n")))
    assert s["StateBucket"]["Resource"] == "arn:aws:s3:::acme-dr-state"
    assert s["StateObjects"]["Resource"] == "arn:aws:s3:::acme-dr-state/dr/x/*"
    assert set(s["StateObjects"]["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


def test_gov_and_china_partitions():
    gov = parse_config(BASE.replace("us-east-1", "us-gov-east-1").replace("us-west-2", "us-gov-west-1")
                       + "state: {bucket: b-state}\n")
    s = statements(policy_for(gov))
    assert s["StateBucket"]["Resource"] == "arn:aws-us-gov:s3:::b-state"
    assert s["DrKey"]["Resource"].startswith("arn:aws-us-gov:kms:us-gov-west-1:")


def test_runbook_step_types_are_read_from_a_runbook_file(tmp_path):
    assert runbook_step_types(REPO / "runbooks" / "failback.yaml") == sorted(
        {"notify", "readiness", "stack.launch", "http.wait_healthy", "dns.restore"})
    extra = policy_for(cfg(), step_types=["notify"])
    assert policy_actions(extra) == {"kms:DescribeKey"}  # no topic: nothing to publish to
    from dr.errors import ConfigError

    with pytest.raises(ConfigError):
        policy_for(cfg(), step_types=["no.such.type"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: nope\n")
    with pytest.raises(ConfigError):
        runbook_step_types(bad)


def test_diff_names_each_difference():
    a = policy_for(demo())
    b = json.loads(json.dumps(a))
    b["Statement"] = [s for s in b["Statement"] if s["Sid"] != "SnsTopic"]
    statements(b)["DrKey"]["Action"] = ["kms:DescribeKey"]
    b["Statement"].append({"Sid": "Extra", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "x"})
    lines = diff_policies(a, b)
    assert any(line.startswith("DrKey: actions missing ['kms:Encrypt']") for line in lines)
    assert any(line.startswith("Extra: in the file") for line in lines)
    assert diff_policies(a, a) == []


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def dr(monkeypatch, capsys):
    """`dr ...` (dr/cli/__init__.py registers the permissions command)."""
    def run(*argv):
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def demo_yaml(tmp_path):
    path = tmp_path / "dr.yaml"
    path.write_text(W.config_text("http://127.0.0.1:1", tmp_path / "state"))
    return path


def test_the_command_prints_only_the_policy(dr, demo_yaml):
    code, out, err = dr("--config", str(demo_yaml), "permissions")
    assert code == 0
    assert json.loads(out) == policy_for(demo()) and out == render(policy_for(demo()))
    code, out, err = dr("--output", "json", "--config", str(demo_yaml), "permissions", "--account", ACCOUNT)
    assert code == 0 and json.loads(out) == policy_for(demo(), ACCOUNT)
    code, out, err = dr("--config", str(demo_yaml), "permissions", "--all")
    assert code == 0 and json.loads(out) == policy_for(demo(), all_features=True)


def test_the_command_adds_a_runbooks_step_types(dr, tmp_path):
    path = tmp_path / "dr.yaml"
    path.write_text(BASE + "state: {path: ./s}\nnotify: {sns_topic: arn:aws:sns:us-west-2:111122223333:t}\n")
    runbook = tmp_path / "rb.yaml"
    runbook.write_text("version: 1\nname: x\nsteps:\n  - {id: a, type: notify, with: {message: hi}}\n")
    code, out, _ = dr("--config", str(path), "permissions")
    assert "sns:Publish" in policy_actions(json.loads(out))  # notify.sns_topic: the scheduler's alerts
    code, out, _ = dr("--config", str(path), "permissions", "--runbook", str(runbook))
    assert code == 0 and "sns:Publish" in policy_actions(json.loads(out))


def test_check_says_whether_a_file_drifted(dr, demo_yaml, tmp_path):
    good = tmp_path / "policy.json"
    good.write_text(render(policy_for(demo(), ACCOUNT)))
    code, out, err = dr("--config", str(demo_yaml), "permissions", "--account", ACCOUNT, "--check", str(good))
    assert code == 0 and "matches" in out
    code, out, err = dr("--config", str(demo_yaml), "permissions", "--check", str(good))
    assert code == 3 and "differs" in out and "Resource differs" in out
    assert f"fix: dr permissions > {good}" in out
    code, out, err = dr("--output", "json", "--config", str(demo_yaml), "permissions", "--check", str(good))
    assert code == 3 and json.loads(out)["in_sync"] is False
    code, out, err = dr("--config", str(demo_yaml), "permissions", "--check", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err


def test_bad_usage_exits_2(dr, demo_yaml, tmp_path):
    code, out, err = dr("--config", str(demo_yaml), "permissions", "--account", "abc")
    assert code == 2 and "12-digit" in err
    code, out, err = dr("--config", str(tmp_path / "none.yaml"), "permissions")
    assert code == 2


def test_stack_parameters_by_reference_get_exactly_their_secrets_in_both_regions():
    text = W.config_text("http://x:1", "/tmp/s").replace(
        "  parameters: {InstanceType: t3.small}",
        "  parameters: {InstanceType: t3.small, DBPassword: {secretsmanager: prod/web-db, key: password},\n"
        "               ApiToken: {ssm: /acme/api-token}}")
    policy = policy_for(parse_config(text), account=ACCOUNT)
    by_sid = statements(policy)
    assert sorted(resources(by_sid["StackParameterSecrets"])) == [
        f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:prod/web-db-*" for region in ("us-east-1", "us-west-2")]
    assert sorted(resources(by_sid["StackParameterSsm"])) == [
        f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/acme/api-token" for region in ("us-east-1", "us-west-2")]
    keys = by_sid["StackParameterSecretKeys"]
    assert keys["Action"] in ("kms:Decrypt", ["kms:Decrypt"])
    assert keys["Condition"]["StringEquals"]["kms:ViaService"] == [
        "secretsmanager.us-east-1.amazonaws.com", "secretsmanager.us-west-2.amazonaws.com",
        "ssm.us-east-1.amazonaws.com", "ssm.us-west-2.amazonaws.com"]
    plain = policy_for(demo(), account=ACCOUNT)  # no references: no secret is readable at all
    assert not {"StackParameterSecrets", "StackParameterSsm", "StackParameterSecretKeys"} & set(statements(plain))
