"""Run records as values: ids, timestamps, dict round-trips (storage is in test_state_contract)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from dr.clock import iso, parse_iso
from dr.errors import OperationFailed
from dr.state import LocalStore, ResourceResult, RunRecord, RunStore, StepRecord, new_run_id

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_run_ids_are_sortable_and_unique():
    run_id = new_run_id("backup", T0)
    assert re.fullmatch(r"backup-20240501T120000Z-[0-9a-f]{4}", run_id)
    assert new_run_id("backup", T0 + timedelta(seconds=1)) > run_id
    assert len({new_run_id("backup", T0) for _ in range(50)}) > 40


def test_run_id_uses_utc():
    plus2 = timezone(timedelta(hours=2))
    assert new_run_id("prune", datetime(2024, 5, 1, 14, 0, tzinfo=plus2)).startswith("prune-20240501T120000Z-")


@pytest.mark.parametrize("kind", ["", "Backup", "a/b", "a b", "-x"])
def test_run_id_rejects_bad_kinds(kind):
    with pytest.raises(ValueError):
        new_run_id(kind, T0)


def test_run_id_rejects_naive_time():
    with pytest.raises(ValueError):
        new_run_id("backup", datetime(2024, 5, 1))


def test_iso_round_trip():
    plus2 = timezone(timedelta(hours=2))
    s = iso(datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=plus2))
    assert s == "2024-05-01T12:00:00.123456+00:00"
    assert parse_iso(s) == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert parse_iso("2024-05-01T12:00:00Z") == T0
    with pytest.raises(ValueError):
        iso(datetime(2024, 5, 1))
    with pytest.raises(ValueError):
        parse_iso("2024-05-01T12:00:00")


def test_record_dict_round_trip_and_forward_compatibility():
    record = RunRecord(
        run_id="backup-20240501T120000Z-abcd", kind="backup", status="failed", started_at=iso(T0),
        error="1 of 1 resources failed",
        results=[ResourceResult(name="app-db", kind="rds-instance", status="failed", started_at=iso(T0),
                                error="boom", steps=[StepRecord("copy", "failed", iso(T0), error="boom")])],
    )
    d = record.to_dict()
    assert d["results"][0]["steps"][0]["name"] == "copy"
    assert RunRecord.from_dict(d) == record
    d["added_later"] = 1
    d["results"][0]["also_new"] = 2
    d["results"][0]["steps"][0]["new_too"] = 3
    assert RunRecord.from_dict(d) == record


def test_save_rejects_unknown_status(tmp_path):
    runs = RunStore(LocalStore(tmp_path))
    with pytest.raises(ValueError, match="status"):
        runs.save(RunRecord(run_id=new_run_id("backup", T0), kind="backup", status="done",
                            started_at=iso(T0)))


def test_malformed_record_names_the_key(tmp_path):
    store = LocalStore(tmp_path)
    store.put_json("runs/backup-20240501T120000Z-abcd.json", {"run_id": "x"})
    with pytest.raises(OperationFailed, match="runs/backup-20240501T120000Z-abcd.json"):
        RunStore(store).load("backup-20240501T120000Z-abcd")


def test_list_ignores_other_documents_and_tolerates_hand_named_runs(tmp_path):
    store = LocalStore(tmp_path)
    runs = RunStore(store)
    runs.save(RunRecord(run_id=new_run_id("backup", T0), kind="backup", status="completed",
                        started_at=iso(T0)))
    runs.save(RunRecord(run_id="manual-run", kind="backup", status="completed",
                        started_at=iso(T0 + timedelta(hours=1))))
    store.put_json("runs/notes.txt", {})
    store.put_json("runs/sub/nested.json", {})
    assert [r.run_id for r in runs.list()][0] == "manual-run"
    assert [r.run_id for r in runs.list(kind="backup", limit=1)] == ["manual-run"]
    assert runs.list(limit=0) == []
