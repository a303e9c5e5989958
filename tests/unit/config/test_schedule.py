"""Durations, cron parsing and fire-time arithmetic (dr/config/durations.py, re-exported by dr.config)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dr.config import CronSpec, Schedule, format_duration, parse_duration, parse_schedule

UTC = timezone.utc


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800), ("2w", 1209600),
    ("1h30m", 5400), ("1d12h", 129600), ("1w2d3h4m5s", 788645), (" 90m ", 5400),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1.5h", "-1h", "30m1h", "1h1h", "1 h", "1H", None, 60])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError) as e:
        parse_duration(text)
    assert str(e.value) == f"expected a duration like 30s, 15m, 1h or 7d (or a compound like 1h30m), got {text!r}"


def test_parse_duration_rejects_zero():
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration("0m")


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (30, "30s"), (3600, "1h"), (5400, "1h30m"), (604800, "7d"), (90061, "1d1h1m1s"), (-60, "-1m"),
])
def test_format_duration(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text
    if seconds > 0:
        assert parse_duration(text) == timedelta(seconds=seconds)


# --- cron parsing ---------------------------------------------------------------------------------


def test_cron_fields():
    spec = parse_schedule("*/15 0-6/2 1,15 jan-MAR mon-fri").cron
    assert spec.minutes == {0, 15, 30, 45}
    assert spec.hours == {0, 2, 4, 6}
    assert spec.days == {1, 15}
    assert spec.months == {1, 2, 3}
    assert spec.weekdays == {1, 2, 3, 4, 5}
    assert spec.dom_restricted and spec.dow_restricted


def test_cron_sunday_as_7_and_names():
    assert parse_schedule("0 0 * * 7").cron.weekdays == {0}
    assert parse_schedule("0 0 * * 5-7").cron.weekdays == {5, 6, 0}
    assert parse_schedule("0 0 * * SUN,sat").cron.weekdays == {0, 6}
    assert parse_schedule("10-50/10 * * * *").cron.minutes == {10, 20, 30, 40, 50}


def test_cron_star_fields_are_unrestricted():
    spec = parse_schedule("0 0 */2 * *").cron
    assert not spec.dom_restricted and not spec.dow_restricted
    assert spec.days == frozenset(range(1, 32, 2))


def test_schedule_keeps_text_as_written():
    assert parse_schedule("every 1h") == Schedule("every 1h", timedelta(hours=1), None)
    assert str(parse_schedule("0 */6 * * *")) == "0 */6 * * *"


@pytest.mark.parametrize("text, message", [
    ("60 * * * *", "cron minute field '60': 60 is outside 0-59"),
    ("0 24 * * *", "cron hour field '24': 24 is outside 0-23"),
    ("0 0 0 * *", "cron day-of-month field '0': 0 is outside 1-31"),
    ("0 0 * 13 *", "cron month field '13': 13 is outside 1-12"),
    ("0 0 * * 8", "cron day-of-week field '8': 8 is outside 0-7"),
    ("0 0 * foo *", "cron month field 'foo': expected a number 1-12 or a name (jan, feb, mar, apr, may, jun, "
                    "jul, aug, sep, oct, nov, dec), not 'foo'"),
    ("*/0 * * * *", "cron minute field '*/0': the step after '/' must be a whole number > 0"),
    ("5/10 * * * *", "cron minute field '5/10': a step needs '*' or a range before it, like */10 or 5-59/10"),
    ("30-10 * * * *", "cron minute field '30-10': range '30-10' runs backwards"),
    ("0,,5 * * * *", "cron minute field '0,,5': expected a number 0-59, not ''"),
    ("0 0 * * * *", "a cron needs exactly five fields, found 6 (no seconds or years)"),
    ("0 0 *", "a cron needs exactly five fields, found 3 (no seconds or years)"),
    ("0 0 31 2 *", "this cron never fires (no month in it has such a day)"),
])
def test_cron_rejects(text, message):
    with pytest.raises(ValueError) as e:
        parse_schedule(text)
    assert str(e.value) == (f"{message}; a cron has five fields 'minute hour day-of-month month day-of-week', "
                            f"or write 'every <duration>', got {text!r}")


@pytest.mark.parametrize("text, hint", [
    ("daily", ""), ("", ""), ("1h", " (did you mean 'every 1h'?)"), (3600, ""),
])
def test_schedule_rejects_other_forms(text, hint):
    with pytest.raises(ValueError) as e:
        parse_schedule(text)
    assert str(e.value) == ("expected a schedule: 'every <duration>' (like 'every 1h') or a five-field cron "
                            f"'minute hour day-of-month month day-of-week' (like '0 */6 * * *'){hint}, got {text!r}")


def test_every_with_bad_duration():
    with pytest.raises(ValueError) as e:
        parse_schedule("every 5x")
    assert str(e.value) == ("expected 'every <duration>' with a duration like 30s, 15m, 1h or 7d "
                            "(or a compound like 1h30m), got 'every 5x'")


def test_schedule_needs_exactly_one_kind():
    with pytest.raises(ValueError):
        Schedule("x", None, None)


# --- slot_start / next_after ----------------------------------------------------------------------


@pytest.mark.parametrize("text, now, start", [
    ("every 1d", at(2024, 5, 17, 13, 45, 12), at(2024, 5, 17)),
    ("every 15m", at(2024, 5, 17, 13, 45, 12), at(2024, 5, 17, 13, 45)),
    ("every 15m", at(2024, 5, 17, 13, 44, 59), at(2024, 5, 17, 13, 30)),
    ("every 1h", at(2024, 5, 17, 13, 0), at(2024, 5, 17, 13, 0)),
    ("every 6h", at(2024, 1, 1, 5, 59), at(2024, 1, 1, 0, 0)),
    ("every 7d", at(2024, 1, 1), at(2023, 12, 28)),  # multiples of 7d since the epoch (a Thursday)
])
def test_slot_start_every(text, now, start):
    assert parse_schedule(text).slot_start(now) == start


def test_slot_start_converts_to_utc_and_accepts_naive_as_utc():
    plus2 = timezone(timedelta(hours=2))
    s = parse_schedule("every 1d")
    assert s.slot_start(datetime(2024, 5, 17, 1, 0, tzinfo=plus2)) == at(2024, 5, 16)
    assert s.slot_start(datetime(2024, 5, 17, 1, 0)) == at(2024, 5, 17)
    assert s.slot_start(at(2024, 5, 17, 1)).tzinfo == UTC


@pytest.mark.parametrize("text, now, start", [
    ("0 3 * * *", at(2024, 5, 17, 2, 59), at(2024, 5, 16, 3, 0)),
    ("0 3 * * *", at(2024, 5, 17, 3, 0, 30), at(2024, 5, 17, 3, 0)),
    ("*/15 * * * *", at(2024, 5, 17, 13, 44, 59), at(2024, 5, 17, 13, 30)),
    ("0 */6 * * *", at(2024, 1, 1, 5, 0), at(2024, 1, 1, 0, 0)),
    ("30 9,17 * * *", at(2024, 1, 1, 9, 29), at(2023, 12, 31, 17, 30)),  # across a year boundary
    ("0 0 1 * *", at(2024, 3, 15), at(2024, 3, 1)),
    ("0 0 31 * *", at(2024, 5, 1), at(2024, 3, 31)),  # skips April (30 days)
    ("0 12 * feb,Apr *", at(2024, 3, 20), at(2024, 2, 29, 12, 0)),  # month names, leap February
    ("0 0 * * mon-fri", at(2024, 5, 19, 12), at(2024, 5, 17)),  # Sunday -> Friday
    ("0 0 * * 0", at(2024, 5, 18), at(2024, 5, 12)),
    # both day fields restricted: the 13th OR a Friday
    ("0 0 13 * fri", at(2024, 9, 14), at(2024, 9, 13)),
    ("0 0 13 * fri", at(2024, 9, 12), at(2024, 9, 6)),
    # day-of-month '*/2' counts as unrestricted: odd days AND Mondays
    ("0 0 */2 * mon", at(2024, 5, 31), at(2024, 5, 27)),
])
def test_slot_start_cron(text, now, start):
    s = parse_schedule(text)
    assert s.slot_start(now) == start
    assert s.cron.matches(start)


@pytest.mark.parametrize("text, t, after", [
    ("every 1h", at(2024, 5, 17, 13, 0), at(2024, 5, 17, 14, 0)),
    ("every 1h", at(2024, 5, 17, 12, 59, 59), at(2024, 5, 17, 13, 0)),
    ("0 3 * * *", at(2024, 5, 17, 3, 0), at(2024, 5, 18, 3, 0)),
    ("0 3 * * *", at(2024, 5, 17, 2, 59, 59), at(2024, 5, 17, 3, 0)),
    ("*/15 * * * *", at(2024, 12, 31, 23, 50), at(2025, 1, 1, 0, 0)),
    ("0 0 1 * *", at(2024, 1, 31, 12), at(2024, 2, 1)),
    ("0 0 13 * fri", at(2024, 9, 6), at(2024, 9, 13)),
    ("0 0 13 * fri", at(2024, 9, 13), at(2024, 9, 20)),
])
def test_next_after(text, t, after):
    assert parse_schedule(text).next_after(t) == after


def test_leap_day_cron_skips_non_leap_years():
    s = parse_schedule("0 0 29 2 *")
    assert s.slot_start(at(2101, 1, 1)) == at(2096, 2, 29)  # 2100 is not a leap year
    assert s.next_after(at(2096, 2, 29)) == at(2104, 2, 29)
    assert s.nominal_interval() == timedelta(days=1461)


def test_matches():
    spec = parse_schedule("15 10 * * 1").cron
    assert isinstance(spec, CronSpec)
    assert spec.matches(at(2024, 5, 20, 10, 15, 59))
    assert not spec.matches(at(2024, 5, 21, 10, 15))
    assert spec.matches(datetime(2024, 5, 20, 12, 15, tzinfo=timezone(timedelta(hours=2))))


# --- nominal_interval -----------------------------------------------------------------------------


@pytest.mark.parametrize("text, interval", [
    ("every 90m", timedelta(minutes=90)),
    ("0 3 * * *", timedelta(days=1)),
    ("*/15 * * * *", timedelta(minutes=15)),
    ("0 0 1 * *", timedelta(days=31)),
    ("0 0,6 * * *", timedelta(hours=18)),
    ("0 9 * * mon-fri", timedelta(days=3)),
    ("0 0 * * *", timedelta(days=1)),
    ("0 0 1 1 *", timedelta(days=366)),  # 2024 is a leap year
])
def test_nominal_interval(text, interval):
    assert parse_schedule(text).nominal_interval() == interval
