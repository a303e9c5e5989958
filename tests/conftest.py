"""Shared fixtures: a real moto server process reached over HTTP, as users reach LocalStack or AWS."""

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


def fixtures_dir() -> Path | None:
    """The shared real-world fixtures (../shared/fixtures or $DR_FIXTURES), or None."""
    candidate = Path(os.environ.get("DR_FIXTURES", REPO.parent / "shared" / "fixtures"))
    return candidate if candidate.is_dir() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """A moto server in its own process on 127.0.0.1; yields its endpoint URL."""
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
    """The moto endpoint, reset to an empty world for this test."""
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
