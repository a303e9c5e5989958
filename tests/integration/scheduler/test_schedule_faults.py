"""The scheduler against the sandbox when things go wrong: the state store drops mid-run (no record
is lost), a job keeps failing (SNS gets one message per incident and one when it clears)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import FixedClock
from dr.config import load_config
from dr.context import make_context, open_store
from dr.report import compute_report
from dr.report.load import load_records
from dr.sandbox import world
from dr.scheduler import jobs as J
from dr.scheduler.daemon import Options, Scheduler
from dr.scheduler.runners import run_backup_job
from dr.scheduler.spool import SpoolingStore

pytestmark = [pytest.mark.integration, pytest.mark.localstack]
STATE_BUCKET = "acme-dr-state"


def settle(s):
    s.tick()
    for st in s.states.values():
        if st.running and st.running.thread:
            st.running.thread.join(120)
    s.tick()


@pytest.fixture
def bucket_config(seeded, boto):
    boto("s3", world.DR).create_bucket(Bucket=STATE_BUCKET,
                                       CreateBucketConfiguration={"LocationConstraint": world.DR})
    text = seeded.config_path.read_text().replace(f'state: {{path: "{seeded.state_dir}"}}',
                                                  f"state: {{bucket: {STATE_BUCKET}}}")
    return seeded.write_config(text)


def test_state_store_unreachable_mid_run_loses_nothing(bucket_config, boto, tmp_path):
    config = load_config(bucket_config)
    now = datetime.now(timezone.utc)
    clock = FixedClock(now)
    ctx = make_context(config, clock=clock,
                       store=SpoolingStore(lambda: open_store(config, ctx.aws), tmp_path / "spool", now=clock.now))
    down = threading.Event()

    def unreachable(request, **_):
        if down.is_set() and STATE_BUCKET in request.url:
            raise ConnectionRefusedError("injected: the state bucket is unreachable")

    ctx.aws.boto_session.events.register("before-send.s3.*", unreachable)

    def runner(job_ctx, job, slot):
        down.set()  # the network to the state bucket drops as the backup starts
        return run_backup_job(job_ctx, job, slot)

    jobs = [j for j in J.jobs_from_config(config) if j.name == "assets"]
    s = Scheduler(ctx, jobs, options=Options(owner="test"), runner=runner, publisher=_NoPublish())
    s.load_state()
    settle(s)
    healthy, doc = s.health()
    assert not healthy and any("state store unreachable" in r for r in doc["reasons"])
    spooled = ctx.store.pending()
    assert any(k.startswith("put/runs/backup-") for k in spooled), spooled
    assert any(k.startswith("put/manifests/s3/assets/") for k in spooled), spooled
    s3 = boto("s3", world.DR)
    assert s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="runs/")["KeyCount"] == 0
    assert s.metrics.job("assets").last_status == "completed"  # the copy itself went fine

    down.clear()
    s.flush(force=True)
    s.tick()
    assert s.health()[0] and ctx.store.pending() == []
    runs = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="runs/")["Contents"]
    record = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=runs[0]["Key"])["Body"].read())
    assert record["status"] == "completed" and record["results"][0]["name"] == "assets"
    lock = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=J.lock_key("assets", J.slot_start(
        jobs[0].schedule, now)))["Body"].read())
    assert lock["status"] == "completed" and lock["run_id"] == record["run_id"]
    loaded = load_records(ctx.store, config, now + timedelta(minutes=1), 1)
    report = compute_report(loaded.records, config, now + timedelta(minutes=1), 1)
    assert next(r for r in report.resources if r.name == "assets").status == "ok"


class _NoPublish:
    def publish(self, subject, message):
        pass


@pytest.mark.moto_only("the failing job is an RDS instance (no RDS in LocalStack community); "
                       "test_portable_aws.py has the same alerts for an S3 job")
def test_a_failing_job_alerts_once_and_once_on_recovery_over_sns(seeded, boto):
    sns, sqs = boto("sns", world.DR), boto("sqs", world.DR)
    topic = sns.create_topic(Name="dr-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="dr-alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    text = seeded.config_path.read_text().split("  - name: aurora")[0]
    text = text.replace(f"instance: {world.INSTANCE}", "instance: acme-ghost-db")
    seeded.write_config(text + f"notify: {{sns_topic: {topic}}}\n")
    config = load_config(seeded.config_path)

    t0 = datetime.now(timezone.utc) - timedelta(hours=2)  # the last step is now: moto stamps real time
    clock = FixedClock(t0)
    ctx = make_context(config, clock=clock)
    s = Scheduler(ctx, J.jobs_from_config(config), options=Options(owner="test"))
    s.load_state()
    settle(s)  # the instance does not exist
    clock.set(t0 + timedelta(hours=1))
    settle(s)  # an hour later: still failing, same incident
    boto("rds", world.PRIMARY).create_db_instance(
        DBInstanceIdentifier="acme-ghost-db", Engine="mysql", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="acme", MasterUserPassword="sandbox-only-password")
    clock.set(t0 + timedelta(hours=2))
    settle(s)  # now: backed up
    assert s.metrics.job("app-db").runs["failed"] == 2
    assert s.metrics.job("app-db").last_status == "completed"

    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        messages += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                          for i, m in enumerate(got)])
    subjects = sorted(m["Subject"] for m in messages)
    assert subjects == ["[dr] backup of app-db failed", "[dr] backup of app-db succeeds again"], subjects
    failed = next(m["Message"] for m in messages if m["Subject"].endswith("failed"))
    assert "acme-ghost-db" in failed and "dr runs show backup-" in failed
