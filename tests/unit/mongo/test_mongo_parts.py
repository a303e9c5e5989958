"""Around the evaluator: watch diffs, metrics text, URIs and errors, the CLI's usage errors."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import FixedClock
from dr.errors import ConfigError, OperationFailed
from dr.mongo.metrics import render
from dr.mongo.evaluate import MemberProbe, evaluate
from dr.mongo.model import Settings
from dr.mongo.probe import describe, member_uri, scrub, seed_list
from dr.mongo.service import SetResult, results_dict, results_exit_code
from dr.render.mongo import report_text
from dr.sandbox.mongo import SimMember, SimSet, simulated_report
from dr.mongo.watch import report_changes, set_changes, watch

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=timezone.utc)
SETTINGS = Settings(name="app-rs", primary_region="us-east-1")


def report_for(members, name="app-rs"):
    sim = SimSet(members, now=NOW)
    probes = {m.host: MemberProbe(m.host, True, rtt_ms=12.5,
                                  oplog_first=sim.oplog_entry(m, True)["wall"],
                                  oplog_last=sim.oplog_entry(m, False)["wall"])
              for m in members if not m.arbiter and not m.down}
    return evaluate(sim.status_doc(), sim.config_doc(), probes,
                    Settings(name=name, primary_region="us-east-1"), checked_at=NOW)


def healthy():
    return [SimMember("us-east-1", "PRIMARY", priority=2), SimMember("us-west-2", lag=1),
            SimMember("eu-west-1", lag=2)]


# --- --watch ---------------------------------------------------------------------------------------


def test_report_changes_name_state_primary_and_findings():
    before = report_for(healthy())
    members = healthy()
    members[1].state = "ROLLBACK"
    members[2].lag = 50
    after = report_for(members)
    texts = [c["text"] for c in report_changes(before, after)]
    host1, host2 = members[1].host, members[2].host
    assert f"{host1} SECONDARY -> ROLLBACK" in texts
    assert any(t.startswith("warning: ") and host2 in t and "50s behind" in t for t in texts)
    back = [c["text"] for c in report_changes(after, before)]
    assert f"{host1} ROLLBACK -> SECONDARY" in back
    assert any(t.startswith("resolved: ") and "50s behind" in t for t in back)
    assert report_changes(before, report_for(healthy())) == []


def test_report_changes_new_primary():
    members = healthy()
    members[0].state, members[1].state = "SECONDARY", "PRIMARY"
    changes = report_changes(report_for(healthy()), report_for(members))
    assert changes[0]["kind"] == "primary" and changes[0]["to"] == members[1].host


def test_set_changes_report_failures_and_recovery():
    ok = [SetResult("app-rs", report_for(healthy()))]
    failed = [SetResult("app-rs", error=OperationFailed("mongo app-rs: cannot reach any member"))]
    assert set_changes(ok, failed)[0]["kind"] == "error"
    assert set_changes(failed, failed) == []
    assert set_changes(failed, ok)[0]["kind"] == "recovered"


def test_watch_polls_until_the_limit_and_diffs_each_poll():
    states = iter(["SECONDARY", "ROLLBACK", "ROLLBACK"])

    def check():
        members = healthy()
        members[1].state = next(states)
        return [SetResult("app-rs", report_for(members))]

    seen = []
    clock = FixedClock(NOW)
    last = watch(check, 15, clock=clock, polls=3, on_poll=lambda p, is_last: seen.append((p, is_last)))
    assert [p.index for p, _ in seen] == [1, 2, 3] and [x for _, x in seen] == [False, False, True]
    assert last is seen[-1][0]
    assert seen[0][0].changes == []
    assert any("SECONDARY -> ROLLBACK" in c["text"] for c in seen[1][0].changes)
    assert not any(c["kind"] == "member" for c in seen[2][0].changes)
    assert len(clock.slept) == 2 and all(0 < s <= 15 for s in clock.slept)
    doc = last.to_dict()
    assert doc["poll"] == 3 and doc["replica_sets"][0]["name"] == "app-rs"


# --- exit codes ----------------------------------------------------------------------------------------


def test_exit_codes_across_sets():
    ok = SetResult("a", report_for(healthy()))
    critical = SetResult("b", report_for([SimMember("us-east-1", "PRIMARY"), SimMember("us-east-1"),
                                          SimMember("us-west-2")], name="b"))
    failed = SetResult("c", error=OperationFailed("down"))
    misconfigured = SetResult("d", error=ConfigError("standalone"))
    assert results_exit_code([ok]) == 0
    assert results_exit_code([ok, critical]) == 3
    assert results_exit_code([critical, failed]) == 1
    assert results_exit_code([failed, misconfigured]) == 2
    doc = results_dict([ok, failed])
    assert doc["replica_sets"][1] == {"name": "c", "error": "down", "exit_code": 1}


# --- metrics --------------------------------------------------------------------------------------------


def test_metrics_text_uses_the_conventional_names_and_labels():
    report = report_for(healthy())
    text = render([SetResult("app-rs", report), SetResult("other", error=OperationFailed("x"))])
    host = report.members[1].host
    assert (f'dr_mongo_member_lag_seconds{{name="app-rs",set="rs0",member="{host}",'
            f'region="us-west-2"}} 1') in text
    assert f'dr_mongo_member_oplog_window_seconds{{name="app-rs",set="rs0",member="{host}"' in text
    assert 'dr_mongo_region_members{name="app-rs",set="rs0",region="us-east-1"} 1' in text
    assert 'dr_mongo_region_votes{name="app-rs",set="rs0",region="eu-west-1"} 1' in text
    assert 'dr_mongo_survivable_region_losses{name="app-rs",set="rs0"} 3' in text
    assert 'dr_mongo_up{name="other",set=""} 0' in text
    assert "# TYPE dr_mongo_member_lag_seconds gauge" in text
    assert 'dr_mongo_member_rtt_seconds{name="app-rs",set="rs0",member="' in text
    for line in text.splitlines():  # every sample line: name{labels} number
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_metrics_label_values_are_escaped():
    members = healthy()
    members[2].tags = {}
    members[2].region = 'we"ird\\re\ngion'
    text = render([SetResult("app-rs", report_for(members))])
    assert 'region="we\\"ird\\\\re\\ngion"' in text


# --- URIs and errors ------------------------------------------------------------------------------------


def test_member_uri_keeps_credentials_and_tls_and_drops_the_set_options():
    uri = ("mongodb://mon%40itor:p%2Fss@db1:27017,db2:27018/admin?replicaSet=rs0&tls=true"
           "&authSource=admin&readPreference=secondary&tlsCAFile=/etc/ca.pem")
    assert member_uri(uri, "db2:27018") == (
        "mongodb://mon%40itor:p%2Fss@db2:27018/admin?tls=true&authSource=admin&tlsCAFile=/etc/ca.pem")
    assert member_uri("mongodb://db1,db2/?replicaSet=rs0", "db2:27017") == "mongodb://db2:27017/"
    assert member_uri("mongodb://db1?replicaSet=rs0&w=1", "db1:27017") == "mongodb://db1:27017/?w=1"
    assert member_uri("mongodb+srv://u:p@cluster.example.com/?retryWrites=true", "a:27017",
                      {"options": {"authSource": "admin"}}) == \
        "mongodb://u:p@a:27017/?retryWrites=true&tls=true&authSource=admin"


def test_seed_list_and_bad_uris():
    seeds, parsed = seed_list("mongodb://u:pw@db1:27017,[::1]:27018/?replicaSet=rs0", "app-rs")
    assert seeds == ["db1:27017", "[::1]:27018"] and parsed["username"] == "u"
    with pytest.raises(ConfigError) as info:
        seed_list("http://u:hunter2@db1", "app-rs")
    assert "mongo app-rs: the uri is not a usable MongoDB URI" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_scrub_and_describe_hide_secrets_and_stay_short():
    assert scrub("bad uri mongodb://u:hunter2@x", "mongodb://u:hunter2@x") == "bad uri mongodb://u:****@x"
    from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

    assert describe(OperationFailure("Authentication failed.", 18), 5) == "authentication failed"
    assert describe(ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused "
                                                "(configured timeouts: ...), Timeout: 5s"), 5) \
        == "connection refused"
    assert describe(ServerSelectionTimeoutError("db:27017: timed out, Timeout: 2.0s"), 2) \
        == "no answer within 2s"


def test_simulated_report_without_the_wire_is_labelled():
    report = simulated_report(wire=False, clock=FixedClock(NOW))
    assert report.simulated and report.to_dict()["simulated"] is True
    assert "SIMULATED" in report_text(report)
    assert report.survivable_region_losses == 3
    assert [f.code for f in report.findings if f.severity == "warning"] == ["oplog-window"]


# --- CLI usage errors (no server needed) ------------------------------------------------------------------


def _parse(argv):
    from dr.cli import mongo

    parser = argparse.ArgumentParser()
    mongo.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _config(tmp_path, mongo_section: str):
    path = tmp_path / "dr.yaml"
    path.write_text("version: 1\nregions: {primary: us-east-1, dr: us-west-2}\n"
                    "objectives: {rpo: 1h, rto: 30m}\nkms: {dr_key: alias/dr-backups}\n"
                    f"state: {{path: ./state}}\n{mongo_section}")
    return str(path)


def test_cli_usage_errors(tmp_path):
    from dr.cli.app import App
    from dr.errors import UsageError

    app = App(config_path=_config(tmp_path, "mongo:\n  - {name: app-rs, uri: {env: X_URI}}\n"))
    args = _parse(["mongo", "status", "--metrics-port", "9216"])
    with pytest.raises(UsageError, match="--metrics-port serves metrics while --watch polls"):
        args.handler(args, app)
    args = _parse(["mongo", "status", "--name", "nope"])
    with pytest.raises(ConfigError, match="no mongo entry named 'nope'.*known: app-rs"):
        args.handler(args, app)
    args = _parse(["mongo", "status"])
    with pytest.raises(ConfigError, match="environment variable X_URI is not set"):
        args.handler(args, app)
    empty = App(config_path=_config(tmp_path, ""))
    with pytest.raises(ConfigError, match="no mongo replica sets in"):
        args.handler(args, empty)


def test_cli_durations():
    assert _parse(["mongo", "status", "--watch", "1m"]).watch == 60
    assert _parse(["mongo", "status", "--watch", "2.5", "--timeout", "2s"]).timeout == 2
    with pytest.raises(SystemExit):
        _parse(["mongo", "status", "--watch", "0"])
    with pytest.raises(SystemExit):
        _parse(["mongo", "status", "--watch", "soon"])


def test_member_probe_window():
    p = MemberProbe("h:1", True, oplog_first=NOW.replace(tzinfo=None), oplog_last=NOW + timedelta(hours=2))
    assert p.oplog_window == 7200
