"""Real `dr schedule` processes against the sandbox: exactly one run per slot.

Two daemons share one S3 state bucket in the DR region and race for every slot of two jobs
scheduled `every 1m`; their clock runs 30 times faster than real time (a hidden test option),
so a few real seconds cover several slots. Then two `--once` processes started together.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from dr.aws import AwsSession
from dr.sandbox import world

pytestmark = pytest.mark.integration

BOOT = """\
import sys, dr.cli as c
from dr.cli import report, schedule
c.COMMANDS = tuple(c.COMMANDS) + tuple(m for m in (report, schedule) if m not in c.COMMANDS)
sys.exit(c.main(sys.argv[1:]))
"""
STATE_BUCKET = "acme-dr-state"


def dr_cmd(*args) -> list[str]:
    """`dr ARGS` with the report and schedule commands registered."""
    return [sys.executable, "-c", BOOT, *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox(endpoint, tmp_path):
    session = AwsSession(endpoint_url=endpoint)
    world.seed(session)
    session.client("s3", world.DR).create_bucket(
        Bucket=STATE_BUCKET, CreateBucketConfiguration={"LocationConstraint": world.DR})
    text = world.config_text(endpoint, tmp_path / "unused")
    text = text.replace(f'state: {{path: "{tmp_path / "unused"}"}}', f"state: {{bucket: {STATE_BUCKET}}}")
    text = text.replace("schedule: every 15m", "schedule: every 1m")
    head, _, _ = text.partition("  - name: aurora")  # app-db (rds) and assets (s3)
    text = head + "s3:" + text.split("s3:", 1)[1]
    text = text.replace("    schedule: every 1h", "    schedule: every 1m")
    path = tmp_path / "dr.yaml"
    path.write_text(text)
    return path, session.client("s3", world.DR)


def state_docs(s3, prefix):
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=STATE_BUCKET, Prefix=prefix)
            for o in page.get("Contents", ())]
    return {k: json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=k)["Body"].read()) for k in keys}


def env_for(tmp_path, name):
    env = dict(os.environ)
    env["DR_SPOOL_DIR"] = str(tmp_path / f"spool-{name}")
    return env


def test_two_daemons_run_each_slot_exactly_once(sandbox, tmp_path):
    config, s3 = sandbox
    anchor = time.time()
    start = datetime.fromtimestamp(anchor, timezone.utc)
    ports = [free_port(), free_port()]
    procs = []
    for i, port in enumerate(ports):
        err = open(tmp_path / f"sched-{i}.log", "w")
        procs.append(subprocess.Popen(
            dr_cmd("--config", str(config), "schedule", "--port", str(port), "--bind", "127.0.0.1",
                   "--json-logs", "--clock-start", start.isoformat(), "--clock-speed", "30",
                   "--clock-anchor", str(anchor)),
            cwd=tmp_path, env=env_for(tmp_path, i), stdout=subprocess.PIPE, stderr=err, text=True))
    try:
        health = [None, None]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(h is None for h in health):
            for i, port in enumerate(ports):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        health[i] = (r.status, json.loads(r.read()))
                except OSError:
                    time.sleep(0.2)
        assert all(h and h[0] == 200 and h[1]["status"] == "ok" for h in health), health
        time.sleep(10)  # five clock minutes: five slots per job
        metrics = ""
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics += r.read().decode()
        assert 'dr_job_last_success_timestamp_seconds{job="app-db"}' in metrics
        assert 'dr_rpo_seconds{resource="assets",kind="s3"}' in metrics
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=60) for p in procs]
    logs = [(tmp_path / f"sched-{i}.log").read_text() for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], logs
    events = [json.loads(line) for log in logs for line in log.splitlines() if line.startswith("{")]
    assert all("stopped cleanly" in out for out, _ in outs)

    started = Counter((e["job"], e["slot"]) for e in events if e.get("event") == "started")
    assert started and max(started.values()) == 1, started  # never the same slot twice
    assert {job for job, _ in started} == {"app-db", "assets"}
    assert len(started) >= 6, started
    lost = [e for e in events if e.get("event") == "claimed-elsewhere"]
    assert lost, "the two schedulers never raced for a slot"

    locks = state_docs(s3, "locks/schedule/")
    runs = state_docs(s3, "runs/")
    assert len(locks) == len(started)
    assert {d["owner"] for d in locks.values()} <= {e.get("owner") for e in events if e.get("owner")} | \
        {d["owner"] for d in locks.values()}
    by_slot = Counter()
    for record in runs.values():
        assert record["kind"] == "backup" and record["status"] == "completed", record
        slot = record["command"].split("slot ", 1)[1].rstrip(")")
        by_slot[(record["results"][0]["name"], slot)] += 1
    assert by_slot and max(by_slot.values()) == 1 and len(by_slot) == len(started)
    assert {d["run_id"] for d in locks.values()} == {r["run_id"] for r in runs.values()}


def test_two_once_processes_for_the_same_slot_run_it_once(sandbox, tmp_path):
    config, s3 = sandbox
    now = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    procs = [subprocess.Popen(dr_cmd("--output", "json", "--config", str(config), "schedule", "--once",
                                     "--clock-start", now),
                              cwd=tmp_path, env=env_for(tmp_path, i), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    docs = [json.loads(out) for out, _ in outs]
    outcomes = Counter((j["job"], j["outcome"]) for d in docs for j in d["jobs"])
    for job in ("app-db", "assets"):
        assert outcomes[(job, "completed")] == 1, outcomes
        assert outcomes[(job, "claimed by another scheduler")] + outcomes[(job, "already ran")] == 1
    runs = state_docs(s3, "runs/")
    assert sorted(r["results"][0]["name"] for r in runs.values()) == ["app-db", "assets"]
