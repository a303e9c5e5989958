"""Loading run records defensively: malformed ones are skipped with a warning naming them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from dr.config import parse_config
from dr.report import compute_report, render
from dr.report.load import load_records, newest_copies, parse_record
from tests.support.report_history import backup_record, drill_record
from dr.state.local import LocalStore
from dr.state.records import RunStore
from tests.unit.report.test_report_compute import CONFIG_TEXT

UTC = timezone.utc
NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def config():
    return parse_config(CONFIG_TEXT, source="dr.yaml")


def save(store, *records):
    for r in records:
        RunStore(store).save(r)


def test_malformed_records_are_skipped_with_a_warning_naming_them(tmp_path):
    store = LocalStore(tmp_path)
    good = backup_record("app-db", "rds-instance", NOW - H, primary="us-east-1", dr="us-west-2")
    save(store, good)
    (tmp_path / "runs" / "backup-20260331T100000Z-dead.json").write_text("{not json")
    store.put_json("runs/backup-20260331T100100Z-beef.json", {"run_id": "x", "kind": "backup",
                                                               "results": "not a list"})
    store.put_json("runs/backup-20260331T100200Z-cafe.json", {"run_id": "y", "kind": "backup",
                                                               "status": "completed", "started_at": "noon"})
    (tmp_path / "runs" / "backup-20260331T100300Z-f00d.json").write_text('["a", "list"]')
    store.put_json("runs/prune-20260331T100300Z-f00d.json", {"ignored": "not read at all"})
    loaded = load_records(store, config(), NOW, 30)
    assert [r.run_id for r in loaded.records] == [good.run_id]
    assert len(loaded.warnings) == 4
    for name in ("dead", "beef", "cafe", "f00d"):
        assert any("runs/backup-20260331T10" in w and name in w for w in loaded.warnings)
    assert all(w.startswith("skipped malformed run record") for w in loaded.warnings)
    report = compute_report(loaded.records, config(), NOW, 30, warnings=loaded.warnings)
    assert "backup-20260331T100000Z-dead.json" in render(report, "text")
    assert "backup-20260331T100000Z-dead.json" in render(report, "html")


def test_only_the_period_is_read_plus_the_copies_just_before_it(tmp_path):
    store = LocalStore(tmp_path)
    old = [backup_record("app-db", "rds-instance", NOW - timedelta(days=d), primary="us-east-1",
                         dr="us-west-2") for d in range(84, 44, -1)]  # 40 daily copies before the period
    recent = backup_record("app-db", "rds-instance", NOW - 2 * H, primary="us-east-1", dr="us-west-2")
    drill = drill_record(NOW - timedelta(days=120), rto_objective=30 * timedelta(minutes=1), rpo_objective=H)
    save(store, *old, recent, drill)
    cfg = parse_config(CONFIG_TEXT.split("s3:")[0], source="dr.yaml")  # app-db only
    loaded = load_records(store, cfg, NOW, 30)
    ids = {r.run_id for r in loaded.records}
    assert recent.run_id in ids and old[-1].run_id in ids  # the newest copy before the period
    assert old[0].run_id not in ids  # read newest first, in batches: never the whole history
    assert drill.run_id in ids  # the newest drill, though older than the period
    report = compute_report(loaded.records, cfg, NOW, 30)
    assert report.resources[0].worst_rpo > timedelta(days=29)


def test_newest_copies_reads_today_first(tmp_path):
    store = LocalStore(tmp_path)
    records = [backup_record(n, "rds-instance", NOW - k * H, primary="us-east-1", dr="us-west-2",
                             rng=random.Random(f"{n}{k}")) for k in range(1, 48) for n in ("app-db", "assets")]
    save(store, *records)
    store.put_json("runs/backup-20260331T115900Z-0bad.json", {"broken": True})
    newest, warnings = newest_copies(store, config(), NOW)
    assert set(newest) == {"app-db", "assets"}
    assert newest["app-db"].point_time > NOW - timedelta(minutes=61)
    assert warnings and "0bad" in warnings[0]


def test_parse_record_accepts_records_from_a_newer_dr():
    doc = backup_record("app-db", "rds-instance", NOW, primary="a", dr="b").to_dict()
    doc["field_from_the_future"] = 1
    doc["results"][0]["also_new"] = {"x": 1}
    assert parse_record(doc, "k").results[0].name == "app-db"
