"""Shared fixtures: a real moto server process reached over HTTP, as users reach LocalStack or AWS.

The opt-in LocalStack job: with DR_TEST_LOCALSTACK=1 the integration tests marked `localstack`
run against a LocalStack that is already running (scripts/localstack.sh start) at
$DR_LOCALSTACK_ENDPOINT (default http://127.0.0.1:4566) instead of a moto server; every other
integration test is skipped, and so is a test marked `moto_only("why")`, with that reason.
LocalStack community has no state reset (POST /_localstack/state/reset is a Pro feature; it
answers 404 in the community edition), so each test gets an empty world of its own: a fresh
12-digit AWS account (LocalStack takes a 12-digit access key id as the account id), whose
buckets are deleted after the test because bucket names are global across accounts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCALSTACK = os.environ.get("DR_TEST_LOCALSTACK", "") == "1"
LOCALSTACK_ENDPOINT = os.environ.get("DR_LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566").rstrip("/")
# What the `localstack` tests use there; all in LocalStack's community edition (RDS is not).
LOCALSTACK_SERVICES = ("s3", "kms", "route53", "cloudformation", "sns", "sqs", "sts", "ec2")


def fixtures_dir() -> Path | None:
    """The shared real-world fixtures (../shared/fixtures or $DR_FIXTURES), or None."""
    candidate = Path(os.environ.get("DR_FIXTURES", REPO.parent / "shared" / "fixtures"))
    return candidate if candidate.is_dir() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "localstack: also runs against LocalStack in the opt-in job (DR_TEST_LOCALSTACK=1)")
    config.addinivalue_line(
        "markers", "moto_only(reason): needs moto; skipped with that reason against LocalStack")
    config.addinivalue_line(
        "markers", "localstack_bug(reason, only=[ids], since='4.14'): fails on LocalStack for an "
        "emulator bug (a strict xfail there: a fixed LocalStack turns it into a failure to "
        "notice); only= limits it to those parametrize ids, since= to LocalStack versions from it")


def pytest_report_header(config):
    if LOCALSTACK:
        return f"AWS emulator: LocalStack {_localstack_health().get('version', '?')} at {LOCALSTACK_ENDPOINT}"


def pytest_collection_modifyitems(config, items):
    """Against LocalStack: only `localstack` integration tests run, less the `moto_only` ones;
    a `localstack_bug` one is expected to fail there."""
    if not LOCALSTACK:
        return
    version = _version(_localstack_health().get("version", ""))
    for item in items:
        if not item.get_closest_marker("integration"):
            continue
        if not item.get_closest_marker("localstack"):
            item.add_marker(pytest.mark.skip(
                reason="not in the LocalStack job (DR_TEST_LOCALSTACK=1): needs moto or the dr sandbox"))
        elif (moto := item.get_closest_marker("moto_only")) is not None:
            reason = moto.args[0] if moto.args else moto.kwargs.get("reason", "needs moto")
            item.add_marker(pytest.mark.skip(reason=f"moto only: {reason}"))
        elif (bug := item.get_closest_marker("localstack_bug")) is not None:
            only, since = bug.kwargs.get("only"), bug.kwargs.get("since")
            if ((only is None or getattr(getattr(item, "callspec", None), "id", None) in only)
                    and (since is None or version >= _version(since))):
                item.add_marker(pytest.mark.xfail(reason=f"LocalStack bug: {bug.args[0]}", strict=True))


def _version(text: str) -> tuple[int, ...]:
    """"4.14.0" -> (4, 14, 0); anything unparsable counts as newest."""
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (10**6,)


def _localstack_health() -> dict:
    import json

    try:
        with urllib.request.urlopen(f"{LOCALSTACK_ENDPOINT}/_localstack/health", timeout=5) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return {}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    """Tests never reach a real AWS account: fake credentials, no profile from the host."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_PROFILE", raising=False)
    monkeypatch.delenv("DR_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("DR_CONFIG", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # A call that forgot its endpoint goes to a closed local port and fails at once, instead of
    # leaving the machine for real AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


@pytest.fixture(scope="session")
def moto_server():
    """A moto server in its own process on 127.0.0.1; yields its endpoint URL.
    With DR_TEST_LOCALSTACK=1: the running LocalStack's endpoint instead."""
    if LOCALSTACK:
        yield _localstack_endpoint()
        return
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto server did not start")
            time.sleep(0.1)
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def endpoint(moto_server):
    """The moto endpoint, reset to an empty world for this test.
    With DR_TEST_LOCALSTACK=1: LocalStack, where this test has an account of its own."""
    if LOCALSTACK:
        return moto_server
    req = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10)
    return moto_server


@pytest.fixture
def boto(endpoint):
    """boto3 clients on the moto server, for arranging and checking the world in tests."""
    import boto3

    def make(service: str, region: str):
        return boto3.client(service, region_name=region, endpoint_url=endpoint)

    return make


def _localstack_endpoint() -> str:
    health = _localstack_health()
    if not health:
        pytest.fail(f"DR_TEST_LOCALSTACK=1 but no LocalStack answers at {LOCALSTACK_ENDPOINT} "
                    "(start one with scripts/localstack.sh start, or set DR_LOCALSTACK_ENDPOINT)")
    services = health.get("services", {})
    missing = [s for s in LOCALSTACK_SERVICES if services.get(s) not in ("available", "running")]
    if missing:
        pytest.fail(f"LocalStack at {LOCALSTACK_ENDPOINT} does not offer {', '.join(missing)}")
    return LOCALSTACK_ENDPOINT


if LOCALSTACK:
    import itertools
    import random

    # A fresh account per test, from a random base so that a rerun on the same LocalStack does
    # not meet the accounts (and anything a killed run left in them) of an earlier run.
    _ACCOUNTS = itertools.count(random.randrange(10**11, 9 * 10**11, 10**5))

    @pytest.fixture(autouse=True)
    def _localstack_account(_no_real_aws, monkeypatch, request):
        """This test's own empty LocalStack account; its buckets are deleted afterwards."""
        import boto3

        account = f"{next(_ACCOUNTS):012d}"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", account)
        # boto3.client() uses a default session that keeps the credentials it first read
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        yield account
        if request.node.get_closest_marker("integration"):
            _delete_buckets(account)

    def _delete_buckets(account: str) -> None:
        """Empty and delete every bucket of `account`: every version, delete marker and pending
        multipart upload, so that the next test can create a bucket of the same name."""
        import boto3

        session = boto3.session.Session(aws_access_key_id=account, aws_secret_access_key="testing",
                                        region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=LOCALSTACK_ENDPOINT)
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            client = session.client("s3", region_name=region, endpoint_url=LOCALSTACK_ENDPOINT)
            for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if doomed:
                    client.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
                for upload in page.get("Uploads", []):
                    client.abort_multipart_upload(Bucket=name, Key=upload["Key"],
                                                  UploadId=upload["UploadId"])
            client.delete_bucket(Bucket=name)
