"""The real `dr` process, end to end: the sandbox a user starts, and the demo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def dr(*args, cwd, env, check=True):
    proc = subprocess.run([sys.executable, "-m", "dr", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"dr {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DR_"))}
    e["DR_SANDBOX_HOME"] = str(tmp_path / "sandbox-home")
    return e


def test_sandbox_start_seed_backup_stop(tmp_path, env):
    port = free_port()
    started = dr("sandbox", "start", "--port", str(port), "--seed", cwd=tmp_path, env=env)
    try:
        assert f"http://127.0.0.1:{port}" in started.stdout
        assert (tmp_path / "dr.sandbox.yaml").exists()
        assert "running" in dr("sandbox", "status", cwd=tmp_path, env=env).stdout
        run = dr("--config", "dr.sandbox.yaml", "backup", "run", cwd=tmp_path, env=env)
        assert "completed" in run.stdout
        again = dr("sandbox", "start", "--port", str(port), "--seed", cwd=tmp_path, env=env)  # "no-op if running"
        assert f"http://127.0.0.1:{port}" in again.stdout and "internal error" not in again.stderr
        listed = dr("--output", "json", "--config", "dr.sandbox.yaml", "backup", "list",
                    cwd=tmp_path, env=env)
        points = json.loads(listed.stdout)["recovery_points"]
        assert {p["role"] for p in points} == {"source", "copy"}
        runs = dr("--config", "dr.sandbox.yaml", "runs", "list", cwd=tmp_path, env=env)
        assert "backup" in runs.stdout and "completed" in runs.stdout
    finally:
        dr("sandbox", "stop", cwd=tmp_path, env=env)
    assert dr("sandbox", "status", cwd=tmp_path, env=env, check=False).returncode == 1


def test_demo_runs_the_whole_cycle(tmp_path, env):
    out = dr("demo", "--keep", str(tmp_path / "demo"), cwd=tmp_path, env=env)
    text = out.stdout
    assert "dr backup run" in text and "dr backup list" in text and "prune --dry-run" in text
    assert text.count("DR key=yes") == 3 and "DR key=NO" not in text
    assert "assets: OK: 25 in sync, 0 missing" in text
    from dr.sandbox.mariadb import binaries

    if binaries() is not None:
        assert "CHECKSUM TABLE matches on every table" in text
        assert "     shop      mysql  every 1h" in text  # the report shows the MySQL backup it made
    else:
        assert "skipped: MariaDB not installed" in text
    assert "RTO" in text and "met" in text  # the drill
    assert (tmp_path / "demo" / "dr-report.html").read_text().startswith("<!DOCTYPE html>")
    assert "never touched" in text
    assert (tmp_path / "demo" / "state" / "runs").is_dir()
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["dr-report.html", "dr.yaml", "state"]
    assert sum(f.stat().st_size for f in (tmp_path / "demo").rglob("*") if f.is_file()) < 5_000_000  # no datadir


def test_demo_json_output_is_one_document(tmp_path, env):
    env = {**env, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    out = dr("--output", "json", "demo", cwd=tmp_path, env=env)
    doc = json.loads(out.stdout)
    (workdir,) = (tmp_path / "tmp").iterdir()  # what the demo leaves in the temp dir: small
    assert not (workdir / "mariadb").exists()
    assert all(p["dr_key"] for p in doc["proof"])
