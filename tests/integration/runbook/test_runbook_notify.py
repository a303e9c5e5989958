"""The notify step against a real SNS API (moto server): hooks publish at start, end and failure."""

from __future__ import annotations

import json

import pytest

from dr.aws import AwsSession
from dr.runbook import EngineContext, parse_runbook, run_runbook
from dr.runbook.steps import REGISTRY
from dr.state.local import LocalStore
from tests.support.runbook_world import CONFIG, make_config

pytestmark = [pytest.mark.integration, pytest.mark.localstack]

RUNBOOK = """\
version: 1
name: told
steps:
  - {id: hello, type: notify, with: {at: start, message: "starting ${run.id}"}}
  - {id: alarm, type: notify, with: {at: failure, message: "${run.name} ${run.status}", subject: "dr alarm"}}
  - {id: bye, type: notify, with: {at: end, message: "ended ${run.status}"}}
  - {id: mid, type: notify, with: {message: "halfway in ${run.region}"}}
  - {id: boom, type: fail, needs: [mid]}
"""


@pytest.fixture
def topic_and_queue(boto):
    sns, sqs = boto("sns", "us-west-2"), boto("sqs", "us-west-2")
    topic = sns.create_topic(Name="dr-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, sqs, queue


def _received(sqs, queue) -> list[dict]:
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]


def test_notify_publishes_every_moment_of_a_failed_run(tmp_path, endpoint, topic_and_queue):
    topic, sqs, queue = topic_and_queue
    config = make_config(tmp_path, CONFIG + f"notify: {{sns_topic: \"{topic}\"}}\n")
    runbook = parse_runbook(RUNBOOK, "told.yaml", config, REGISTRY)
    said = []
    result = run_runbook(runbook, EngineContext(config=config, session=AwsSession(endpoint_url=endpoint),
                                                store=LocalStore(tmp_path / "state"), log=said.append))
    assert result.status == "failed"
    assert result.steps["mid"].outputs["sent"] is True and result.steps["mid"].outputs["message_id"]
    assert [h.id for h in result.hooks] == ["hello", "alarm", "bye"]
    messages = sorted((m.get("Subject"), m["Message"]) for m in _received(sqs, queue))
    assert messages == sorted([(f"dr {result.run_id}", f"starting {result.run_id}"),
                               (f"dr {result.run_id}", "halfway in us-west-2"),
                               ("dr alarm", "told failed"), (f"dr {result.run_id}", "ended failed")])
    assert "[mid] notify: halfway in us-west-2" in said


def test_a_failed_publish_is_logged_not_fatal_unless_required(tmp_path, endpoint):
    missing = "arn:aws:sns:us-west-2:123456789012:does-not-exist"
    config = make_config(tmp_path, CONFIG + f"notify: {{sns_topic: \"{missing}\"}}\n")
    text = ("version: 1\nname: n\nsteps:\n  - {id: soft, type: notify, with: {message: hi}}\n"
            "  - {id: hard, type: notify, needs: [soft], with: {message: hi, required: true}}\n")
    said = []
    result = run_runbook(parse_runbook(text, "n.yaml", config, REGISTRY),
                         EngineContext(config=config, session=AwsSession(endpoint_url=endpoint),
                                       store=LocalStore(tmp_path / "state"), log=said.append))
    assert result.steps["soft"].status == "completed" and result.steps["soft"].outputs["sent"] is False
    assert result.steps["hard"].status == "failed"
    assert any("could not publish" in m for m in said)
