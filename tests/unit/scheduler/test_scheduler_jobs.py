"""The scheduler's pure slot logic: what is due, catch-up, jitter, time zones, lock keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dr.config import parse_schedule
from dr.scheduler import jobs as J

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def job(text: str, name: str = "app-db") -> J.Job:
    return J.Job(name, "rds", parse_schedule(text), "rds-instance")


def test_first_run_is_due_at_once_for_the_current_slot():
    d = J.due(job("every 1h"), at(2026, 1, 1, 13, 42), None)
    assert d == J.Due("app-db", at(2026, 1, 1, 13), at(2026, 1, 1, 13), 0)


def test_nothing_due_when_the_current_slot_was_claimed():
    assert J.due(job("every 1h"), at(2026, 1, 1, 13, 59, 59), at(2026, 1, 1, 13)) is None
    assert J.due(job("every 1h"), at(2026, 1, 1, 14), at(2026, 1, 1, 13)).slot == at(2026, 1, 1, 14)


def test_after_downtime_one_catch_up_run_counts_the_missed_slots():
    d = J.due(job("every 15m"), at(2026, 1, 1, 18, 7), at(2026, 1, 1, 12))
    assert d.slot == at(2026, 1, 1, 18) and d.missed == 23  # 12:15 ... 17:45


def test_catch_up_with_cron():
    j = job("0 */6 * * *")
    d = J.due(j, at(2026, 1, 3, 7), at(2026, 1, 1, 0))
    assert d.slot == at(2026, 1, 3, 6) and d.missed == 8  # 06, 12, 18 (x2 days) + 00 (x2) ...
    assert J.missed_slots(j.schedule, at(2026, 1, 1, 0), at(2026, 1, 1, 6)) == 0


def test_jitter_is_deterministic_bounded_and_capped_at_half_the_interval():
    j = job("every 10m")
    slot = at(2026, 1, 1, 10)
    values = {J.jitter_for(j.name, slot + timedelta(minutes=10 * i), timedelta(hours=1), j.schedule)
              for i in range(50)}
    assert all(timedelta(0) <= v < timedelta(minutes=5) for v in values)
    assert len(values) > 10
    assert J.jitter_for("a", slot, timedelta(minutes=2), j.schedule) == \
        J.jitter_for("a", slot, timedelta(minutes=2), j.schedule)
    assert J.jitter_for("a", slot, timedelta(0), j.schedule) == timedelta(0)
    d = J.due(j, slot + timedelta(seconds=1), None, max_jitter=timedelta(minutes=2))
    assert d.slot <= d.run_at < d.slot + timedelta(minutes=2)


def test_timezone_reads_cron_in_local_wall_time():
    paris = ZoneInfo("Europe/Paris")
    j = job("0 2 * * *")
    # 02:00 in Paris is 01:00 UTC in winter and 00:00 UTC in summer.
    assert J.slot_start(j.schedule, at(2026, 1, 15, 12), paris) == at(2026, 1, 15, 1)
    assert J.slot_start(j.schedule, at(2026, 7, 15, 12), paris) == at(2026, 7, 15, 0)
    assert J.next_slot(j.schedule, at(2026, 1, 15, 12), paris) == at(2026, 1, 16, 1)
    assert J.slot_start(j.schedule, at(2026, 1, 15, 12)) == at(2026, 1, 15, 2)  # UTC by default


def test_timezone_day_boundaries_for_every_1d():
    ny = ZoneInfo("America/New_York")
    assert J.slot_start(parse_schedule("every 1d"), at(2026, 1, 15, 3), ny) == at(2026, 1, 14, 5)


def test_next_slot_across_the_end_of_daylight_saving_time_moves_forward():
    ny = ZoneInfo("America/New_York")
    s = parse_schedule("every 1h")
    t = at(2026, 11, 1, 4, 30)  # 00:30 EDT
    seen = []
    for _ in range(4):
        t = J.next_slot(s, t, ny)
        seen.append(t)
    assert seen == sorted(set(seen)) and all(b > a for a, b in zip(seen, seen[1:]))


def test_next_wakeup_is_run_at_or_the_next_slot():
    j = job("every 1h")
    assert J.next_wakeup(j, at(2026, 1, 1, 13, 5), at(2026, 1, 1, 13)) == at(2026, 1, 1, 14)
    assert J.next_wakeup(j, at(2026, 1, 1, 13, 5), at(2026, 1, 1, 12)) == at(2026, 1, 1, 13)


def test_lock_keys_are_valid_sortable_and_round_trip():
    from dr.state.base import validate_key

    key = J.lock_key("app-db", at(2026, 1, 1, 13, 15))
    assert key == "locks/schedule/app-db/20260101T131500Z.json"
    validate_key(key)
    assert J.slot_of_key(key) == at(2026, 1, 1, 13, 15)
    keys = [J.lock_key("x", at(2026, 1, d)) for d in (3, 1, 2)] + ["locks/schedule/x/junk.json"]
    assert J.latest_slot(keys) == (at(2026, 1, 3), J.lock_key("x", at(2026, 1, 3)))
    assert J.latest_slot(["locks/schedule/x/junk.json"]) is None


@pytest.mark.parametrize("doc, blocks", [
    (None, False),
    ({"status": "completed", "heartbeat": "2026-01-01T12:59:00+00:00"}, False),
    ({"status": "running", "heartbeat": "2026-01-01T12:59:00+00:00"}, True),
    ({"status": "running", "heartbeat": "2026-01-01T12:00:00+00:00"}, False),  # its owner died
    ({"status": "running", "acquired_at": "2026-01-01T12:58:00+00:00"}, True),
    ({"status": "running", "heartbeat": "garbage"}, False),
])
def test_a_running_lock_blocks_the_next_slot_until_its_heartbeat_goes_stale(doc, blocks):
    assert J.lock_blocks(doc, at(2026, 1, 1, 13), timedelta(minutes=5)) is blocks


def test_old_locks_are_pruned_but_never_the_newest():
    keys = [J.lock_key("x", at(2026, 1, d)) for d in range(1, 11)]
    pruned = J.locks_to_prune(keys, at(2026, 1, 20), timedelta(days=7))
    assert keys[-1] not in pruned and len(pruned) == 9
    assert J.locks_to_prune(keys, at(2026, 1, 10), timedelta(days=7)) == keys[:2]


def test_jobs_from_config_one_per_resource_with_a_schedule():
    from dr.config import parse_config
    from dr.sandbox import world

    config = parse_config(world.config_text("http://127.0.0.1:1", "/tmp/x"))
    jobs = J.jobs_from_config(config)
    assert [(j.name, j.kind, j.record_kind, j.schedule.text) for j in jobs] == [
        ("app-db", "rds", "rds-instance", "every 1h"), ("aurora", "rds", "rds-cluster", "every 1h"),
        ("assets", "s3", "s3", "every 15m")]
