"""Alerts: one message per incident, one when it clears, shared by several schedulers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dr.scheduler.alerts import AlertBook, Condition, SnsPublisher, transition
from dr.state.local import LocalStore

T0 = datetime(2026, 3, 2, 13, 0, tzinfo=timezone.utc)


class Pub:
    def __init__(self):
        self.sent = []
        self.fail = False

    def publish(self, subject, message):
        if self.fail:
            raise TimeoutError("sns timed out")
        self.sent.append(subject)


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


def cond(failing, incident="i1", key="job-app-db"):
    return Condition(key, failing, incident, "[dr] subject " + ("open" if failing else "clear"), "body")


@pytest.mark.parametrize("doc, failing, step", [
    (None, True, "open"), (None, False, None),
    ({"open": True, "notified": True}, True, None), ({"open": True, "notified": False}, True, "retry-open"),
    ({"open": True}, False, "clear"), ({"open": False}, True, "open"), ({"open": False}, False, None),
])
def test_transition(doc, failing, step):
    assert transition(doc, failing) == step


def test_once_per_incident_and_once_on_clear(tmp_path):
    pub, clock = Pub(), Clock()
    book = AlertBook(LocalStore(tmp_path), pub, clock)
    assert book.observe(cond(True)) == "opened"
    for minutes in range(1, 60):
        clock.t = T0 + timedelta(minutes=minutes)
        assert book.observe(cond(True, incident=f"i{minutes}")) is None
    assert book.observe(cond(False)) == "cleared"
    assert book.observe(cond(False)) is None
    assert pub.sent == ["[dr] subject open", "[dr] subject clear"]
    state = book.state("job-app-db")
    assert state["open"] is False and state["incident"] == "i1" and state["cleared_at"]
    assert book.observe(cond(True, incident="i2")) == "opened"  # a new incident
    assert len(pub.sent) == 3


def test_state_survives_a_restart(tmp_path):
    pub = Pub()
    AlertBook(LocalStore(tmp_path), pub, Clock()).observe(cond(True))
    restarted = AlertBook(LocalStore(tmp_path), pub, Clock())
    assert restarted.observe(cond(True)) is None
    assert restarted.observe(cond(False)) == "cleared"
    assert len(pub.sent) == 2


def test_two_books_on_one_store_publish_once(tmp_path):
    pub = Pub()
    a = AlertBook(LocalStore(tmp_path), pub, Clock(), owner="a")
    b = AlertBook(LocalStore(tmp_path), pub, Clock(), owner="b")
    # both observed "no incident" before either wrote: simulate by observing from b first with
    # a's marker already claimed
    assert a.observe(cond(True)) == "opened"
    b._cache.clear()
    store = LocalStore(tmp_path)
    store.delete("alerts/job-app-db.json")  # b has not seen a's state document yet
    assert b.observe(cond(True)) is None  # the marker says someone else opened it
    assert pub.sent == ["[dr] subject open"]


def test_failed_publish_is_retried_at_the_next_observation(tmp_path):
    pub = Pub()
    pub.fail = True
    book = AlertBook(LocalStore(tmp_path), pub, Clock())
    assert book.observe(cond(True)) is None
    pub.fail = False
    assert book.observe(cond(True)) == "opened"
    assert book.observe(cond(True)) is None
    pub.fail = True
    assert book.observe(cond(False)) is None  # the clear message failed: still open
    pub.fail = False
    assert book.observe(cond(False)) == "cleared"
    assert pub.sent == ["[dr] subject open", "[dr] subject clear"]


def test_store_unreachable_still_alerts(tmp_path):
    class Down:
        description = "down"

        def __getattr__(self, name):
            def fail(*a, **k):
                raise ConnectionError("no route to host")
            return fail

    pub = Pub()
    book = AlertBook(Down(), pub, Clock())
    assert book.observe(cond(True)) == "opened"
    assert book.observe(cond(True)) is None  # remembered in memory
    assert book.observe(cond(False)) == "cleared"


def test_sns_subject_is_ascii_and_at_most_100_characters():
    from tests.support.aws_fake import FakeAws

    session = FakeAws()
    pub = SnsPublisher(session, "arn:aws:sns:eu-west-1:123456789012:dr-alerts")
    pub.publish("[dr] RPO breach: caf\u00e9 " + "x" * 200, "body")
    (sent,) = session.world.published
    assert sent["topic"] == "arn:aws:sns:eu-west-1:123456789012:dr-alerts" and pub.sns.region == "eu-west-1"
    assert sent["subject"].startswith("[dr] RPO breach: caf? ")
    assert len(sent["subject"]) == 100
