"""`dr mongo status` end to end: real pymongo over the wire against fake members on loopback."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import pytest

from tests.support.mongo_wire import (
    SimMember,
    WireReplicaSet,
    mongo_main,
    three_regions,
    two_two_one,
    write_config,
)

ENTRY = "{name: app-rs, uri: {env: DR_MONGO_URI}, timeout: 2s}"


@pytest.fixture
def fake_set(monkeypatch):
    """Start a fake set from member specs; DR_MONGO_URI points at it; stopped after the test."""
    started = []

    def start(members, **kw) -> WireReplicaSet:
        rs = WireReplicaSet(members, **kw).start()
        started.append(rs)
        monkeypatch.setenv("DR_MONGO_URI", rs.uri)
        return rs

    yield start
    for rs in started:
        rs.stop()


def _json_docs(text: str) -> list:
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(text.rstrip()):
        doc, end = decoder.raw_decode(text, pos)
        docs.append(doc)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return docs


def test_three_region_set_is_healthy(fake_set, tmp_path, capsys):
    rs = fake_set(three_regions())
    code = mongo_main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "app-rs: replica set rs0, primary region us-east-1" in out
    for m in rs.members:
        assert m.host in out
    assert "Result: ok" in out and "survives the loss of 3 of 3 regions" in out
    assert ("127.0.0.1:" in out) and "SIMULATED" not in out


def test_json_is_one_document_with_oplog_windows_and_lag(fake_set, tmp_path, capsys):
    members = three_regions()
    members[2].oplog_window = 30 * 3600
    rs = fake_set(members)
    config = str(write_config(tmp_path, ENTRY))
    assert mongo_main(["--output", "json", "--config", config, "mongo", "status"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (report,) = doc["replica_sets"]
    assert doc["worst"] == "ok" and report["set"] == "rs0" and report["source"] == rs.members[0].host
    by_host = {m["host"]: m for m in report["members"]}
    assert by_host[rs.members[2].host]["oplog_window_seconds"] == pytest.approx(30 * 3600, abs=2)
    assert by_host[rs.members[1].host]["lag_seconds"] == 1.0
    assert all(m["reachable"] and m["rtt_ms"] is not None for m in report["members"])


def test_five_member_two_two_one_set_with_a_hidden_member(fake_set, tmp_path, capsys):
    members = two_two_one() + [SimMember("us-west-2", priority=0, votes=0, hidden=True,
                                         delay=3600, lag=3600, oplog_window=10 * 3600)]
    rs = fake_set(members)
    config = str(write_config(tmp_path, ENTRY))
    assert mongo_main(["--output", "json", "--config", config, "mongo", "status"]) == 0
    (report,) = json.loads(capsys.readouterr().out)["replica_sets"]
    assert report["survivable_region_losses"] == 3
    assert [r["votes"] for r in report["regions"]] == [1, 2, 2]  # eu-west-1, us-east-1, us-west-2
    hidden = report["members"][5]
    # The hidden member is not in hello's host lists: it was found in the config and probed too.
    assert hidden["hidden"] and hidden["oplog_window_seconds"] == pytest.approx(36000, abs=2)
    assert [f["member"] for f in report["findings"] if f["code"] == "oplog-window"] == [rs.members[5].host]


def test_critical_layout_exits_3(fake_set, tmp_path, capsys):
    fake_set([SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-east-1", priority=2),
              SimMember("us-west-2")])
    code = mongo_main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"])
    out = capsys.readouterr().out
    assert code == 3
    assert "CRITICAL  region-loss: losing us-east-1 leaves 1 of 3 votes: no primary can be elected" in out


def test_unreachable_members_are_named_and_the_others_still_reported(fake_set, tmp_path, capsys):
    members = two_two_one()
    members[3].down = True   # connection refused; the set sees it DOWN
    members[4].hang = True   # accepts connections and never answers: dr's probe times out
    rs = fake_set(members)
    config = str(write_config(tmp_path, "{name: app-rs, uri: {env: DR_MONGO_URI}, timeout: 1s}"))
    # exit 3: with a us-west-2 member down, losing us-east-1 would leave 2 of 5 votes
    assert mongo_main(["--output", "json", "--config", config, "mongo", "status"]) == 3
    (report,) = json.loads(capsys.readouterr().out)["replica_sets"]
    by_code = {}
    for f in report["findings"]:
        by_code.setdefault(f["code"], []).append(f)
    down = by_code["member-state"][0]
    assert down["member"] == rs.members[3].host and "is DOWN" in down["reason"]
    assert "connection refused" in down["reason"]
    hung = by_code["member-unreachable"][0]
    assert hung["member"] == rs.members[4].host and "no answer within 1s" in hung["reason"]
    reached = [m for m in report["members"] if m["reachable"]]
    assert len(reached) == 3 and all(m["oplog_window_seconds"] for m in reached)


def test_unreachable_member_that_costs_the_majority_is_critical(fake_set, tmp_path, capsys):
    members = three_regions()
    members[1].down = members[2].down = True
    rs = fake_set(members)
    code = mongo_main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"])
    out = capsys.readouterr().out
    assert code == 3
    assert f"CRITICAL  member-state: {rs.members[1].host} is DOWN" in out
    assert "majority-lost: only 1 of 3 votes are on healthy members" in out


@pytest.mark.parametrize("mode,expected", [
    ("standalone", "found a standalone mongod at 127.0.0.1:"),
    ("mongos", "found a mongos (a sharded cluster's router) at 127.0.0.1:"),
])
def test_standalone_and_mongos_are_refused_with_exit_2(fake_set, tmp_path, capsys, mode, expected):
    fake_set([SimMember("us-east-1", "PRIMARY")], mode=mode)
    code = mongo_main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "dr mongo status needs a replica set" in err
    assert "Traceback" not in err


def test_authentication_failure_is_one_clear_line(fake_set, tmp_path, capsys, monkeypatch):
    rs = fake_set(three_regions(), auth_fail=True)
    monkeypatch.setenv("DR_MONGO_URI", rs.uri_with_credentials("monitor", "hunter2"))
    config = str(write_config(tmp_path, ENTRY))
    code = mongo_main(["--output", "json", "--config", config, "mongo", "status"])
    captured = capsys.readouterr()
    assert code == 1
    doc = json.loads(captured.out)
    assert doc["exit_code"] == 1
    assert doc["error"].startswith("mongo app-rs: authentication failed for user 'monitor' "
                                   "(authSource admin)")
    assert "$DR_MONGO_URI" in doc["error"]
    assert "hunter2" not in captured.out + captured.err and "Traceback" not in captured.err


def test_nothing_reachable_exits_1(tmp_path, capsys, monkeypatch):
    from dr.sandbox.mongo import free_port

    monkeypatch.setenv("DR_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/?replicaSet=rs0")
    code = mongo_main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"])
    err = capsys.readouterr().err
    assert code == 1
    assert "mongo app-rs: cannot reach any member (127.0.0.1:" in err and "connection refused" in err


def test_members_are_probed_concurrently(fake_set, tmp_path):
    """Seven members each answering after 0.3 s: every oplog query reaches its member before the
    first one is answered, so the probes overlap (the benchmark measures the time)."""
    rs = fake_set([SimMember("us-east-1", "PRIMARY", latency=0.3)] +
                  [SimMember(r, latency=0.3) for r in ["us-east-1", "us-west-2", "us-west-2",
                                                       "eu-west-1", "eu-west-1", "us-east-1"]])
    from dr.config import load_config
    from dr.mongo.service import check_replica_set

    resource = load_config(write_config(tmp_path, ENTRY)).mongo[0]
    report = check_replica_set(resource, "us-east-1")
    assert all(m.oplog_window for m in report.members)
    finds = [(event, host) for event, host, name in rs.events if name == "find"]
    assert len(finds) == 28  # first and last entry on every member, each asked and answered
    assert {host for _, host in finds} == {m.host for m in rs.members}
    first_answer = finds.index(next(f for f in finds if f[0] == "out"))
    assert [event for event, _ in finds[:first_answer]] == ["in"] * 14


# --- --watch and metrics -------------------------------------------------------------------------------


class _StepClock:
    """A clock whose sleeps return at once and run the next scripted change to the fake set."""

    def __init__(self, steps):
        from dr.clock import Clock

        self._clock, self._steps = Clock(), list(steps)

    def now(self):
        return self._clock.now()

    def monotonic(self):
        return self._clock.monotonic()

    def sleep(self, seconds, cancel=None):
        if self._steps:
            self._steps.pop(0)()
        return False


def _run_watch(tmp_path, argv, clock):
    """Run the CLI with an App whose clock is `clock` (the CLI would make a wall clock)."""
    from unittest import mock

    import dr.cli.app as app_module
    from dr.cli.app import App

    original = App.__init__

    def init(self, *a, **kw):
        original(self, *a, **kw)
        self.clock = clock

    with mock.patch.object(app_module.App, "__init__", init):
        return mongo_main(argv)


def test_watch_prints_what_changed_between_polls(fake_set, tmp_path, capsys):
    rs = fake_set(three_regions())
    west, eu = rs.members[1], rs.members[2]
    steps = [lambda: setattr(west, "state", "ROLLBACK"),
             lambda: setattr(west, "state", "SECONDARY")]
    config = str(write_config(tmp_path, ENTRY))
    code = _run_watch(tmp_path, ["--config", config, "mongo", "status", "--watch", "1",
                                 "--polls", "3"], _StepClock(steps))
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("Members:") == 1  # the first poll in full, then only changes
    assert "poll 2: " in out and f"{west.host} SECONDARY -> ROLLBACK" in out
    assert f"{west.host} ROLLBACK -> SECONDARY" in out
    assert "resolved: " in out
    assert eu.host in out


def test_watch_json_prints_one_document_per_poll(fake_set, tmp_path, capsys):
    rs = fake_set(three_regions())
    steps = [lambda: setattr(rs.members[1], "lag", 40)]
    config = str(write_config(tmp_path, ENTRY))
    code = _run_watch(tmp_path, ["--output", "json", "--config", config, "mongo", "status",
                                 "--watch", "1", "--polls", "2"], _StepClock(steps))
    docs = _json_docs(capsys.readouterr().out)
    assert code == 0
    assert [d["poll"] for d in docs] == [1, 2]
    assert docs[0]["changes"] == []
    assert docs[1]["worst"] == "warning"
    assert [c["code"] for c in docs[1]["changes"]] == ["replication-lag"]


def test_metrics_endpoint_serves_prometheus_text(fake_set, tmp_path, capsys):
    from dr.sandbox.mongo import free_port

    rs = fake_set(two_two_one())
    port = free_port()
    config = str(write_config(tmp_path, ENTRY))
    scraped: list[str] = []

    def scrape():
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    body = resp.read().decode()
                    if "dr_mongo_up" in body:
                        scraped.append(resp.headers["Content-Type"])
                        scraped.append(body)
                        return
            except OSError:
                pass
            time.sleep(0.05)

    def sleep_until_scraped():
        deadline = time.monotonic() + 10
        while len(scraped) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    code = _run_watch(tmp_path, ["--config", config, "mongo", "status", "--watch", "1",
                                 "--polls", "2", "--metrics-port", str(port),
                                 "--metrics-address", "127.0.0.1"], _StepClock([sleep_until_scraped]))
    scraper.join()
    assert code == 0
    content_type, body = scraped
    assert content_type.startswith("text/plain; version=0.0.4")
    host = rs.members[2].host
    assert (f'dr_mongo_member_lag_seconds{{name="app-rs",set="rs0",member="{host}",'
            'region="us-west-2"} 1') in body
    assert 'dr_mongo_member_oplog_window_seconds{name="app-rs",set="rs0",member="' in body
    assert 'dr_mongo_region_members{name="app-rs",set="rs0",region="us-east-1"} 2' in body
    assert 'dr_mongo_region_votes{name="app-rs",set="rs0",region="eu-west-1"} 1' in body
    assert 'dr_mongo_survivable_region_losses{name="app-rs",set="rs0"} 3' in body
    assert "serving Prometheus metrics on http://127.0.0.1:" in capsys.readouterr().err


# --- the real CLI and a real set ------------------------------------------------------------------------


def test_dr_cli_main_has_the_mongo_command(fake_set, tmp_path, capsys):
    import dr.cli

    fake_set(three_regions())
    assert dr.cli.main(["--config", str(write_config(tmp_path, ENTRY)), "mongo", "status"]) == 0
    assert "Result: ok" in capsys.readouterr().out


@pytest.mark.skipif(not os.environ.get("DR_TEST_MONGO_URI"), reason="set DR_TEST_MONGO_URI to a "
                    "real replica set (user with clusterMonitor and read on local) to run this")
def test_against_a_real_replica_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DR_MONGO_URI", os.environ["DR_TEST_MONGO_URI"])
    config = str(write_config(tmp_path, "{name: real-rs, uri: {env: DR_MONGO_URI}, timeout: 5s}"))
    code = mongo_main(["--output", "json", "--config", config, "mongo", "status"])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 3), doc
    (report,) = doc["replica_sets"]
    assert report["members"] and all(m["state"] for m in report["members"])
