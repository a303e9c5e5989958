"""The client factory, error translation and pagination, without a server."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.stub import Stubber

from dr.aws import AwsSession, error_code, resolve_endpoint, translate
from dr.aws import rds as rds_api
from dr.errors import AwsError, ConfigError


def test_endpoint_precedence(monkeypatch):
    assert resolve_endpoint(None, None) is None
    assert resolve_endpoint(None, "http://config") == "http://config"
    monkeypatch.setenv("DR_ENDPOINT_URL", "http://env")
    assert resolve_endpoint(None, "http://config") == "http://env"
    assert resolve_endpoint("http://cli", "http://config") == "http://cli"


def test_clients_are_cached_per_service_and_region_with_adaptive_retries():
    import socket

    listener = socket.socket()  # an endpoint that accepts connections (dr probes it once)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    session = AwsSession(endpoint_url=f"http://127.0.0.1:{port}")
    a = session.client("rds", "us-east-1")
    assert session.client("rds", "us-east-1") is a
    assert session.client("rds", "us-west-2") is not a
    assert a.meta.region_name == "us-east-1"
    assert a.meta.endpoint_url == f"http://127.0.0.1:{port}"
    assert a.meta.config.retries["mode"] == "adaptive"
    listener.close()


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        AwsSession(profile="nope").client("rds", "us-east-1")


def _client_error(code, message="m"):
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateDBSnapshot")


def test_translate_names_action_resource_region_and_fix():
    err = translate(_client_error("AccessDenied", "not authorized"), action="creating snapshot of",
                    resource="DB instance db1", region="us-east-1")
    assert isinstance(err, AwsError) and err.code == "AccessDenied" and err.exit_code == 1
    text = str(err)
    assert "creating snapshot of DB instance db1 in us-east-1" in text
    assert "not authorized" in text and "IAM" in text
    assert error_code(err) == "AccessDenied"
    nocred = translate(NoCredentialsError(), action="listing", resource="x", region="us-west-2")
    assert "no AWS credentials" in str(nocred) and "AWS_PROFILE" in str(nocred)


def test_snapshot_listing_follows_every_page():
    """moto answers describe_db_snapshots in one page; real AWS pages at 100. Prove we follow Marker."""
    client = boto3.client("rds", region_name="us-east-1")
    created = datetime(2026, 11, 26, tzinfo=timezone.utc)

    def page(ids, marker=None):
        body = {"DBSnapshots": [{"DBSnapshotIdentifier": i, "DBInstanceIdentifier": "db1",
                                 "DBSnapshotArn": f"arn:aws:rds:us-east-1:1:snapshot:{i}",
                                 "Status": "available", "SnapshotCreateTime": created,
                                 "Encrypted": True, "KmsKeyId": "k", "SnapshotType": "manual",
                                 "TagList": [{"Key": "dr:managed", "Value": "true"},
                                             {"Key": "dr:name", "Value": "app-db"}]}
                                for i in ids]}
        if marker:
            body["Marker"] = marker
        return body

    with Stubber(client) as stub:
        stub.add_response("describe_db_snapshots", page(["a", "b"], "m1"),
                          {"DBInstanceIdentifier": "db1", "SnapshotType": "manual"})
        stub.add_response("describe_db_snapshots", page(["c"], "m2"),
                          {"DBInstanceIdentifier": "db1", "SnapshotType": "manual", "Marker": "m1"})
        stub.add_response("describe_db_snapshots", page(["d"]),
                          {"DBInstanceIdentifier": "db1", "SnapshotType": "manual", "Marker": "m2"})
        snaps = rds_api.list_snapshots(client, rds_api.INSTANCE, "db1", "us-east-1")
        stub.assert_no_pending_responses()
    assert [s.id for s in snaps] == ["a", "b", "c", "d"]
    assert all(s.managed_name == "app-db" for s in snaps)


def test_version_does_not_import_boto3():
    """`dr --version` must answer fast: the CLI imports boto3 lazily."""
    code = ("import sys; from dr.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('boto3', 'botocore', 'moto', 'pymongo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
