"""The replica-set evaluator on realistic status/config documents: pure, no server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from bson import Int64, Timestamp

from dr.mongo.evaluate import MemberProbe, evaluate
from dr.mongo.model import Settings
from dr.render.mongo import report_text
from dr.sandbox.mongo import SimMember, SimSet
from dr.mongo.votes import write_majority_count

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=timezone.utc)
SETTINGS = Settings(name="app-rs", primary_region="us-east-1", dr_region="us-west-2")


def _ts(when: datetime) -> Timestamp:
    return Timestamp(int(when.timestamp()), 1)


# A replSetGetStatus / replSetGetConfig pair as MongoDB 7.0 returns them (trimmed of fields the
# evaluator ignores), for a 1-1-1 set over three regions; naive datetimes, as pymongo decodes them
# by default.
LAST = datetime(2025, 3, 14, 11, 59, 58)
STATUS = {
    "set": "rs0", "date": datetime(2025, 3, 14, 12, 0, 0), "myState": 1, "term": Int64(12),
    "heartbeatIntervalMillis": Int64(2000), "majorityVoteCount": 2, "writeMajorityCount": 2,
    "votingMembersCount": 3, "writableVotingMembersCount": 3,
    "members": [
        {"_id": 0, "name": "mongo-a.use1.internal:27017", "health": 1.0, "state": 1,
         "stateStr": "PRIMARY", "uptime": 912345, "optime": {"ts": _ts(LAST), "t": Int64(12)},
         "optimeDate": LAST, "syncSourceHost": "", "syncSourceId": -1, "infoMessage": "",
         "electionTime": Timestamp(1741000000, 1), "configVersion": 5, "configTerm": 12,
         "self": True, "lastHeartbeatMessage": ""},
        {"_id": 1, "name": "mongo-b.usw2.internal:27017", "health": 1.0, "state": 2,
         "stateStr": "SECONDARY", "uptime": 912300,
         "optime": {"ts": _ts(LAST - timedelta(seconds=2)), "t": Int64(12)},
         "optimeDate": LAST - timedelta(seconds=2), "lastHeartbeat": datetime(2025, 3, 14, 11, 59, 59),
         "pingMs": Int64(68), "lastHeartbeatMessage": "", "syncSourceHost": "mongo-a.use1.internal:27017",
         "syncSourceId": 0, "infoMessage": "", "configVersion": 5, "configTerm": 12},
        {"_id": 2, "name": "mongo-c.euw1.internal:27017", "health": 1.0, "state": 2,
         "stateStr": "SECONDARY", "uptime": 912311,
         "optime": {"ts": _ts(LAST - timedelta(seconds=5)), "t": Int64(12)},
         "optimeDate": LAST - timedelta(seconds=5), "lastHeartbeat": datetime(2025, 3, 14, 11, 59, 59),
         "pingMs": Int64(79), "lastHeartbeatMessage": "", "syncSourceHost": "mongo-a.use1.internal:27017",
         "syncSourceId": 0, "infoMessage": "", "configVersion": 5, "configTerm": 12},
    ],
    "ok": 1.0,
}
CONFIG = {"config": {
    "_id": "rs0", "version": 5, "term": 12, "protocolVersion": Int64(1),
    "members": [
        {"_id": 0, "host": "mongo-a.use1.internal:27017", "arbiterOnly": False, "buildIndexes": True,
         "hidden": False, "priority": 2.0, "tags": {"region": "us-east-1", "az": "use1-az1"},
         "secondaryDelaySecs": Int64(0), "votes": 1},
        {"_id": 1, "host": "mongo-b.usw2.internal:27017", "arbiterOnly": False, "buildIndexes": True,
         "hidden": False, "priority": 1.0, "tags": {"region": "us-west-2"},
         "secondaryDelaySecs": Int64(0), "votes": 1},
        {"_id": 2, "host": "mongo-c.euw1.internal:27017", "arbiterOnly": False, "buildIndexes": True,
         "hidden": False, "priority": 1.0, "tags": {"region": "eu-west-1"},
         "secondaryDelaySecs": Int64(0), "votes": 1},
    ],
    "settings": {"chainingAllowed": True, "heartbeatIntervalMillis": 2000,
                 "electionTimeoutMillis": 10000},
}, "ok": 1.0}


def _probe(host: str, window_hours: float = 72, last: datetime = NOW) -> MemberProbe:
    return MemberProbe(host, True, rtt_ms=70.0, oplog_first=last - timedelta(hours=window_hours),
                       oplog_last=last)


def run(members: list[SimMember], settings: Settings = SETTINGS, probes=None, **kw):
    """Evaluate the documents a SimSet builds for these members (oplog windows probed as given)."""
    sim = SimSet(members, "rs0", now=NOW, **kw)
    if probes is None:
        probes = {m.host: MemberProbe(m.host, True, rtt_ms=1.0,
                                      oplog_first=sim.oplog_entry(m, True)["wall"],
                                      oplog_last=sim.oplog_entry(m, False)["wall"])
                  for m in members if not m.down and not m.arbiter}
    return evaluate(sim.status_doc(), sim.config_doc(), probes, settings, checked_at=NOW)


def codes(report, severity: str | None = None) -> list[str]:
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def finding(report, code: str, region: str | None = None, member: str | None = None):
    hits = [f for f in report.findings if f.code == code
            and (region is None or f.region == region) and (member is None or f.member == member)]
    assert hits, f"no {code} finding in {[f.to_dict() for f in report.findings]}"
    return hits[0]


# --- realistic literal documents ---------------------------------------------------------------------


def test_healthy_three_region_set_from_literal_documents():
    probes = {m["host"]: _probe(m["host"]) for m in CONFIG["config"]["members"]}
    report = evaluate(STATUS, CONFIG, probes, SETTINGS, checked_at=NOW, source="mongo-a:27017")
    assert report.worst == "ok", [f.to_dict() for f in report.findings if f.severity != "ok"]
    assert report.set_name == "rs0"
    assert report.survivable_region_losses == 3
    lags = {m.host.split(".")[0]: m.lag for m in report.members}
    assert lags == {"mongo-a": 0.0, "mongo-b": 2.0, "mongo-c": 5.0}
    assert [m.region for m in report.members] == ["us-east-1", "us-west-2", "eu-west-1"]
    assert {m.oplog_window for m in report.members} == {72 * 3600.0}
    loss = {r.region: r for r in report.region_losses}
    assert loss["us-east-1"].votes_left == 2 and loss["us-east-1"].can_elect
    assert loss["us-east-1"].electable_left == ("mongo-b.usw2.internal:27017",
                                                "mongo-c.euw1.internal:27017")
    assert finding(report, "priority-placement").severity == "ok"


def test_lag_comes_from_the_one_status_document_not_from_the_probes():
    # The probes ran at different moments (their last oplog entries differ by minutes): lag
    # must still be the primary's optimeDate minus the member's, from the status document.
    probes = {m["host"]: _probe(m["host"], last=NOW - timedelta(minutes=i * 3))
              for i, m in enumerate(CONFIG["config"]["members"])}
    report = evaluate(STATUS, CONFIG, probes, SETTINGS, checked_at=NOW)
    assert [m.lag for m in report.members] == [0.0, 2.0, 5.0]
    assert "replication-lag" not in codes(report)


def test_json_form_is_serialisable_and_complete():
    probes = {m["host"]: _probe(m["host"]) for m in CONFIG["config"]["members"]}
    doc = evaluate(STATUS, CONFIG, probes, SETTINGS, checked_at=NOW).to_dict()
    json.dumps(doc)
    assert doc["worst"] == "ok" and doc["set"] == "rs0" and doc["survivable_region_losses"] == 3
    assert {"host", "region", "state", "votes", "priority", "lag_seconds", "oplog_window_seconds",
            "rtt_ms", "reachable"} <= set(doc["members"][0])
    assert {"code", "severity", "member", "region", "reason", "fix"} == set(doc["findings"][0])
    assert doc["region_loss"][0]["region"] in ("us-east-1", "us-west-2", "eu-west-1")


# --- region loss ---------------------------------------------------------------------------------------


def test_primary_region_holding_the_majority_of_votes_is_critical():
    report = run([SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-east-1", priority=2),
                  SimMember("us-west-2")])
    f = finding(report, "region-loss", region="us-east-1")
    assert f.severity == "critical"
    assert f.reason == "losing us-east-1 leaves 1 of 3 votes: no primary can be elected"
    assert "no region holds more than 1 of the 3" in f.fix
    assert finding(report, "region-loss", region="us-west-2").severity == "ok"
    assert report.worst == "critical" and report.survivable_region_losses == 1


def test_losing_the_big_region_of_five_leaves_two_of_five_votes():
    report = run([SimMember("us-east-1", "PRIMARY", priority=2)] +
                 [SimMember("us-east-1", priority=2) for _ in range(2)] +
                 [SimMember("us-west-2") for _ in range(2)])
    assert finding(report, "region-loss", region="us-east-1").reason == (
        "losing us-east-1 leaves 2 of 5 votes: no primary can be elected")


def test_two_two_one_layout_survives_the_loss_of_any_region():
    report = run([SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-east-1", priority=2),
                  SimMember("us-west-2"), SimMember("us-west-2"), SimMember("eu-west-1", priority=0)])
    assert report.worst == "ok"
    assert report.survivable_region_losses == 3
    assert {r.region: r.votes for r in report.regions} == {"us-east-1": 2, "us-west-2": 2,
                                                           "eu-west-1": 1}
    east = {r.region: r for r in report.region_losses}["us-east-1"]
    assert (east.votes_left, east.total_votes, east.majority) == (3, 5, 3)
    assert len(east.electable_left) == 2  # the eu-west-1 tie-breaker has priority 0


def test_enough_votes_but_nobody_electable_is_critical():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", priority=0),
                  SimMember("eu-west-1", priority=0)])
    f = finding(report, "region-loss", region="us-east-1")
    assert f.severity == "critical" and "no electable member" in f.reason
    assert finding(report, "priority-placement").severity == "critical"


# --- arbiters and w:majority ------------------------------------------------------------------------


def test_arbiter_votes_but_does_not_acknowledge_majority_writes():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2"),
                  SimMember("eu-west-1", "ARBITER")])
    west = finding(report, "region-loss-majority-writes", region="us-west-2")
    assert west.severity == "critical"
    assert "leaves 2 of 3 votes, enough to elect a primary" in west.reason
    assert "only 1 of the 2 data-bearing voting members" in west.reason
    east = finding(report, "region-loss-majority-writes", region="us-east-1")
    assert east.severity == "critical"
    assert finding(report, "region-loss", region="eu-west-1").severity == "ok"
    arbiter = report.members[2]
    assert arbiter.arbiter and arbiter.lag is None and arbiter.oplog_window is None


def test_write_majority_count_follows_the_server():
    sim = SimSet([SimMember("a", "PRIMARY"), SimMember("a"), SimMember("b"),
                  SimMember("b", "ARBITER"), SimMember("c", "ARBITER"),
                  SimMember("c", priority=0, votes=0)], now=NOW)
    report = evaluate(sim.status_doc(), sim.config_doc(), {}, SETTINGS, checked_at=NOW)
    # 5 voting members → majority 3; 3 of them hold data → writeMajorityCount min(3, 3) = 3
    assert write_majority_count(list(report.members)) == 3 == sim.status_doc()["writeMajorityCount"]
    assert report.current.write_majority == 3 and report.current.majority == 3
    assert "arbiters" in codes(report, "warning")


def test_majority_writes_blocked_now_when_data_bearing_members_are_down():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", down=True),
                  SimMember("eu-west-1", "ARBITER")])
    assert "majority-writes-blocked" in codes(report, "critical")
    assert "majority-lost" not in codes(report)
    down = finding(report, "member-state")
    assert down.severity == "critical" and down.member.startswith("db2.")


# --- member states, lag, oplog ------------------------------------------------------------------------


def test_lagging_secondary_is_a_warning_naming_it():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", lag=45),
                  SimMember("eu-west-1", lag=1)])
    f = finding(report, "replication-lag")
    assert f.severity == "warning" and f.region == "us-west-2"
    assert f.reason == f"{f.member} is 45s behind the primary (max_lag 30s)"
    assert "takeover-lag" not in codes(report)  # eu-west-1 could take over with 1s of loss


def test_every_standby_lagging_means_a_region_loss_loses_writes():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", lag=90),
                  SimMember("eu-west-1", lag=120)])
    f = finding(report, "takeover-lag")
    assert f.severity == "critical"
    assert "losing us-east-1 now loses at least 1m30s of writes" in f.reason


def test_short_oplog_window_is_a_warning():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", oplog_window=6 * 3600),
                  SimMember("eu-west-1")])
    f = finding(report, "oplog-window")
    assert f.severity == "warning" and f.region == "us-west-2"
    assert "oplog covers 6h, less than min_oplog_window 1d" in f.reason
    assert "replSetResizeOplog" in f.fix


def test_no_primary_is_critical_and_lag_is_measured_from_the_freshest():
    report = run([SimMember("us-east-1", down=True), SimMember("us-west-2", lag=3),
                  SimMember("eu-west-1", lag=10)])
    f = finding(report, "no-primary")
    assert f.severity == "critical"
    assert [m.lag for m in report.members] == [None, 0.0, 7.0]
    assert finding(report, "member-state").severity == "warning"  # 2 of 3 votes still healthy


def test_member_in_rollback_is_a_warning_and_still_votes():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", "ROLLBACK"),
                  SimMember("eu-west-1")])
    f = finding(report, "member-state")
    assert f.severity == "warning" and "ROLLBACK" in f.reason and f.region == "us-west-2"
    assert report.current.votes_left == 3  # a member in ROLLBACK still votes...
    assert report.current.acks_left == 2   # ...but does not acknowledge writes


def test_majority_lost_makes_down_members_critical():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", down=True),
                  SimMember("eu-west-1", down=True)])
    assert "majority-lost" in codes(report, "critical")
    assert [f.severity for f in report.findings if f.code == "member-state"] == ["critical"] * 2


def test_hidden_delayed_member_counts_as_neither_electable_nor_lagging():
    report = run([SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-west-2"),
                  SimMember("eu-west-1"),
                  SimMember("us-west-2", priority=0, votes=0, hidden=True, delay=3600, lag=3610)])
    delayed = report.members[3]
    assert not delayed.electable and delayed.lag == 3610
    assert "replication-lag" not in codes(report)
    assert report.worst == "ok"
    assert {r.region: r.votes for r in report.regions}["us-west-2"] == 1


def test_delayed_member_lagging_beyond_its_delay_warns():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2"), SimMember("eu-west-1"),
                  SimMember("us-west-2", priority=0, votes=0, hidden=True, delay=3600, lag=3700)])
    assert "1m40s more than its 1h delay" in finding(report, "replication-lag").reason


def test_voting_delayed_member_warns_and_can_hold_majority_writes():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-east-1"),
                  SimMember("us-west-2"), SimMember("eu-west-1", down=True),
                  SimMember("eu-west-1", priority=0, hidden=True, delay=3600, lag=3600)])
    assert "delayed-member-votes" in codes(report, "warning")
    west = {r.region: r for r in report.region_losses}["us-west-2"]
    assert west.majority_writes == "delayed"


def test_member_unreachable_from_dr_but_healthy_for_the_set():
    members = [SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2"), SimMember("eu-west-1")]
    sim = SimSet(members, now=NOW)
    probes = {m.host: _probe(m.host) for m in members}
    probes[members[2].host] = MemberProbe(members[2].host, False, "no answer within 5s")
    report = evaluate(sim.status_doc(), sim.config_doc(), probes, SETTINGS, checked_at=NOW)
    f = finding(report, "member-unreachable")
    assert f.severity == "warning" and f.member == members[2].host
    assert "no answer within 5s" in f.reason
    assert report.members[2].oplog_window is None


# --- regions and priorities --------------------------------------------------------------------------


def test_unknown_region_is_a_warning_and_member_regions_fill_in():
    members = [SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2", tag_region=False),
               SimMember("eu-west-1", tag_region=False)]
    report = run(members)
    unknown = [f for f in report.findings if f.code == "region-unknown"]
    assert len(unknown) == 2 and all(f.severity == "warning" for f in unknown)
    settings = Settings(name="app-rs", primary_region="us-east-1",
                        member_regions={members[1].host: "us-west-2"})
    report = run(members, settings)
    assert [m.region_source for m in report.members] == ["tag", "member_regions", "unknown"]
    assert [f.member for f in report.findings if f.code == "region-unknown"] == [members[2].host]


def test_custom_region_tag():
    settings = Settings(name="app-rs", primary_region="us-east-1", region_tag="dc")
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2"),
                  SimMember("eu-west-1")], settings, region_tag="dc")
    assert "region-unknown" not in codes(report)


def test_priority_placement_equal_priorities_warn():
    report = run([SimMember("us-east-1", "PRIMARY"), SimMember("us-west-2"), SimMember("eu-west-1")])
    f = finding(report, "priority-placement")
    assert f.severity == "warning" and "as high as any in us-east-1" in f.reason


def test_primary_outside_the_primary_region_warns():
    report = run([SimMember("us-east-1", priority=2), SimMember("us-west-2", "PRIMARY"),
                  SimMember("eu-west-1")])
    assert finding(report, "primary-outside-primary-region").region == "us-west-2"


def test_dr_region_without_electable_member_warns():
    report = run([SimMember("us-east-1", "PRIMARY", priority=2), SimMember("eu-west-1"),
                  SimMember("us-west-2", priority=0)])
    assert finding(report, "dr-region-not-electable").severity == "warning"


def test_fifty_members_evaluate():
    regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1", "sa-east-1"]
    members = [SimMember(regions[i % 5], "PRIMARY" if i == 0 else "SECONDARY",
                         votes=1 if i < 7 else 0, priority=1 if i < 7 else 0, lag=i % 9)
               for i in range(50)]
    report = run(members)
    assert len(report.members) == 50 and report.current.total_votes == 7


@pytest.mark.parametrize("severity", ["ok", "warning", "critical"])
def test_render_text_names_every_finding(severity):
    members = {"ok": [SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-west-2"),
                      SimMember("eu-west-1")],
               "warning": [SimMember("us-east-1", "PRIMARY", priority=2),
                           SimMember("us-west-2", lag=40), SimMember("eu-west-1")],
               "critical": [SimMember("us-east-1", "PRIMARY"), SimMember("us-east-1"),
                            SimMember("us-west-2")]}[severity]
    report = run(members)
    assert report.worst == severity
    text = report_text(report)
    assert f"Result: {severity}" in text
    for f in report.findings:
        assert f.reason in text
    assert "SIMULATED" not in text


def test_a_sick_member_is_told_apart_from_a_bad_layout():
    members = [SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-east-1", priority=2),
               SimMember("us-west-2"), SimMember("us-west-2", down=True),
               SimMember("eu-west-1", priority=0)]
    report = run(members)
    f = finding(report, "region-loss", region="us-east-1")
    assert f.severity == "critical"
    assert f.reason == (f"losing us-east-1 leaves 2 of 5 votes: no primary can be elected; "
                        f"already unwell: {members[3].host} DOWN")
    assert f.fix == (f"bring back {members[3].host}: with every member healthy the set survives "
                     "losing us-east-1")
    loss = {r.region: r for r in report.region_losses}["us-east-1"]
    assert loss.survivable_by_design and not loss.survivable
