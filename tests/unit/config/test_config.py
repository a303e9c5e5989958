"""dr.yaml validation: the model, and the exact text (key, line, expectation) of every error kind."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from dr.config import (
    DEFAULT_RETENTION,
    DEFAULT_SCHEDULE_TEXT,
    STARTER_CONFIG,
    AwsSettings,
    Config,
    KmsSettings,
    Objectives,
    RdsResource,
    Regions,
    RetentionPolicy,
    Secret,
    StateSettings,
    advice,
    load_config,
    parse_config,
    parse_schedule,
)
from dr.errors import EXIT_USAGE, ConfigError

KEY_ARN = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# Line numbers matter in the tests below: keep this text's layout stable.
FULL = f"""\
version: 1
regions:
  primary: us-east-1
  dr: us-west-2
aws:
  profile: prod
  endpoint_url: http://127.0.0.1:5000
objectives:
  rpo: 1h
  rto: 30m
kms:
  dr_key: {KEY_ARN}
state:
  bucket: acme-dr-state
  prefix: dr/
rds:
  - name: app-db
    instance: acme-prod-db
    schedule: every 1h
    retention: {{last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}}
  - name: orders
    cluster: acme-aurora
    schedule: "0 * * * *"
  - name: reports
    instance: reports-db
    retention: {{daily: 7}}
s3:
mysql: null
"""


def edit(old: str, new: str, text: str = FULL) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def error_of(text: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(text, **kwargs)
    assert e.value.exit_code == EXIT_USAGE
    return str(e.value)


# --- valid configs --------------------------------------------------------------------------------


def test_starter_config_parses(tmp_path):
    config = parse_config(STARTER_CONFIG, base_dir=tmp_path)
    assert config.regions == Regions("us-east-1", "us-west-2")
    assert config.aws == AwsSettings()
    assert config.objectives == Objectives(timedelta(hours=1), timedelta(minutes=30))
    assert config.kms == KmsSettings("alias/dr-backups")
    assert config.state == StateSettings(path=tmp_path / ".dr-state")
    (db,) = config.rds
    assert (db.name, db.kind, db.source_id, db.schedule.text) == ("app-db", "instance", "acme-prod-db", "every 1h")
    assert db.retention == RetentionPolicy(last=3, hourly=24, daily=7, weekly=4, monthly=12)
    assert "endpoint_url" in STARTER_CONFIG and "dr sandbox" in STARTER_CONFIG
    assert "# bucket:" in STARTER_CONFIG and "#   cluster:" in STARTER_CONFIG
    assert advice(config) == []


def test_starter_config_is_the_shipped_data_file_and_dr_init_writes_it_unchanged(tmp_path):
    import hashlib
    import tomllib
    from importlib import resources

    from dr.cli import main

    shipped = resources.files("dr.config").joinpath("starter.yaml").read_text(encoding="utf-8")
    assert shipped == STARTER_CONFIG
    # the text dr.config.STARTER_CONFIG held before it became a data file, byte for byte
    assert hashlib.sha256(shipped.encode()).hexdigest() == "182a95a4a1da90fd5870d273d4cde0c6e7eb4f809f79a5cd258617e82875d557"
    parse_config(shipped, base_dir=tmp_path)
    assert main(["--config", str(tmp_path / "dr.yaml"), "init"]) == 0
    assert (tmp_path / "dr.yaml").read_bytes() == shipped.encode()
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert "starter.yaml" in pyproject["tool"]["setuptools"]["package-data"]["dr.config"]


def test_full_config_round_trip():
    config = parse_config(FULL, source="conf/dr.yaml")
    assert config == Config(
        version=1,
        regions=Regions(primary="us-east-1", dr="us-west-2"),
        aws=AwsSettings(profile="prod", endpoint_url="http://127.0.0.1:5000"),
        objectives=Objectives(rpo=timedelta(hours=1), rto=timedelta(minutes=30)),
        kms=KmsSettings(dr_key=KEY_ARN),
        state=StateSettings(bucket="acme-dr-state", prefix="dr/"),
        rds=(
            RdsResource("app-db", "acme-prod-db", None, parse_schedule("every 1h"),
                        RetentionPolicy(last=3, hourly=24, daily=7, weekly=4, monthly=12)),
            RdsResource("orders", None, "acme-aurora", parse_schedule("0 * * * *"), DEFAULT_RETENTION),
            RdsResource("reports", "reports-db", None, parse_schedule(DEFAULT_SCHEDULE_TEXT),
                        RetentionPolicy(daily=7)),
        ),
        source="conf/dr.yaml",
    )
    assert parse_config(FULL, source="conf/dr.yaml") == config  # deterministic, comparable
    assert config.rds_resource("orders").kind == "cluster"
    assert config.rds_resource("orders").source_id == "acme-aurora"


def test_minimal_config_defaults(tmp_path):
    text = ("version: 1\nregions: {primary: us-gov-east-1, dr: us-gov-west-1}\nobjectives: {rpo: 1d, rto: 4h}\n"
            "kms: {dr_key: 1234abcd-12ab-34cd-56ef-1234567890ab}\nstate: {path: /var/lib/dr}\n")
    config = parse_config(text, base_dir=tmp_path)
    assert config.aws == AwsSettings()
    assert config.rds == ()
    assert config.state.path == Path("/var/lib/dr")


def test_rds_resource_unknown_name():
    config = parse_config(FULL)
    with pytest.raises(ConfigError) as e:
        config.rds_resource("nope")
    assert str(e.value) == "no rds resource named 'nope' in dr.yaml (known: app-db, orders, reports)"


def test_config_is_frozen():
    config = parse_config(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.version = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rds[0].retention.daily = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rds[0].schedule.text = "every 1m"


def test_relative_state_path_resolves_against_base_dir(tmp_path):
    text = edit("  bucket: acme-dr-state\n  prefix: dr/\n", "  path: ../state/./dr\n")
    assert parse_config(text, base_dir=tmp_path / "conf").state.path == tmp_path / "state" / "dr"


def test_relative_state_path_defaults_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = edit("  bucket: acme-dr-state\n  prefix: dr/\n", "  path: .dr-state\n")
    assert parse_config(text).state.path == tmp_path / ".dr-state"


def test_load_config_resolves_against_file_dir(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "dr.yaml").write_text(STARTER_CONFIG)
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/dr.yaml")
    assert config.state.path == tmp_path / "conf" / ".dr-state"
    assert config.source == "conf/dr.yaml"


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "dr.yaml")
    assert str(e.value) == (f"config file {tmp_path / 'dr.yaml'} not found: run `dr init` to write a starter "
                            "dr.yaml, or pass --config PATH")


def test_errors_name_the_file_basename(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text(edit("  rpo: 1h", "  rpo: soon"))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith("prod.yaml:9: objectives.rpo: ") and str(e.value).endswith("got 'soon'")


def test_optional_sections_absent_or_null_are_accepted():
    assert parse_config(FULL + "dns:\nnotify: ~\n").version == 1


def test_yaml_merge_keys_work():
    merged = edit("  - name: reports\n", "  - <<: {schedule: every 2h}\n    name: reports\n")
    assert parse_config(merged).rds_resource("reports").schedule.text == "every 2h"


# --- one test per error kind: exact text, key path, line ------------------------------------------


def test_wrong_type():
    assert error_of(edit("regions:\n  primary: us-east-1\n  dr: us-west-2\n", "regions: [us-east-1, us-west-2]\n")) \
        == "dr.yaml:2: regions: expected a mapping like {primary: us-east-1, dr: us-west-2}, got a list"
    assert error_of(FULL.split("rds:")[0] + "rds: {name: app-db}\n") == (
        "dr.yaml:16: rds: expected a list of databases, each a mapping with name and instance or cluster, "
        "got a mapping")


def test_bad_whole_number():
    assert error_of(edit("{daily: 7}", "{daily: seven}")) == \
        "dr.yaml:26: rds[2].retention.daily: expected a whole number >= 0, got 'seven'"


def test_boolean_is_not_a_whole_number():
    assert error_of(edit("{last: 3,", "{last: yes,")) == \
        "dr.yaml:20: rds[0].retention.last: expected a whole number >= 0, got True"


def test_unknown_key_with_did_you_mean():
    assert error_of(edit("    retention: {last", "    retension: {last")) == \
        "dr.yaml:20: rds[0].retension: unknown key; did you mean 'retention'?"
    assert error_of(edit("version: 1\n", "version: 1\nregion: x\n")).startswith(
        "dr.yaml:2: region: unknown key; did you mean 'regions'?")


def test_unknown_key_without_close_match_lists_the_keys():
    assert error_of(edit("  dr_key:", "  zzz: 1\n  dr_key:")) == \
        "dr.yaml:12: kms.zzz: unknown key; expected one of: dr_key"


def test_missing_required_key():
    assert error_of(edit("  dr: us-west-2\n", "")) == "dr.yaml:3: regions.dr: required key is missing"
    assert error_of(edit("version: 1\n", "")) == "dr.yaml:1: version: required key is missing"


def test_bad_region():
    assert error_of(edit("dr: us-west-2", "dr: us-west")) == \
        "dr.yaml:4: regions.dr: expected an AWS region name like us-east-1, got 'us-west'"


def test_same_regions():
    text = edit("dr: us-west-2", "dr: us-east-1").replace(":kms:us-west-2:", ":kms:us-east-1:")
    assert error_of(text) == ("dr.yaml:4: regions.dr: must differ from regions.primary (copies must survive the loss of "
                              "the primary region), got 'us-east-1'")


def test_kms_arn_in_wrong_region():
    wrong = KEY_ARN.replace("us-west-2", "us-east-1")
    assert error_of(edit(KEY_ARN, wrong)) == (
        "dr.yaml:12: kms.dr_key: the key must be in the DR region us-west-2: every copy is encrypted with a key in the DR "
        f"region, got '{wrong}'")


def test_kms_aws_managed_alias():
    expected = ("dr.yaml:12: kms.dr_key: an AWS managed key cannot be used for cross-region or cross-account copies; create "
                "a customer managed key in the DR region (us-west-2) and give its alias or ARN, got {!r}")
    assert error_of(edit(KEY_ARN, "alias/aws/rds")) == expected.format("alias/aws/rds")
    arn = "arn:aws:kms:us-west-2:123456789012:alias/aws/rds"
    assert error_of(edit(KEY_ARN, arn)) == expected.format(arn)


def test_kms_not_a_key():
    assert error_of(edit(KEY_ARN, "dr-backups")) == (
        "dr.yaml:12: kms.dr_key: expected a KMS key in the DR region: an alias (alias/dr-backups), a key id (UUID) or a "
        "key ARN, got 'dr-backups'")


def test_both_instance_and_cluster():
    assert error_of(edit("    cluster: acme-aurora\n", "    cluster: acme-aurora\n    instance: x\n")) == \
        "dr.yaml:21: rds[1]: set exactly one of 'instance' or 'cluster', not both"


def test_neither_instance_nor_cluster():
    assert error_of(edit("    cluster: acme-aurora\n", "")) == (
        "dr.yaml:21: rds[1]: required key is missing: set 'instance' (an RDS DB instance identifier) or 'cluster' "
        "(an Aurora DB cluster identifier)")


def test_bad_rds_identifier():
    assert error_of(edit("cluster: acme-aurora", "cluster: acme--aurora")) == (
        "dr.yaml:22: rds[1].cluster: expected an RDS DB cluster identifier (1-63 letters, digits and hyphens, starting with "
        "a letter, no '--', not ending in '-'), got 'acme--aurora'")


def test_duplicate_name():
    assert error_of(edit("name: reports", "name: app-db")) == (
        "dr.yaml:24: rds[2].name: duplicate name: rds[0] already uses it; names must be unique, got 'app-db'")


@pytest.mark.parametrize("name", ["App-db", "app_db", "app--db", "app-", "1db", "a" * 41, 7])
def test_bad_name(name):
    assert error_of(edit("name: orders", f"name: {name}")) == (
        "dr.yaml:21: rds[1].name: expected a name of lowercase letters, digits and hyphens (starting with a letter, at most "
        f"40 characters, no '--', not ending in '-'), got {name!r}")


def test_reserved_section(monkeypatch):
    monkeypatch.setattr("dr.config.RESERVED_SECTIONS", ("future",))
    assert error_of(FULL + "future:\n  name: acme-web\n") == (
        "dr.yaml:29: future: not supported by this version of dr yet; remove it (it will be read by a later version)")


def test_bad_duration():
    assert error_of(edit("rto: 30m", "rto: 30 minutes")) == (
        "dr.yaml:10: objectives.rto: expected a duration like 30s, 15m, 1h or 7d (or a compound like 1h30m), "
        "got '30 minutes'")
    assert error_of(edit("rpo: 1h", "rpo: 60")) == (
        "dr.yaml:9: objectives.rpo: expected a duration like 30s, 15m, 1h or 7d (or a compound like 1h30m), "
        "got 60")


def test_bad_schedule():
    assert error_of(edit("schedule: every 1h", "schedule: hourly")) == (
        "dr.yaml:19: rds[0].schedule: expected a schedule: 'every <duration>' (like 'every 1h') or a five-field cron "
        "'minute hour day-of-month month day-of-week' (like '0 */6 * * *'), got 'hourly'")
    assert error_of(edit('schedule: "0 * * * *"', 'schedule: "0 25 * * *"')) == (
        "dr.yaml:23: rds[1].schedule: cron hour field '25': 25 is outside 0-23; a cron has five fields "
        "'minute hour day-of-month month day-of-week', or write 'every <duration>', got '0 25 * * *'")


def test_retention_that_keeps_nothing():
    assert error_of(edit("{daily: 7}", "{daily: 0}")) == (
        "dr.yaml:26: rds[2].retention: every count is 0, so retention would keep nothing but the newest copy; set at least "
        "one of last, hourly, daily, weekly, monthly above 0")


def test_state_needs_exactly_one_of_bucket_or_path():
    assert error_of(edit("  prefix: dr/\n", "  path: x\n")) == (
        "dr.yaml:14: state: set exactly one of 'bucket' (an S3 bucket in the DR region) or 'path' (a local directory), "
        "not both")
    assert error_of(edit("  bucket: acme-dr-state\n", "")) == (
        "dr.yaml:14: state: required key is missing: set 'bucket' (an S3 bucket in the DR region) or 'path' "
        "(a local directory)")


def test_bad_bucket_name():
    assert error_of(edit("bucket: acme-dr-state", "bucket: Acme_State")) == (
        "dr.yaml:14: state.bucket: expected an S3 bucket name (3-63 characters: lowercase letters, digits, dots, hyphens), "
        "got 'Acme_State'")


def test_bad_endpoint_url():
    assert error_of(edit("http://127.0.0.1:5000", "127.0.0.1:5000")) == (
        "dr.yaml:7: aws.endpoint_url: expected an http(s) URL like http://127.0.0.1:5000, or null for real AWS, "
        "got '127.0.0.1:5000'")


@pytest.mark.parametrize("value, shown", [("2", "2"), ("1.0", "1.0"), ("'1'", "'1'"), ("true", "True")])
def test_wrong_version(value, shown):
    assert error_of(edit("version: 1", f"version: {value}")) == \
        f"dr.yaml:1: version: expected 1 (the only config version this dr understands), got {shown}"


def test_yaml_syntax_error():
    assert error_of(edit("  rto: 30m\n", "  rto: 30m\n   kms: x: y\n")) == (
        "dr.yaml:11: YAML syntax error: mapping values are not allowed here (column 7)")


def test_unquoted_cron_gets_a_hint():
    assert error_of(edit('"0 * * * *"', "*/15 * * * *")) == (
        "dr.yaml:23: YAML syntax error: expected alphabetic or numeric character, but found '/' while scanning an alias; "
        "quote values that start with '*', like schedule: \"*/15 * * * *\" (column 16)")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text):
    assert error_of(text) == ("dr.yaml is empty: expected a mapping with version, regions, objectives, kms and "
                              "state; run `dr init` to write a starter dr.yaml")


def test_top_level_not_a_mapping():
    assert error_of("- version: 1\n") == ("dr.yaml:1: (top level): expected a mapping of settings (version, regions, "
                                          "objectives, ...), got a list")


def test_duplicate_yaml_key():
    assert error_of(edit("  rto: 30m\n", "  rto: 30m\n  rpo: 2h\n")) == \
        "dr.yaml:11: objectives.rpo: duplicate key (already set on line 9)"


def test_multiple_errors_in_file_order():
    text = edit("dr: us-west-2", "dr: mars-1")
    text = edit("{daily: 7}", "{daily: seven}", text)
    text = edit("  prefix: dr/\n", "  prefixx: dr/\n", text)
    text = edit("version: 1\n", "version: 1\ndns: [x]\n", text)
    text = edit("  rto: 30m\n", "", text)
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="/etc/dr/dr.yaml")
    assert str(e.value).splitlines() == e.value.problems == [
        "dr.yaml:2: dns: expected a mapping like {provider: route53, zone: example.com., record: www.example.com.}, "
        "got a list",
        "dr.yaml:5: regions.dr: expected an AWS region name like us-east-1, got 'mars-1'",
        "dr.yaml:10: objectives.rto: required key is missing",
        "dr.yaml:15: state.prefixx: unknown key; did you mean 'prefix'?",
        "dr.yaml:26: rds[2].retention.daily: expected a whole number >= 0, got 'seven'",
    ]


# --- warnings -------------------------------------------------------------------------------------


def test_warnings_schedule_slower_than_rpo():
    text = edit("schedule: every 1h", "schedule: every 1d")
    assert advice(parse_config(text)) == [
        "rds[0] (app-db): schedule every 1d copies less often than the RPO objective 1h: the RPO cannot be met",
        # reports has the default schedule (every 1d)
        "rds[2] (reports): schedule every 1d copies less often than the RPO objective 1h: the RPO cannot be met",
    ]


def test_warnings_cron_uses_longest_gap():
    text = edit("rpo: 1h", "rpo: 1d").replace("schedule: every 1h", 'schedule: "0 9 * * mon-fri"')
    assert advice(parse_config(text)) == [
        "rds[0] (app-db): schedule 0 9 * * mon-fri copies less often than the RPO objective 1d: "
        "the RPO cannot be met",
    ]


def test_mysql_section_and_secrets_never_shown():
    text = FULL.replace("mysql: null\n", "") + (
        "mysql:\n"
        "  - {name: lamp, host: 10.0.0.5, user: backup, password: {env: LAMP_PW}, databases: [app],\n"
        "     destination: 's3://acme-dr-backups/mysql/', tls: off,\n"
        "     verify: {host: 127.0.0.1, password: hunter2}}\n")
    config = parse_config(text)
    (m,) = config.mysql
    assert m.server.tls == "off" and m.server.password.env == "LAMP_PW"
    assert "hunter2" not in repr(config) and "hunter2" not in str(m.verify.password)
    found = advice(config)
    assert any("password is written in dr.yaml" in w for w in found)
    assert any("tls is off" in w for w in found)


def test_mysql_engine_other_than_ours_is_refused():
    text = FULL.replace("mysql: null\n", "") + ("mysql:\n  - {name: lamp, host: h, databases: [app], destination: 'file:///x', "
                   "engine: mysqldump}\n")
    with pytest.raises(ConfigError, match="mysql\\[0\\].engine: expected python"):
        parse_config(text)


def test_names_are_unique_across_sections_even_when_a_section_has_errors():
    text = edit("name: reports", "name: reports\n    retention: {daily: seven}").replace("mysql: null\n", "")
    text = text.replace("s3:\n", "s3:\n  - {name: app-db, source: acme-assets, destination: acme-dr}\n", 1)
    problems = error_of(text).splitlines()
    assert any(p.startswith("dr.yaml:29: s3[0].name: duplicate name: rds[0] already uses it") for p in problems), problems


# --- stack parameters: plain values and references ------------------------------------------------

STACK = """\
stack:
  name: acme-web
  template: t.yaml
  parameters:
"""  # FULL is 28 lines: `stack:` is line 29, the first parameter line 33


def stack_config(tmp_path, params: str, dr_params: str | None = None) -> str:
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    text = FULL + STACK + params
    return text + ("  dr_parameters:\n" + dr_params if dr_params is not None else "")


def test_stack_parameters_plain_and_references(tmp_path):
    text = stack_config(tmp_path, (
        "    InstanceType: t3.small\n"
        "    Size: 3\n"
        "    MultiAZ: true\n"
        "    DBPassword: {secretsmanager: prod/db, key: password}\n"
        "    DBUser: {secretsmanager: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf'}\n"
        "    ApiToken: {ssm: /acme/api-token}\n"
        "    KeyName: {env: DR_KEY_NAME}\n"), (
        "    KeyName: acme-usw2\n"
        "    DBPassword: {ssm: /acme/dr/db-password}\n"))
    stack = parse_config(text, base_dir=tmp_path).stack
    assert stack.parameters == (
        ("InstanceType", "t3.small"), ("Size", "3"), ("MultiAZ", "true"),
        ("DBPassword", Secret(secretsmanager="prod/db", key="password")),
        ("DBUser", Secret(secretsmanager="arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf")),
        ("ApiToken", Secret(ssm="/acme/api-token")),
        ("KeyName", Secret(env="DR_KEY_NAME")),
    )
    assert stack.dr_parameters == (("KeyName", "acme-usw2"), ("DBPassword", Secret(ssm="/acme/dr/db-password")))
    merged = stack.parameters_for_dr()
    assert merged["KeyName"] == "acme-usw2" and merged["InstanceType"] == "t3.small"
    assert merged["DBPassword"] == Secret(ssm="/acme/dr/db-password")
    # each reference knows its dr.yaml key path, for error messages
    assert merged["DBPassword"].where == "stack.dr_parameters.DBPassword"
    assert dict(stack.parameters)["ApiToken"].where == "stack.parameters.ApiToken"
    assert all(isinstance(v, (str, Secret)) for _, v in stack.parameters)
    assert not [w for w in advice(parse_config(text, base_dir=tmp_path)) if w.startswith("stack.")]


def test_stack_parameter_reference_str_and_repr():
    assert str(Secret(secretsmanager="prod/db")) == "{secretsmanager: prod/db}"
    assert str(Secret(secretsmanager="prod/db", key="password")) == "{secretsmanager: prod/db, key: password}"
    assert str(Secret(ssm="/acme/db")) == "{ssm: /acme/db}"
    assert str(Secret(env="X")) == "{env: X}"
    assert str(Secret(literal="hunter2")) == "<secret>"
    assert repr(Secret(ssm="/acme/db")) == "Secret({ssm: /acme/db})"
    assert repr(Secret(literal="hunter2")) == "Secret(<secret>)"
    assert Secret(ssm="/a").in_aws and Secret(secretsmanager="a").in_aws and not Secret(env="A").in_aws


def test_secret_has_exactly_one_source():
    with pytest.raises(ValueError, match="one source"):
        Secret(env="A", ssm="/a")
    with pytest.raises(ValueError, match="only applies to a secretsmanager"):
        Secret(ssm="/a", key="k")


def test_resolved_values_never_appear_in_config_str_or_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("DR_KEY_NAME", "s3cr3t-from-env")
    text = stack_config(tmp_path, "    KeyName: {env: DR_KEY_NAME}\n    DBPassword: {ssm: /acme/db}\n")
    config = parse_config(text, base_dir=tmp_path)
    assert dict(config.stack.parameters)["KeyName"].resolve() == "s3cr3t-from-env"
    for shown in (repr(config), str(config), repr(config.stack), str(config.stack.parameters_for_dr())):
        assert "s3cr3t-from-env" not in shown
        assert "{env: DR_KEY_NAME}" in shown and "{ssm: /acme/db}" in shown


def test_env_reference_missing_names_the_key_path(tmp_path, monkeypatch):
    monkeypatch.delenv("DR_NOPE", raising=False)
    config = parse_config(stack_config(tmp_path, "    KeyName: {env: DR_NOPE}\n"), base_dir=tmp_path)
    with pytest.raises(ConfigError) as e:
        dict(config.stack.parameters)["KeyName"].resolve()
    assert e.value.message == "stack.parameters.KeyName: environment variable DR_NOPE is not set"
    assert "export DR_NOPE=" in str(e.value)


def test_aws_reference_needs_a_session():
    with pytest.raises(ValueError, match="needs a session and a region"):
        Secret(ssm="/a", where="stack.parameters.X").resolve()


def test_stack_parameter_errors_all_at_once_with_lines(tmp_path):
    text = stack_config(tmp_path, (
        "    A: {secretmanager: prod/db}\n"         # 33
        "    B: {env: 1BAD}\n"                       # 34
        "    C: {ssm: /acme/x, key: password}\n"     # 35
        "    D: {secretsmanager: prod/db, ssm: /acme/x}\n"  # 36
        "    E: [a, b]\n"                            # 37
        "    F:\n"                                   # 38
        "    G: {key: password}\n"                   # 39
        "    H: {secretsmanager: 'has space'}\n"     # 40
        "    I: {ssm: 'a b'}\n"                      # 41
        "    J: {secretsmanager: prod/db, key: ''}\n"  # 42
        "    Ok: {ssm: /fine}\n"), (                 # 43
        "    K: {Env: X}\n"))                         # 45
    expected = ("expected a plain value (string, number or true/false) or a reference: {env: NAME}, "
                "{secretsmanager: NAME} (with key: JSONKEY for one key of a JSON secret) or {ssm: /NAME}")
    assert error_of(text, base_dir=tmp_path).splitlines() == [
        "dr.yaml:33: stack.parameters.A.secretmanager: unknown key; did you mean 'secretsmanager'?",
        "dr.yaml:34: stack.parameters.B.env: expected an environment variable name like DR_DB_PASSWORD, got '1BAD'",
        "dr.yaml:35: stack.parameters.C.key: only applies with secretsmanager (one key of a JSON secret)",
        "dr.yaml:36: stack.parameters.D: set exactly one of secretsmanager, ssm, not both",
        f"dr.yaml:37: stack.parameters.E: {expected}, got a list",
        f"dr.yaml:38: stack.parameters.F: {expected}, got None",
        f"dr.yaml:39: stack.parameters.G: {expected}, got a mapping",
        "dr.yaml:40: stack.parameters.H.secretsmanager: expected a Secrets Manager secret name (like prod/db) or ARN, "
        "got 'has space'",
        "dr.yaml:41: stack.parameters.I.ssm: expected an SSM parameter name (like /prod/db/password) or ARN, got 'a b'",
        "dr.yaml:42: stack.parameters.J.key: expected the name of a key in the secret's JSON, like password, got ''",
        "dr.yaml:45: stack.dr_parameters.K.Env: unknown key; did you mean 'env'?",
    ]


def test_stack_parameters_not_a_mapping(tmp_path):
    (tmp_path / "t.yaml").write_text("Resources: {}\n")
    text = FULL + "stack: {name: acme-web, template: t.yaml, parameters: [a]}\n"
    assert error_of(text, base_dir=tmp_path) == (
        "dr.yaml:29: stack.parameters: expected a mapping of names to values, like {InstanceType: t3.small}, got a list")


def test_warnings_secret_looking_stack_parameters_written_in_dr_yaml(tmp_path):
    text = stack_config(tmp_path, (
        "    DBPassword: hunter2\n"
        "    InstanceType: t3.small\n"
        "    db_master_password: hunter2\n"
        "    DBPasswordArn: arn:aws:secretsmanager:us-west-2:123456789012:secret:db\n"  # where, not what
        "    DBSecretName: prod/db\n"
        "    db_secret_id: prod/db\n"
        "    AdminToken: ''\n"                                                          # empty: nothing written
        "    ApiKey: {env: API_KEY}\n"), (
        "    GitHubToken: ghp_x\n"
        "    SSHPrivateKey: '-----BEGIN'\n"
        "    ClientSecret: {secretsmanager: prod/oauth, key: secret}\n"))
    assert [w for w in advice(parse_config(text, base_dir=tmp_path)) if w.startswith("stack.")] == [
        "stack.parameters.DBPassword: written in dr.yaml; use {env: NAME}, {secretsmanager: NAME} or {ssm: NAME}",
        "stack.parameters.db_master_password: written in dr.yaml; use {env: NAME}, {secretsmanager: NAME} or "
        "{ssm: NAME}",
        "stack.dr_parameters.GitHubToken: written in dr.yaml; use {env: NAME}, {secretsmanager: NAME} or "
        "{ssm: NAME}",
        "stack.dr_parameters.SSHPrivateKey: written in dr.yaml; use {env: NAME}, {secretsmanager: NAME} or "
        "{ssm: NAME}",
    ]
