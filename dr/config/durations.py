"""Durations (`30s`, `1h30m`) and schedules (`every <duration>` or five-field cron), in UTC.

Everything here is pure. Cron expressions are evaluated in UTC. Searches for fire times skip a
month, then a day, then an hour at a time, so even `0 0 29 2 *` (leap days only) is found in a few
hundred steps rather than by scanning minutes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DURATION_FORMS = "30s, 15m, 1h or 7d (or a compound like 1h30m)"
CRON_FORM = "'minute hour day-of-month month day-of-week'"
SCHEDULE_FORMS = f"'every <duration>' (like 'every 1h') or a five-field cron {CRON_FORM} (like '0 */6 * * *')"

_DURATION_RE = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNIT_SECONDS = (604800, 86400, 3600, 60, 1)  # in the order of _DURATION_RE's groups
_MAX_SEARCH_STEPS = 20000  # month/day steps; the sparsest cron (leap days) needs < 400 per 8 years


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `7d`, `2w` or compounds in that order (`1h30m`); must be > 0."""
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"expected a duration like {DURATION_FORMS}, got {text!r}")
    seconds = sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS) if n)
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than zero, like {DURATION_FORMS}, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    """Compact inverse of parse_duration: 5400s -> '1h30m', 0 -> '0s' (whole seconds; days, not weeks)."""
    total = int(td.total_seconds())
    if total < 0:
        return "-" + format_duration(-td)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# --- cron -----------------------------------------------------------------------------------------

_MONTHS = {n: i for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_WEEKDAYS = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}
# (name, lowest, highest, names); day-of-week accepts 7 for Sunday and folds it to 0.
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)
_MONTH_MAX_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class CronSpec:
    """A parsed five-field cron: minute hour day-of-month month day-of-week (0=Sunday), in UTC.

    As in standard cron, when both day fields are restricted (neither starts with `*`) a day
    matches if EITHER matches; otherwise both must (an unrestricted field matches every day).
    """

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = d.isoweekday() % 7 in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def matches(self, t: datetime) -> bool:
        t = _utc(t)
        return t.minute in self.minutes and t.hour in self.hours and self.day_matches(t.date())

    def latest_at_or_before(self, t: datetime) -> datetime:
        """The latest fire time <= t (seconds zeroed)."""
        t = _floor_minute(_utc(t))
        day = t.date()
        if self.day_matches(day):
            hit = self._last_time_until(t.hour, t.minute)
            if hit:
                return _at(day, *hit)
        day = self._find_day(day - timedelta(days=1), forward=False)
        return _at(day, max(self.hours), max(self.minutes))

    def earliest_at_or_after(self, t: datetime) -> datetime:
        """The earliest fire time >= t, where t is rounded up to a whole minute."""
        t = _utc(t)
        start = _floor_minute(t)
        if start < t:
            start += timedelta(minutes=1)
        day = start.date()
        if self.day_matches(day):
            hit = self._first_time_from(start.hour, start.minute)
            if hit:
                return _at(day, *hit)
        day = self._find_day(day + timedelta(days=1), forward=True)
        return _at(day, min(self.hours), min(self.minutes))

    def _last_time_until(self, hour: int, minute: int) -> tuple[int, int] | None:
        for h in sorted((h for h in self.hours if h <= hour), reverse=True):
            mins = [m for m in self.minutes if h < hour or m <= minute]
            if mins:
                return h, max(mins)
        return None

    def _first_time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        for h in sorted(h for h in self.hours if h >= hour):
            mins = [m for m in self.minutes if h > hour or m >= minute]
            if mins:
                return h, min(mins)
        return None

    def _find_day(self, day: date, *, forward: bool) -> date:
        """The first matching day from `day` (inclusive) going forward or backward; skips whole months."""
        for _ in range(_MAX_SEARCH_STEPS):
            if day.month not in self.months:
                first = day.replace(day=1)
                day = _next_month(first) if forward else first - timedelta(days=1)
            elif self.day_matches(day):
                return day
            else:
                day += timedelta(days=1 if forward else -1)
        raise ValueError("cron expression never fires")  # parse_cron rejects such expressions


def parse_cron(text: str) -> CronSpec:
    """Five whitespace-separated fields; ValueError names the field that is wrong."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"a cron needs exactly five fields, found {len(fields)} (no seconds or years)")
    values = [_parse_field(f, *spec) for f, spec in zip(fields, _FIELDS)]
    weekdays = frozenset(d % 7 for d in values[4])
    spec = CronSpec(*values[:4], weekdays, not fields[2].startswith("*"), not fields[4].startswith("*"))
    if not _ever_fires(spec):
        raise ValueError("this cron never fires (no month in it has such a day)")
    return spec


def _parse_field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"cron {name} field {text!r}: the step after '/' must be a whole number > 0")
            step = int(step_text)
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _field_value(first, text, name, lo, hi, names), _field_value(last, text, name, lo, hi, names)
            if start > end:
                raise ValueError(f"cron {name} field {text!r}: range {base!r} runs backwards")
        elif slash:
            raise ValueError(f"cron {name} field {text!r}: a step needs '*' or a range before it, like */10 or 5-59/10")
        else:
            start = end = _field_value(base, text, name, lo, hi, names)
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _field_value(token: str, text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> int:
    if token.isdigit():
        value = int(token)
        if lo <= value <= hi:
            return value
        raise ValueError(f"cron {name} field {text!r}: {value} is outside {lo}-{hi}")
    if token.lower() in names:
        return names[token.lower()]
    accepted = f"a number {lo}-{hi}" + (f" or a name ({', '.join(names)})" if names else "")
    raise ValueError(f"cron {name} field {text!r}: expected {accepted}, not {token!r}")


def _ever_fires(spec: CronSpec) -> bool:
    if spec.dow_restricted:  # every weekday occurs in every month
        return True
    return any(d <= _MONTH_MAX_DAYS[m - 1] for m in spec.months for d in spec.days)


@lru_cache(maxsize=256)
def _cron_longest_gap(spec: CronSpec) -> timedelta:
    """The longest gap between consecutive fire times, over the fire days of 2024 (and the next one)."""
    times = sorted(h * 60 + m for h in spec.hours for m in spec.minutes)
    longest = max((b - a for a, b in zip(times, times[1:])), default=0)
    end = date(2025, 1, 1)
    previous, day = None, spec._find_day(date(2024, 1, 1), forward=True)
    while True:
        if previous is not None:
            longest = max(longest, (day - previous).days * 1440 - times[-1] + times[0])
        if day >= end:
            return timedelta(minutes=longest)
        previous, day = day, spec._find_day(day + timedelta(days=1), forward=True)


# --- schedules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """When a job runs: exactly one of `interval` ("every 1h") or `cron` ("0 */6 * * *"), in UTC."""

    text: str
    interval: timedelta | None
    cron: CronSpec | None

    def __post_init__(self):
        if (self.interval is None) == (self.cron is None):
            raise ValueError("a Schedule has exactly one of interval or cron")

    def __str__(self) -> str:
        return self.text

    def slot_start(self, now: datetime) -> datetime:
        """Start of the slot containing `now`: the latest fire time <= now (aware UTC).

        `every D` slots are multiples of D since the Unix epoch: every 1d -> 00:00 UTC,
        every 15m -> :00/:15/:30/:45. A naive `now` is taken as UTC.
        """
        now = _utc(now)
        if self.interval is not None:
            return EPOCH + ((now - EPOCH) // self.interval) * self.interval
        return self.cron.latest_at_or_before(now)

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after t."""
        if self.interval is not None:
            return self.slot_start(t) + self.interval
        return self.cron.earliest_at_or_after(_floor_minute(_utc(t)) + timedelta(minutes=1))

    def nominal_interval(self) -> timedelta:
        """`every D`: D. Cron: the longest gap between consecutive fire times (over 2024)."""
        return self.interval if self.interval is not None else _cron_longest_gap(self.cron)


def parse_schedule(text: str) -> Schedule:
    """`every <duration>` or a five-field cron; ValueError explains both forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a schedule: {SCHEDULE_FORMS}, got {text!r}")
    words = text.split()
    if words[0].lower() == "every":
        try:
            interval = parse_duration(" ".join(words[1:]))
        except ValueError:
            raise ValueError(f"expected 'every <duration>' with a duration like {DURATION_FORMS}, got {text!r}") from None
        return Schedule(text=text.strip(), interval=interval, cron=None)
    if len(words) == 1 and _DURATION_RE.fullmatch(words[0]):
        raise ValueError(f"expected a schedule: {SCHEDULE_FORMS} (did you mean 'every {words[0]}'?), got {text!r}")
    looks_like_cron = len(words) == 5 or words[0][:1].isdigit() or words[0].startswith("*")
    if not looks_like_cron:
        raise ValueError(f"expected a schedule: {SCHEDULE_FORMS}, got {text!r}")
    try:
        cron = parse_cron(text)
    except ValueError as e:
        raise ValueError(f"{e}; a cron has five fields {CRON_FORM}, or write 'every <duration>', got {text!r}") from None
    return Schedule(text=text.strip(), interval=None, cron=cron)


# --- time helpers ---------------------------------------------------------------------------------


def _utc(t: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
