"""Text for people, apart from the data it shows (JSON keeps ISO 8601 and is the models' to_dict).

text.py holds the generic helpers (tables, ages, durations); one module per subject renders what
a handler fetched: backup.py, mongo.py, runbook.py (plans, drills, run records). The RPO/RTO
report renders itself in dr/report/render_*.py. Nothing here does I/O or imports dr.cli.

One human time format for all text: `2026-12-08 00:41:07 UTC`.
"""

from __future__ import annotations

from datetime import datetime, timezone

HUMAN_TIME = "%Y-%m-%d %H:%M:%S UTC"


def human_time(value: datetime | str | None, missing: str = "<none>") -> str:
    """A time for people: an aware datetime, or ISO text as stored in run records (shown as
    it is when it is not a time)."""
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            return value
        value = parsed
    return value.astimezone(timezone.utc).strftime(HUMAN_TIME)
