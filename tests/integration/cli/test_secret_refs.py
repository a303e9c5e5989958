"""Template parameters given by reference, read on a moto server in the region the stack launches in."""

from __future__ import annotations

import json

import pytest

from dr.aws import AwsSession
from dr.config import Secret, parse_config
from dr.errors import ConfigError, DrError
from dr.secret_refs import describe_refs, iam_actions, resolve_parameters, secret_refs
from tests.unit.config.test_config import stack_config

PRIMARY, DR = "us-east-1", "us-west-2"
DB_PASSWORD, API_TOKEN, PLAIN_SECRET = "pw-6f1c9e", "tok-83b2aa", "whole-4d7e01"
VALUES = (DB_PASSWORD, API_TOKEN, PLAIN_SECRET, "dbadmin")


@pytest.fixture
def session(endpoint):
    return AwsSession(endpoint_url=endpoint)


@pytest.fixture
def world(boto):
    """A JSON secret, a plain secret and a SecureString in the DR region."""
    sm, ssm = boto("secretsmanager", DR), boto("ssm", DR)
    arn = sm.create_secret(Name="prod/db", SecretString=json.dumps(
        {"username": "dbadmin", "password": DB_PASSWORD, "port": 3306, "ssl": True, "opts": {}}))["ARN"]
    sm.create_secret(Name="prod/plain", SecretString=PLAIN_SECRET)
    ssm.put_parameter(Name="/acme/api-token", Value=API_TOKEN, Type="SecureString")
    return {"arn": arn}


def config_with(tmp_path, params: str, dr_params: str | None = None):
    return parse_config(stack_config(tmp_path, params, dr_params), base_dir=tmp_path)


def test_references_resolve_in_the_launch_region(tmp_path, session, world, monkeypatch):
    monkeypatch.setenv("DR_KEY_NAME", "acme-usw2")
    config = config_with(tmp_path, (
        "    InstanceType: t3.small\n"
        "    DBPassword: {secretsmanager: prod/db, key: password}\n"
        "    DBUser: {secretsmanager: prod/db, key: username}\n"
        "    DBPort: {secretsmanager: prod/db, key: port}\n"
        "    DBSsl: {secretsmanager: prod/db, key: ssl}\n"
        "    Whole: {secretsmanager: prod/plain}\n"
        "    ApiToken: {ssm: /acme/api-token}\n"
        "    KeyName: {env: DR_KEY_NAME}\n"))
    values = config.stack.parameters_for_dr()
    assert resolve_parameters(values, session, DR) == {
        "InstanceType": "t3.small", "DBPassword": DB_PASSWORD, "DBUser": "dbadmin", "DBPort": "3306",
        "DBSsl": "true", "Whole": PLAIN_SECRET, "ApiToken": API_TOKEN, "KeyName": "acme-usw2"}
    assert set(secret_refs(values)) == {"DBPassword", "DBUser", "DBPort", "DBSsl", "Whole", "ApiToken", "KeyName"}
    assert describe_refs(values) == {
        "InstanceType": "t3.small", "DBPassword": "{secretsmanager: prod/db, key: password}",
        "DBUser": "{secretsmanager: prod/db, key: username}", "DBPort": "{secretsmanager: prod/db, key: port}",
        "DBSsl": "{secretsmanager: prod/db, key: ssl}", "Whole": "{secretsmanager: prod/plain}",
        "ApiToken": "{ssm: /acme/api-token}", "KeyName": "{env: DR_KEY_NAME}"}
    assert iam_actions(values) == ("secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt")
    # nothing resolved is kept on, or shown by, the config objects
    for shown in (str(config), repr(config), repr(config.stack), str(values), repr(values),
                  str(describe_refs(values))):
        assert not any(v in shown for v in VALUES + ("acme-usw2",)), shown


def test_an_arn_is_read_in_the_launch_region(tmp_path, session, world, boto):
    """A secret ARN from the primary region names the replica in the DR region (same name and suffix)."""
    primary_arn = world["arn"].replace(f":{DR}:", f":{PRIMARY}:")
    config = config_with(tmp_path, f"    DBPassword: {{secretsmanager: '{primary_arn}', key: password}}\n")
    assert resolve_parameters(config.stack.parameters_for_dr(), session, DR) == {"DBPassword": DB_PASSWORD}


def test_secret_only_in_the_primary_region_fails_in_the_dr_region(tmp_path, session, boto):
    boto("secretsmanager", PRIMARY).create_secret(Name="prod/only-east", SecretString=DB_PASSWORD)
    boto("ssm", PRIMARY).put_parameter(Name="/acme/only-east", Value=API_TOKEN, Type="SecureString")
    config = config_with(tmp_path, "    DBPassword: {secretsmanager: prod/only-east}\n",
                         "    ApiToken: {ssm: /acme/only-east}\n")
    assert resolve_parameters(dict(config.stack.parameters), session, PRIMARY) == {"DBPassword": DB_PASSWORD}
    with pytest.raises(ConfigError) as e:
        resolve_parameters(dict(config.stack.parameters), session, DR)
    assert e.value.message == (
        "stack.parameters.DBPassword: secret prod/only-east not found in us-west-2: create it there (a secret "
        "in the primary region does not help during its outage), or replicate it")
    assert e.value.hint == ("aws secretsmanager replicate-secret-to-regions --secret-id prod/only-east "
                            "--add-replica-regions Region=us-west-2")
    # every parameter that cannot be read, in one error
    with pytest.raises(ConfigError) as e:
        resolve_parameters(config.stack.parameters_for_dr(), session, DR)
    assert e.value.message.splitlines() == [
        "2 template parameters cannot be read in us-west-2:",
        "  stack.parameters.DBPassword: secret prod/only-east not found in us-west-2: create it there (a secret "
        "in the primary region does not help during its outage), or replicate it",
        "  stack.dr_parameters.ApiToken: SSM parameter /acme/only-east not found in us-west-2: create it there "
        "(a parameter in the primary region does not help during its outage)",
    ]
    assert DB_PASSWORD not in str(e.value) and API_TOKEN not in str(e.value)


def test_env_variable_missing_names_the_variable_and_the_key(tmp_path, session, monkeypatch):
    monkeypatch.delenv("DR_DB_PASSWORD", raising=False)
    config = config_with(tmp_path, "    InstanceType: t3.small\n", "    DBPassword: {env: DR_DB_PASSWORD}\n")
    with pytest.raises(ConfigError) as e:
        resolve_parameters(config.stack.parameters_for_dr(), session, DR)
    assert e.value.message == "stack.dr_parameters.DBPassword: environment variable DR_DB_PASSWORD is not set"
    assert "export DR_DB_PASSWORD=..." in e.value.hint


def test_json_key_problems_never_show_the_secret(tmp_path, session, world):
    for params, message in (
        ("    P: {secretsmanager: prod/plain, key: password}\n",
         "stack.parameters.P: secret prod/plain in us-west-2 is not a JSON object, so it has no key 'password'"),
        ("    P: {secretsmanager: prod/db, key: pasword}\n",
         "stack.parameters.P: secret prod/db in us-west-2 has no key 'pasword' (its keys: opts, password, port, "
         "ssl, username)"),
        ("    P: {secretsmanager: prod/db, key: opts}\n",
         "stack.parameters.P: key 'opts' of secret prod/db in us-west-2 is a JSON object: a template parameter "
         "needs a string, number or true/false"),
    ):
        config = config_with(tmp_path, params)
        with pytest.raises(ConfigError) as e:
            resolve_parameters(config.stack.parameters_for_dr(), session, DR)
        assert e.value.message == message
        assert not any(v in str(e.value) for v in VALUES)


def test_an_unreachable_endpoint_fails_at_once_before_any_secret_is_read(tmp_path, endpoint):
    """No endpoint to reach: one clear error naming it (dr.aws's probe), not a retried call per
    secret. (AWS errors of a reachable endpoint are led by the key path: see below.)"""
    from dr.aws import EndpointUnreachable

    config = config_with(tmp_path, "    DBPassword: {secretsmanager: prod/db, key: password}\n")
    with pytest.raises(EndpointUnreachable) as e:
        resolve_parameters(config.stack.parameters_for_dr(), AwsSession(endpoint_url="http://127.0.0.1:9"), DR)
    assert e.value.message.startswith("the AWS endpoint http://127.0.0.1:9 does not answer")


def test_secret_resolve_with_a_session(session, world):
    assert Secret(ssm="/acme/api-token").resolve(session, DR) == API_TOKEN
    assert Secret(secretsmanager="prod/db", key="password", where="x").resolve(session, DR) == DB_PASSWORD
    with pytest.raises(DrError, match="^x: SSM parameter /nope not found in us-west-2"):
        Secret(ssm="/nope", where="x").resolve(session, DR)
