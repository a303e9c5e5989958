"""dr drill and dr restore --to-region on the sandbox (the patched simulator users get)."""

from __future__ import annotations

import json

import pytest

from dr.aws import AwsSession
from dr.backup.service import run_backup
from dr.cli import main
from dr.config import load_config
from dr.context import make_context
from dr.sandbox import world as W
from dr.sandbox.server import EmbeddedAws
from dr.state.local import LocalStore
from dr.state.records import RunStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox():
    with EmbeddedAws() as aws:
        yield aws.endpoint


@pytest.fixture
def world(sandbox, tmp_path):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{sandbox}/moto-api/reset", method="POST"))
    session = AwsSession(endpoint_url=sandbox)
    W.seed(session)
    path = tmp_path / "dr.yaml"
    path.write_text(W.config_text(sandbox, tmp_path / "state"))
    assert run_backup(make_context(load_config(path))).record.status == "completed"
    return path, session, tmp_path / "state"


def www(session):
    r53 = session.client("route53", "us-east-1")
    zone = r53.list_hosted_zones_by_name(DNSName=W.ZONE)["HostedZones"][0]["Id"]
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {(s["Name"], s["Type"]): [r["Value"] for r in s.get("ResourceRecords", [])]
            for s in sets if s["Type"] in ("A", "CNAME")}


def stacks(session, region="us-west-2"):
    cfn = session.client("cloudformation", region)
    return [s["StackName"] for s in cfn.describe_stacks()["Stacks"]
            if s["StackStatus"] != "DELETE_COMPLETE"]


def dr_instances(session):
    return [d["DBInstanceIdentifier"] for d in
            session.client("rds", "us-west-2").describe_db_instances()["DBInstances"]]


def test_drill_measures_rto_rpo_touches_no_production_and_leaves_nothing(world, capsys):
    path, session, state = world
    before = www(session)
    assert main(["--output", "json", "--config", str(path), "drill"]) == 0
    doc = json.loads(capsys.readouterr().out)
    measured = doc["measured"]
    assert measured["met"] is True and measured["rto_seconds"] > 0
    assert 0 <= measured["rpo_seconds"] < 3600 and measured["recovery_point_time"]
    assert www(session) == before  # production DNS untouched, the drill record removed
    assert stacks(session) == [] and dr_instances(session) == []  # torn down
    steps = doc["run"]["steps"]
    assert steps["flip"]["outputs"]["record"].startswith("drill-")
    assert steps["stack"]["outputs"]["stack_name"].startswith("acme-web-drill-")
    (record,) = RunStore(LocalStore(state)).list(kind="drill")
    assert record.summary["met"] is True and record.summary["rto_seconds"] == measured["rto_seconds"]


def test_drill_keep_leaves_the_drill_stack(world, capsys):
    path, session, _ = world
    assert main(["--config", str(path), "drill", "--keep"]) == 0
    assert [s for s in stacks(session) if s.startswith("acme-web-drill-")]
    assert len(dr_instances(session)) == 1


def test_failover_dry_run_changes_nothing(world, capsys):
    path, session, _ = world
    before = www(session)
    assert main(["--config", str(path), "restore", "--to-region", "us-west-2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "dns.flip" in out
    assert www(session) == before and stacks(session) == []


def test_failover_needs_confirmation_and_the_dr_region(world, capsys):
    path, _, _ = world
    assert main(["--config", str(path), "restore", "--to-region", "us-west-2"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["--config", str(path), "restore", "--to-region", "eu-west-1", "--yes"]) == 2


def test_failover_moves_production_after_health_passes(world, capsys):
    path, session, _ = world
    assert main(["--config", str(path), "restore", "--to-region", "us-west-2", "--yes"]) == 0
    assert "acme-web" in stacks(session)
    records = www(session)
    assert records[(W.RECORD, "A")] == ["127.0.0.1"]  # the health-checked host


def test_failover_refuses_a_copy_older_than_the_rpo(world, capsys):
    path, session, _ = world
    path.write_text(path.read_text().replace("rpo: 1h", "rpo: 1s"))
    import time

    time.sleep(1.5)
    before = www(session)
    assert main(["--config", str(path), "restore", "--to-region", "us-west-2", "--yes"]) == 1
    assert www(session) == before and stacks(session) == []
    capsys.readouterr()
    assert main(["--config", str(path), "restore", "--to-region", "us-west-2", "--yes",
                 "--accept-data-loss"]) == 0
