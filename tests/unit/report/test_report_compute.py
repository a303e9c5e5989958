"""compute_report: RPO now, worst RPO from the gaps between copies, failures, drills, breaches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dr.config import parse_config
from dr.report import compute_report
from dr.report.compute import copy_events, rpo_series, worst_rpo
from dr.report.model import CopyEvent
from tests.support.report_history import backup_record, drill_record
from dr.clock import iso
from dr.state.records import ResourceResult, RunRecord

UTC = timezone.utc
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)

CONFIG_TEXT = """
version: 1
regions: {primary: us-east-1, dr: us-west-2}
objectives: {rpo: 1h, rto: 30m}
kms: {dr_key: alias/dr-backups}
state: {path: ./state}
rds:
  - {name: app-db, instance: acme-prod-db, schedule: every 1h}
s3:
  - {name: assets, source: acme-assets, destination: acme-assets-dr, schedule: every 15m}
mysql:
  - {name: office-lamp, host: 10.0.0.5, user: backup, password: {env: X}, databases: [app],
     destination: "s3://acme-dr-backups/mysql/", schedule: every 1h}
mongo:
  - {name: app-rs, uri: {env: DR_MONGO_URI}}
"""


@pytest.fixture
def config():
    return parse_config(CONFIG_TEXT, source="dr.yaml")


def copy(name, point, available=None, kind="rds-instance", status="completed", region="us-west-2",
         summary=None):
    """A backup record of `name` with one DR copy of data as of `point`, done at `available`."""
    available = available or point + timedelta(minutes=10)
    result = ResourceResult(name=name, kind=kind, status=status, started_at=iso(point),
                            finished_at=iso(available), summary=summary or {},
                            recovery_points=[{"id": "p", "region": "us-east-1", "role": "source",
                                              "created": iso(point)},
                                             {"id": f"p-{point:%H%M}", "region": region, "role": "copy",
                                              "created": iso(point)}])
    if status == "failed":
        result.error = "copy failed: KMSKeyNotAccessibleFault"
    return RunRecord(run_id=f"backup-{point:%Y%m%dT%H%M%S}Z-{abs(hash(name)) % 65536:04x}", kind="backup",
                     status=status, started_at=iso(point), finished_at=iso(available), results=[result])


def resource(report, name):
    return next(r for r in report.resources if r.name == name)


def test_rpo_now_is_the_age_of_the_newest_copy_in_the_dr_region(config):
    records = [copy("app-db", NOW - 5 * H), copy("app-db", NOW - 2 * H),
               copy("app-db", NOW - 30 * timedelta(minutes=1), region="us-east-1"),  # not the DR region
               copy("app-db", NOW - 10 * timedelta(minutes=1), status="failed")]  # not a good copy
    r = resource(compute_report(records, config, NOW, 30), "app-db")
    assert r.rpo == 2 * H and r.newest.point_id == "p-1000" and r.status == "breach"
    assert r.failures == 1 and "KMSKeyNotAccessibleFault" in r.recent_failures[0].error


def test_a_copy_in_flight_does_not_count_until_it_finished(config):
    records = [copy("app-db", NOW - 90 * timedelta(minutes=1)),
               copy("app-db", NOW - 20 * timedelta(minutes=1), available=NOW + timedelta(minutes=5))]
    assert resource(compute_report(records, config, NOW, 30), "app-db").rpo == timedelta(minutes=90)


def test_s3_point_time_is_when_a_complete_sync_began_not_the_newest_change(config):
    started = NOW - timedelta(minutes=20)
    rec = copy("assets", NOW - 9 * 24 * H, kind="s3", summary={"in_sync_as_of": iso(started)})
    rec.results[0].started_at = iso(started)
    r = resource(compute_report([rec], config, NOW, 30), "assets")
    assert r.rpo == timedelta(minutes=20) and r.status == "ok"


def test_worst_rpo_is_the_largest_gap_from_a_point_to_the_next_copy_landing():
    t = NOW - 10 * H
    events = [CopyEvent("x", t + k * H, t + k * H + timedelta(minutes=10), "p", "r", "run")
              for k in (0, 1, 2, 6, 7)]  # an outage between +2h and +6h
    worst, at, covered = worst_rpo(events, NOW - 30 * 24 * H, NOW)
    assert worst == timedelta(hours=4, minutes=10) and at == t + 6 * H + timedelta(minutes=10)
    assert covered == events[0].available_at  # no copy existed at the start of the period
    worst, at, _ = worst_rpo(events, NOW - 30 * 24 * H, NOW + 10 * H)  # nothing since: now wins
    assert worst == NOW + 10 * H - events[-1].point_time and at == NOW + 10 * H


def test_worst_rpo_counts_from_a_copy_made_before_the_period():
    start = NOW - 24 * H
    events = [CopyEvent("x", start - 3 * H, start - 3 * H, "p", "r", "run"),
              CopyEvent("x", start + H, start + H, "p", "r", "run")]
    worst, _, covered = worst_rpo(events, start, NOW)
    assert worst == NOW - (start + H) and covered is None
    worst, at, _ = worst_rpo(events, start, start + 2 * H)
    assert worst == 4 * H and at == start + H


def test_rpo_series_is_the_worst_rpo_in_each_interval():
    start = NOW - 4 * H
    half = H / 2
    events = [CopyEvent("x", start + k * H + half, start + k * H + half, "p", "r", "run") for k in (1, 2)]
    series = rpo_series(events, start, NOW, 4)
    assert [t for t, _ in series] == [start + k * H for k in (1, 2, 3, 4)]
    # no copy yet; copy at 1h30 (RPO 30m at 2h); before the 2h30 copy RPO was 1h; 1h30 at the end
    assert [v for _, v in series] == [None, 1800, 3600, 5400]


def test_status_per_kind_and_findings(config):
    records = [copy("app-db", NOW - 30 * timedelta(minutes=1)),
               copy("assets", NOW - 3 * H, kind="s3")]
    report = compute_report(records, config, NOW, 30)
    assert {r.name: r.status for r in report.resources} == {
        "app-db": "ok", "assets": "breach", "office-lamp": "no-copy", "app-rs": "unmeasured"}
    assert report.breach
    assert "assets: newest copy in us-west-2 is 3h old, over the RPO objective 1h" in report.findings
    assert "office-lamp: no copy in us-west-2 (objective 1h)" in report.findings
    assert any("app-rs: replicated, not copied by dr" in n for n in report.notes)
    assert any("no drill recorded" in n for n in report.notes)


def test_within_objective_everywhere_is_not_a_breach(config):
    records = [copy(n, NOW - 20 * timedelta(minutes=1), kind=k) for n, k in
               (("app-db", "rds-instance"), ("assets", "s3"), ("office-lamp", "mysql"))]
    report = compute_report(records, config, NOW, 30)
    assert not report.breach and report.findings == ()


def test_failures_outside_the_period_are_not_counted(config):
    records = [copy("app-db", NOW - 40 * 24 * H, status="failed"), copy("app-db", NOW - 2 * H, status="failed"),
               copy("app-db", NOW - 20 * timedelta(minutes=1))]
    assert resource(compute_report(records, config, NOW, 30), "app-db").failures == 1


def test_a_run_that_failed_before_any_resource_is_listed(config):
    rec = RunRecord(run_id="backup-20260331T100000Z-0001", kind="backup", status="failed",
                    started_at=iso(NOW - 2 * H), error="DR key alias/dr-backups not found in us-west-2")
    report = compute_report([rec], config, NOW, 30)
    assert report.run_failures[0].error.startswith("DR key")


def test_drills_newest_first_and_the_last_one_decides(config):
    ok = drill_record(NOW - 20 * 24 * H, rto_objective=30 * timedelta(minutes=1), rpo_objective=H)
    bad = drill_record(NOW - 5 * 24 * H, rto_objective=30 * timedelta(minutes=1), rpo_objective=H, met=False)
    records = [copy(n, NOW - 20 * timedelta(minutes=1), kind=k) for n, k in
               (("app-db", "rds-instance"), ("assets", "s3"), ("office-lamp", "mysql"))]
    report = compute_report(records + [ok, bad], config, NOW, 30)
    assert [d.run_id for d in report.drills] == [bad.run_id, ok.run_id]
    assert report.breach and "did not meet the objectives" in report.findings[0]
    last = report.last_drill
    assert [s.name for s in last.steps][:2] == ["check-readiness", "restore-db"]
    assert all(s.duration and s.duration > timedelta(0) for s in last.steps)
    report = compute_report(records + [ok], config, NOW, 30)
    assert not report.breach and report.last_drill.met


def test_the_newest_drill_is_shown_even_if_older_than_the_period(config):
    old = drill_record(NOW - 100 * 24 * H, rto_objective=30 * timedelta(minutes=1), rpo_objective=H)
    report = compute_report([old], config, NOW, 30)
    assert report.drills[0].run_id == old.run_id
    assert any("drill at least quarterly" in n for n in report.notes)


def test_drill_met_is_computed_when_the_summary_lacks_it(config):
    rec = RunRecord(run_id="drill-20260330T100000Z-0001", kind="drill", status="completed",
                    started_at=iso(NOW - 26 * H), summary={"rto_seconds": 2400, "rpo_seconds": 600})
    d = compute_report([rec], config, NOW, 30).drills[0]
    assert d.met is False and d.rto == timedelta(minutes=40) and d.rto_objective == timedelta(minutes=30)


def test_odd_values_are_skipped_not_fatal(config):
    rec = copy("app-db", NOW - H)
    rec.results[0].recovery_points.append({"region": "us-west-2", "role": "copy", "created": "yesterday"})
    rec.results[0].recovery_points.append("not a dict")
    rec.results[0].summary = "not a dict"
    drill = RunRecord(run_id="drill-x", kind="drill", status="completed", started_at="garbage")
    report = compute_report([rec, drill], config, NOW, 30)
    assert resource(report, "app-db").rpo == H and report.drills == ()


def test_copy_events_reads_only_completed_dr_copies():
    rec = copy("app-db", NOW - H)
    assert [(e.resource, e.point_time) for e in copy_events(rec, "us-west-2")] == [("app-db", NOW - H)]
    assert copy_events(rec, "eu-west-1") == []


def test_sample_history_is_deterministic(config):
    from tests.support.report_history import history

    a = history([("app-db", "rds-instance")], NOW, 3)
    b = history([("app-db", "rds-instance")], NOW, 3)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
    assert backup_record("x", "s3", NOW, primary="a", dr="b").results[0].summary["in_sync_as_of"]


def test_naive_now_is_refused(config):
    with pytest.raises(ValueError):
        compute_report([], config, NOW.replace(tzinfo=None), 30)


def test_an_rds_copy_is_as_old_as_its_source_snapshot_not_the_copy():
    snapshot, copied = NOW - 3 * H, NOW - 2 * H  # AWS stamps a copy with the time it was copied
    rec = copy("app-db", snapshot)
    rec.results[0].recovery_points[0]["id"] = "dr-app-db-x"
    rec.results[0].recovery_points[1].update(id="dr-app-db-x", created=iso(copied))
    assert copy_events(rec, "us-west-2")[0].point_time == snapshot


def test_a_missed_drill_names_the_objective_it_missed_never_the_rto_for_the_rpo(config):
    rpo_missed = RunRecord(run_id="drill-20260330T100000Z-0002", kind="drill", status="completed",
                           started_at=iso(NOW - 26 * H),
                           summary={"rto_seconds": 2, "rto_traffic_seconds": 62, "rpo_seconds": 7200,
                                    "rpo_status": "measured", "met": False})
    (finding,) = [f for f in compute_report([rpo_missed], config, NOW, 30).findings if "last drill" in f]
    assert finding.endswith("did not meet the objectives: RPO 2h vs objective 1h") and "RTO" not in finding
    unknown = RunRecord(run_id="drill-20260330T100000Z-0003", kind="drill", status="completed",
                        started_at=iso(NOW - 26 * H),
                        summary={"rto_seconds": 2, "rpo_seconds": None, "rpo_status": "unknown",
                                 "rpo_note": "step db restored no recovery point", "met": False})
    (finding,) = [f for f in compute_report([unknown], config, NOW, 30).findings if "last drill" in f]
    assert finding.endswith("RPO unknown (step db restored no recovery point)")


def test_a_drill_that_restores_no_data_passes_on_its_rto_with_the_rpo_not_applicable(config):
    from dr.report import render

    stack_only = RunRecord(run_id="drill-20260330T100000Z-0004", kind="drill", status="completed",
                           started_at=iso(NOW - 26 * H),
                           summary={"rto_seconds": 3, "rto_traffic_seconds": 63, "rpo_seconds": None,
                                    "rpo_status": "not applicable", "rpo_note": "the runbook restores no data",
                                    "met": True})
    report = compute_report([stack_only], config, NOW, 30)
    assert report.drills[0].met and not [f for f in report.findings if "last drill" in f]
    assert " met      3s           1m3s         30m            n/a " in render(report, "text")


def test_copies_counts_recovery_points_not_the_runs_that_recorded_them(config):
    first = copy("app-db", NOW - 2 * H)
    again = copy("app-db", NOW - 2 * H, available=NOW - H)  # a rerun in the same slot: same snapshot
    again.run_id = again.run_id.replace("backup-", "backup-") + "b"
    assert resource(compute_report([first, again], config, NOW, 30), "app-db").copies == 1
    assert resource(compute_report([first, again, copy("app-db", NOW - H)], config, NOW, 30), "app-db").copies == 2
