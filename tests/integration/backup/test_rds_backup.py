"""RDS backups against a moto server process: look in the DR region afterwards and check."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import datetime, timedelta, timezone

import pytest

from dr.backup.service import prune, run_backup
from dr.cli import main
from dr.clock import FixedClock
from dr.errors import Interrupted
from dr.sandbox import world as W
from dr.state.records import RunStore
from dr.state.local import LocalStore

from tests.integration.conftest import query_error

pytestmark = pytest.mark.integration


def tags_of(client, arn):
    return {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceName=arn)["TagList"]}


def manual(client, instance=None, cluster=None):
    if cluster:
        return client.describe_db_cluster_snapshots(DBClusterIdentifier=cluster,
                                                    SnapshotType="manual")["DBClusterSnapshots"]
    return client.describe_db_snapshots(DBInstanceIdentifier=instance,
                                        SnapshotType="manual")["DBSnapshots"]


def runs_in(state_dir):
    return RunStore(LocalStore(state_dir)).list()


def test_backup_copies_each_database_to_dr_region_under_dr_key(seeded, boto, capsys):
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 0
    dr_rds, src_rds = boto("rds", "us-west-2"), boto("rds", "us-east-1")

    (copy,) = manual(dr_rds, instance=W.INSTANCE)
    (source,) = [s for s in manual(src_rds, instance=W.INSTANCE)
                 if s["DBSnapshotIdentifier"] != W.HAND_MADE_SNAPSHOT]
    assert copy["DBSnapshotIdentifier"] == source["DBSnapshotIdentifier"]
    assert copy["DBSnapshotIdentifier"].startswith("dr-app-db-")
    assert copy["Status"] == "available"
    assert copy["Encrypted"] is True
    assert copy["KmsKeyId"] == seeded.dr_key_arn  # the DR key, not the source-region key
    assert source["KmsKeyId"] == seeded.primary_key_arn
    tags = tags_of(dr_rds, copy["DBSnapshotArn"])
    assert tags["dr:managed"] == "true" and tags["dr:name"] == "app-db"
    assert tags["dr:role"] == "copy" and tags["dr:copy-of"] == source["DBSnapshotArn"]
    assert tags["dr:source-id"] == W.INSTANCE and tags["dr:source-region"] == "us-east-1"
    assert "dr:created-at" in tags and "dr:slot" in tags
    assert tags_of(src_rds, source["DBSnapshotArn"])["dr:role"] == "source"

    (ccopy,) = manual(dr_rds, cluster=W.CLUSTER)
    assert ccopy["KmsKeyId"] == seeded.dr_key_arn and ccopy["StorageEncrypted"] is True
    assert tags_of(dr_rds, ccopy["DBClusterSnapshotArn"])["dr:name"] == "aurora"

    (record,) = runs_in(seeded.state_dir)
    assert record.status == "completed" and record.kind == "backup"
    by_name = {r.name: r for r in record.results}
    assert by_name["app-db"].status == "completed"
    roles = {p["role"]: p for p in by_name["app-db"].recovery_points}
    assert roles["copy"]["kms_key_id"] == seeded.dr_key_arn
    assert [s.name for s in by_name["app-db"].steps] == [
        "snapshot", "wait-snapshot", "copy", "wait-copy", "verify"]
    assert all(s.status == "completed" and s.finished_at for s in by_name["aurora"].steps)
    assert "completed" in capsys.readouterr().out


def test_rerun_in_same_slot_takes_no_second_snapshot(seeded, boto):
    for _ in range(2):
        assert main(["--config", str(seeded.config_path), "backup", "run"]) == 0
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 1
    assert len(manual(boto("rds", "us-east-1"), instance=W.INSTANCE)) == 2  # + the hand-made one
    assert len(manual(boto("rds", "us-east-1"), cluster=W.CLUSTER)) == 1
    assert [r.status for r in runs_in(seeded.state_dir)] == ["completed", "completed"]


def test_dry_run_calls_no_mutating_api_and_writes_nothing(seeded, boto):
    ctx = seeded.context()
    calls = []
    ctx.aws.boto_session.events.register(
        "before-call", lambda model, **kw: calls.append(model.name))
    outcome = run_backup(ctx, dry_run=True)
    assert outcome.record is None
    assert {i.name for i in outcome.plan if i.kind == "rds"} == {"app-db", "aurora"}
    assert any("create snapshot" in a for a in outcome.plan[0].actions)
    assert calls and all(c.startswith(("Describe", "List", "Get", "Head")) for c in calls), calls
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 0
    assert not seeded.state_dir.exists() or runs_in(seeded.state_dir) == []


def test_unencrypted_instance_is_encrypted_by_the_copy(seeded, boto):
    boto("rds", "us-east-1").create_db_instance(
        DBInstanceIdentifier="legacy-db", Engine="mysql", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="a", MasterUserPassword="password123",
        StorageEncrypted=False)
    seeded.write_config(seeded.config_path.read_text().replace(
        "instance: acme-prod-db", "instance: legacy-db"))
    assert main(["--config", str(seeded.config_path), "backup", "run", "--name", "app-db"]) == 0
    (copy,) = manual(boto("rds", "us-west-2"), instance="legacy-db")
    assert copy["Encrypted"] is True and copy["KmsKeyId"] == seeded.dr_key_arn


def test_missing_dr_key_fails_clearly_and_creates_nothing(seeded, boto, capsys):
    seeded.write_config(seeded.config_path.read_text().replace(
        "dr_key: alias/dr-backups", "dr_key: alias/no-such-key"))
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 1
    out = capsys.readouterr().out
    assert "alias/no-such-key" in out and "us-west-2" in out and "create a customer managed key" in out
    assert len(manual(boto("rds", "us-east-1"), instance=W.INSTANCE)) == 1  # only the hand-made one
    (record,) = runs_in(seeded.state_dir)
    assert record.status == "failed"
    assert all(r.status == "failed" and "alias/no-such-key" in r.error for r in record.results)


def test_key_in_wrong_region_is_refused(seeded, boto):
    # An alias that exists only in the primary region: a copy under it would not survive.
    seeded.write_config(seeded.config_path.read_text().replace(
        "dr_key: alias/dr-backups", "dr_key: alias/acme-prod"))
    outcome = run_backup(seeded.context())
    assert outcome.record.status == "failed"
    assert "not found in the DR region us-west-2" in outcome.record.results[0].error


def test_missing_instance_fails_alone_others_are_backed_up(seeded, boto, capsys):
    seeded.write_config(seeded.config_path.read_text().replace("s3:\n", (
        "  - name: ghost\n    instance: ghost-db\n    schedule: every 1h\ns3:\n")))
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 1
    assert "ghost-db not found in us-east-1" in capsys.readouterr().out
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 1
    assert len(manual(boto("rds", "us-west-2"), cluster=W.CLUSTER)) == 1
    (record,) = runs_in(seeded.state_dir)
    status = {r.name: r.status for r in record.results}
    assert status == {"app-db": "completed", "aurora": "completed", "ghost": "failed",
                      "assets": "completed"}


def test_access_denied_names_resource_region_and_fix(seeded, boto):
    ctx = seeded.context()
    ctx.aws.boto_session.events.register(
        "before-send.rds.CreateDBClusterSnapshot",
        lambda **kw: query_error(403, "AccessDenied", "not authorized to rds:CreateDBClusterSnapshot"))
    outcome = run_backup(ctx)
    results = {r.name: r for r in outcome.record.results}
    assert results["app-db"].status == "completed"
    assert results["aurora"].status == "failed"
    err = results["aurora"].error
    assert "acme-aurora" in err and "us-east-1" in err and "AccessDenied" in err
    assert "IAM" in err


def test_unencrypted_cluster_is_refused_with_the_reason(seeded, boto):
    boto("rds", "us-east-1").create_db_cluster(
        DBClusterIdentifier="plain-aurora", Engine="aurora-mysql", MasterUsername="a",
        MasterUserPassword="password123", StorageEncrypted=False)
    seeded.write_config(seeded.config_path.read_text().replace(
        "cluster: acme-aurora", "cluster: plain-aurora"))
    outcome = run_backup(seeded.context(), name="aurora")
    (result,) = outcome.record.results
    assert result.status == "failed" and "not encrypted" in result.error
    assert manual(boto("rds", "us-east-1"), cluster="plain-aurora") == []


def test_throttling_and_5xx_are_retried_and_the_run_succeeds(seeded, boto):
    ctx = seeded.context()
    injected = {"CopyDBSnapshot": [query_error(400, "Throttling", "Rate exceeded"),
                                   query_error(503, "ServiceUnavailable")],
                "CreateDBSnapshot": [query_error(500, "InternalFailure")]}
    seen = []

    def inject(event_name, **kw):
        operation = event_name.rsplit(".", 1)[-1]
        queue = injected.get(operation)
        if queue:
            seen.append(operation)
            return queue.pop(0)
        return None

    ctx.aws.boto_session.events.register("before-send.rds", inject)
    outcome = run_backup(ctx, name="app-db")
    assert outcome.record.status == "completed"
    assert sorted(seen) == ["CopyDBSnapshot", "CopyDBSnapshot", "CreateDBSnapshot"]
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 1


def test_copy_quota_is_retried_with_backoff(seeded, boto):
    clock = FixedClock(datetime.now(timezone.utc))
    ctx = seeded.context(clock=clock)
    replies = [query_error(400, "SnapshotQuotaExceeded", "too many copies in progress")]
    ctx.aws.boto_session.events.register(
        "before-send.rds.CopyDBSnapshot", lambda **kw: replies.pop() if replies else None)
    outcome = run_backup(ctx, name="app-db")
    assert outcome.record.status == "completed"
    assert clock.slept and clock.slept[0] > 0  # it backed off before trying again


def test_ctrl_c_during_wait_exits_130_and_rerun_completes_without_second_snapshot(seeded, boto):
    ctx = seeded.context()

    def still_copying(parsed, **kw):  # moto makes copies available at once; real AWS does not
        for snap in parsed.get("DBSnapshots", []):
            if ":us-west-2:" in snap.get("DBSnapshotArn", ""):
                snap["Status"] = "copying"

    ctx.aws.boto_session.events.register("after-call.rds.DescribeDBSnapshots", still_copying)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(Interrupted) as info:
            run_backup(ctx, name="app-db")
    finally:
        timer.cancel()
    assert info.value.exit_code == 130
    (record,) = runs_in(seeded.state_dir)
    assert record.status == "interrupted"
    steps = {s.name: s.status for s in record.results[0].steps}
    assert steps["wait-copy"] == "interrupted" and steps["snapshot"] == "completed"

    again = run_backup(seeded.context(), name="app-db")
    assert again.record.status == "completed"
    sources = [s for s in manual(boto("rds", "us-east-1"), instance=W.INSTANCE)
               if s["DBSnapshotIdentifier"].startswith("dr-")]
    assert len(sources) == 1
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 1


def test_prune_deletes_exactly_the_expected_snapshots_and_nothing_unmanaged(seeded, boto):
    seeded.write_config(seeded.config_path.read_text().replace(
        "retention: {last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12}",
        "retention: {last: 2}"))
    start = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    ids = []
    for hour in range(4):  # four scheduled slots, 09:00 .. 12:00
        outcome = run_backup(seeded.context(clock=FixedClock(start + timedelta(hours=hour))),
                             name="app-db")
        assert outcome.record.status == "completed"
        ids.append(outcome.plan[0].fields["snapshot_id"])
    # A hand-made snapshot named like dr's, without dr's tags: never touched.
    boto("rds", "us-west-2").create_db_instance(
        DBInstanceIdentifier=W.INSTANCE, Engine="mysql", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="a", MasterUserPassword="password123")
    boto("rds", "us-west-2").create_db_snapshot(DBInstanceIdentifier=W.INSTANCE,
                                                DBSnapshotIdentifier="dr-app-db-19990101-0000")

    dry = prune(seeded.context(), name="app-db", dry_run=True)
    assert sorted(d.point.id for d in dry.decisions["rds"] if not d.keep) == sorted(ids[:2] * 2)
    assert all(s["Status"] == "available" for s in manual(boto("rds", "us-east-1"), instance=W.INSTANCE))
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 5  # dry run deleted nothing

    done = prune(seeded.context(), name="app-db")
    assert not done.failed and len(done.deleted) == 4
    for region in ("us-east-1", "us-west-2"):
        left = {s["DBSnapshotIdentifier"] for s in manual(boto("rds", region), instance=W.INSTANCE)}
        assert set(ids[2:]) <= left and not (set(ids[:2]) & left)
    assert W.HAND_MADE_SNAPSHOT in {s["DBSnapshotIdentifier"]
                                    for s in manual(boto("rds", "us-east-1"), instance=W.INSTANCE)}
    assert "dr-app-db-19990101-0000" in {
        s["DBSnapshotIdentifier"] for s in manual(boto("rds", "us-west-2"), instance=W.INSTANCE)}
    assert runs_in(seeded.state_dir)[0].kind == "prune"


def test_list_json_is_one_document_newest_first_with_age_and_key(seeded, capsys):
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 0
    capsys.readouterr()
    assert main(["--output", "json", "--config", str(seeded.config_path), "backup", "list"]) == 0
    doc = json.loads(capsys.readouterr().out)
    points = doc["recovery_points"]
    assert {(p["resource"], p["region"], p["role"]) for p in points} == {
        ("app-db", "us-east-1", "source"), ("app-db", "us-west-2", "copy"),
        ("aurora", "us-east-1", "source"), ("aurora", "us-west-2", "copy")}
    created = [p["created"] for p in points]
    assert created == sorted(created, reverse=True)
    copy = next(p for p in points if p["role"] == "copy")
    assert copy["kms_key_id"] == seeded.dr_key_arn and copy["age_seconds"] >= 0


def test_readiness_reports_missing_copies_then_passes(seeded, capsys):
    from dr.sandbox import world as W

    # the backup sections only: the stack template's checks need the sandbox's fidelity patches
    # (plain moto's ValidateTemplate fails on a cfn-lint warning); test_failover_safety covers them
    seeded.write_config(W.config_text(seeded.endpoint, seeded.state_dir, failover=False))
    args = ["--config", str(seeded.config_path), "validate", "--readiness"]
    assert main(args) == 3
    assert "no copy in us-west-2 yet" in capsys.readouterr().out
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 0
    assert main(args) == 0


def test_run_records_go_to_an_encrypted_state_bucket_in_the_dr_region(seeded, boto):
    boto("s3", "us-west-2").create_bucket(
        Bucket="acme-dr-state", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    text = seeded.config_path.read_text()
    seeded.write_config(text.replace(f'state: {{path: "{seeded.state_dir}"}}',
                                     "state: {bucket: acme-dr-state, prefix: dr}"))
    assert "acme-dr-state" in seeded.config_path.read_text()
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 0
    s3 = boto("s3", "us-west-2")
    (obj,) = s3.list_objects_v2(Bucket="acme-dr-state", Prefix="dr/runs/")["Contents"]
    head = s3.head_object(Bucket="acme-dr-state", Key=obj["Key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == seeded.dr_key_arn
    record = json.loads(s3.get_object(Bucket="acme-dr-state", Key=obj["Key"])["Body"].read())
    assert record["status"] == "completed" and len(record["results"]) == 3


def test_state_bucket_in_the_wrong_region_is_refused(seeded, boto, capsys):
    boto("s3", "us-east-1").create_bucket(Bucket="acme-dr-state")
    text = seeded.config_path.read_text()
    seeded.write_config(text.replace(f'state: {{path: "{seeded.state_dir}"}}',
                                     "state: {bucket: acme-dr-state}"))
    assert main(["--config", str(seeded.config_path), "backup", "run"]) == 1
    assert "acme-dr-state" in capsys.readouterr().err
    assert len(manual(boto("rds", "us-west-2"), instance=W.INSTANCE)) == 0
